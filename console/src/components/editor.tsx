/**
 * Text editors on CodeMirror 6: the rule editor (diagnostics from the API's parser shown at
 * their line and column as you type) and the one-line filter input (field-name completion
 * from the event schema).
 */
import { autocompletion, type CompletionContext } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { type Diagnostic as CmDiagnostic, lintGutter, setDiagnostics } from '@codemirror/lint';
import { EditorState, type Extension } from '@codemirror/state';
import { EditorView, keymap, lineNumbers, placeholder } from '@codemirror/view';
import { useEffect, useRef } from 'preact/hooks';
import type { Diagnostic, EventField } from '../api/types.ts';

const theme = EditorView.theme({
  '&': { fontSize: '13px', border: '1px solid #c8ccd2', borderRadius: '4px', background: '#fff' },
  '&.cm-focused': { outline: '2px solid #1570ef' },
  '.cm-content': { fontFamily: 'ui-monospace, SFMono-Regular, Menlo, monospace' },
  '.cm-gutters': { background: '#f5f6f8', color: '#4a5261' },
});

function useEditor(
  initial: string,
  extensions: Extension[],
  onChange: ((text: string) => void) | undefined,
  label: string,
) {
  const host = useRef<HTMLDivElement>(null);
  const view = useRef<EditorView>();
  const changed = useRef(onChange);
  changed.current = onChange;
  useEffect(() => {
    // In a shadow root, CodeMirror's styles go in as a constructed style sheet rather than a
    // <style> element, so the page's CSP needs no exception for them.
    const shadow = host.current!.attachShadow({ mode: 'open' });
    const parent = document.createElement('div');
    shadow.appendChild(parent);
    const v = new EditorView({
      root: shadow,
      parent,
      state: EditorState.create({
        doc: initial,
        extensions: [
          ...extensions,
          theme,
          EditorView.contentAttributes.of({ 'aria-label': label }),
          EditorView.updateListener.of((u) => {
            if (u.docChanged) changed.current?.(u.state.doc.toString());
          }),
        ],
      }),
    });
    view.current = v;
    return () => v.destroy();
  }, []);
  return { host, view };
}

export interface RuleEditorProps {
  text: string;
  readOnly: boolean;
  diagnostics: Diagnostic[];
  onChange: (text: string) => void;
}

export function RuleEditor(props: RuleEditorProps) {
  const { host, view } = useEditor(
    props.text,
    [
      lineNumbers(),
      history(),
      lintGutter(),
      keymap.of([...defaultKeymap, ...historyKeymap]),
      EditorState.readOnly.of(props.readOnly),
      EditorView.editable.of(!props.readOnly),
    ],
    props.onChange,
    'Rule text',
  );
  useEffect(() => {
    const v = view.current;
    if (!v) return;
    const doc = v.state.doc;
    const at = (line: number, column: number) => {
      const l = doc.line(Math.min(Math.max(1, line), doc.lines));
      return Math.min(l.to, l.from + Math.max(0, column - 1));
    };
    const marks: CmDiagnostic[] = props.diagnostics.map((d) => {
      const from = at(d.line, d.column);
      const to = Math.max(from, d.endLine ? at(d.endLine, d.endColumn ?? d.column) + 1 : from + 1);
      return {
        from,
        to: Math.min(to, doc.length),
        severity: d.severity,
        message: `${d.line}:${d.column} ${d.message}${d.hint ? ` — ${d.hint}` : ''}`,
      };
    });
    v.dispatch(setDiagnostics(v.state, marks));
  }, [props.diagnostics]);
  return <div ref={host} class="editor" data-testid="rule-editor" />;
}

export interface FilterInputProps {
  value: string;
  fields: EventField[];
  onChange: (text: string) => void;
  onSubmit: () => void;
  label: string;
}

/** Single-line filter with field-name completion (Ctrl-Space or as you type a field). */
export function FilterInput(props: FilterInputProps) {
  const fields = useRef(props.fields);
  fields.current = props.fields;
  const submit = useRef(props.onSubmit);
  submit.current = props.onSubmit;
  const complete = (ctx: CompletionContext) => {
    const word = ctx.matchBefore(/[@A-Za-z_][\w.@]*/);
    if (!word || (word.from === word.to && !ctx.explicit)) return null;
    return {
      from: word.from,
      options: fields.current.map((f) => ({
        label: f.name,
        type: 'property',
        detail: f.kind,
        info: f.description,
      })),
      validFor: /^[\w.@]*$/,
    };
  };
  const { host } = useEditor(
    props.value,
    [
      history(),
      placeholder('e.g. http.response.status_code >= 500 and source.ip cidr "203.0.113.0/24"'),
      autocompletion({ override: [complete], activateOnTyping: true }),
      keymap.of([
        {
          key: 'Enter',
          run: () => {
            submit.current();
            return true;
          },
        },
        ...defaultKeymap,
        ...historyKeymap,
      ]),
      // one line: a newline typed or pasted becomes a space
      EditorState.transactionFilter.of((tr) => {
        if (!tr.docChanged || !tr.newDoc.toString().includes('\n')) return tr;
        return [
          tr,
          {
            changes: { from: 0, to: tr.newDoc.length, insert: tr.newDoc.toString().replace(/\n/g, ' ') },
            sequential: true,
          },
        ];
      }),
    ],
    props.onChange,
    props.label,
  );
  return <div ref={host} class="editor one-line" data-testid="filter-input" />;
}
