/**
 * Canonical printer: AST -> text. Two-space indentation, one clause per line, a blank line
 * between top-level declarations, comments kept on their own lines before the item they
 * preceded. `parse(format(ast))` equals `ast` modulo positions (tested).
 */
import type * as A from './ast.ts';
import { formatDuration } from './lexer.ts';

const IND = '  ';

export function formatFile(file: A.FileAst): string {
  const out: string[] = [];
  let prev: A.Decl['kind'] | undefined;
  for (const d of file.decls) {
    // Consecutive includes/lists/macros of the same kind stay together; rules are separated.
    if (
      prev !== undefined &&
      (d.kind === 'rule' || prev === 'rule' || d.kind !== prev || d.comments.length > 0)
    )
      out.push('');
    for (const c of d.comments) out.push(c);
    out.push(...formatDecl(d));
    prev = d.kind;
  }
  if (file.trailing.length > 0) {
    if (out.length > 0) out.push('');
    out.push(...file.trailing);
  }
  return out.length === 0 ? '' : `${out.join('\n')}\n`;
}

function formatDecl(d: A.Decl): string[] {
  switch (d.kind) {
    case 'include':
      return [`include ${str(d.path.value)}`];
    case 'list':
      return [
        d.source.kind === 'file'
          ? `list ${d.name.name} = file(${str(d.source.path.value)})`
          : `list ${d.name.name} = [${d.source.values.map((v) => lit(v.value)).join(', ')}]`,
      ];
    case 'macro':
      return [`macro ${d.name.name} = ${formatFilter(d.filter)}`];
    case 'rule': {
      const lines = [`rule ${d.id.name} {`];
      for (const c of d.clauses) {
        for (const cm of c.comments) lines.push(cm ? IND + cm : '');
        lines.push(...clause(c).map((l) => IND + l));
      }
      for (const cm of d.trailing) lines.push(cm ? IND + cm : '');
      lines.push('}');
      return lines;
    }
  }
}

function clause(c: A.Clause): string[] {
  switch (c.kind) {
    case 'title':
    case 'description':
    case 'owner':
      return [`${c.kind} ${str(c.text.value)}`];
    case 'severity':
      return [`severity ${c.severity.name}`];
    case 'risk':
      return [`risk ${num(c.risk.value)}`];
    case 'tags':
      return [`tags [${c.tags.map((t) => str(t.value)).join(', ')}]`];
    case 'enabled':
      return [`enabled ${c.enabled}`];
    case 'schedule':
      return [`schedule ${c.entries.map((e) => `${e.key} ${formatDuration(e.value.ms)}`).join(' ')}`];
    case 'correlate':
      return [`correlate requests within ${formatDuration(c.within.ms)}`];
    case 'where':
      return [`where ${formatFilter(c.filter)}`];
    case 'threshold':
      return block('threshold', c.items, c.trailing, thresholdItem);
    case 'sequence':
      return block('sequence', c.items, c.trailing, sequenceItem);
    case 'first_seen':
      return block('first_seen', c.items, c.trailing, firstSeenItem);
    case 'baseline':
      return block('baseline', c.items, c.trailing, baselineItem);
    case 'incident':
      return block('incident', c.items, c.trailing, incidentItem);
    case 'invalid':
      return [`# (invalid clause \`${c.key}\` dropped)`];
  }
}

function block<I extends { comments: string[] }>(
  keyword: string,
  items: I[],
  trailing: string[],
  print: (i: I) => string,
): string[] {
  const lines = [`${keyword} {`];
  for (const it of items) {
    for (const cm of it.comments) lines.push(cm ? IND + cm : '');
    lines.push(IND + print(it));
  }
  for (const cm of trailing) lines.push(cm ? IND + cm : '');
  lines.push('}');
  return lines;
}

const names = (ns: A.Name[]): string => ns.map((n) => n.name).join(', ');

function window(w: A.WindowDecl): string {
  const base = `window ${formatDuration(w.size.ms)}`;
  if (w.mode === 'sliding' && w.slide) return `${base} sliding every ${formatDuration(w.slide.ms)}`;
  return w.mode === 'tumbling' ? `${base} tumbling` : base;
}

function metric(m: A.MetricDecl): string {
  const args = m.args.map((a) => (a.kind === 'number' ? num(a.value) : formatFilter(a.filter)));
  return `metric ${m.name.name} = ${m.fn.name}(${args.join(', ')})`;
}

function thresholdItem(it: A.ThresholdItem): string {
  switch (it.kind) {
    case 'group_by':
      return `group by ${names(it.fields)}`;
    case 'window':
      return window(it.window);
    case 'metric':
      return metric(it.metric);
    case 'having':
      return `having ${formatHaving(it.having)}`;
  }
}

function sequenceItem(it: A.SequenceItem): string {
  switch (it.kind) {
    case 'by':
      return `by ${names(it.fields)}`;
    case 'within':
      return `within ${formatDuration(it.span.ms)}`;
    case 'until':
      return `until ${formatFilter(it.filter)}`;
    case 'step': {
      const s = it.step;
      let out = `step ${s.name.name} = ${s.absent ? 'absent ' : ''}${formatFilter(s.filter)}`;
      if (s.repeat) {
        const { min, max, atLeast } = s.repeat;
        if (atLeast) out += ` repeat >= ${num(min.value)}`;
        else if (max && max.value !== min.value) out += ` repeat ${num(min.value)}..${num(max.value)}`;
        else out += ` repeat ${num(min.value)}`;
      }
      return out;
    }
  }
}

function firstSeenItem(it: A.FirstSeenItem): string {
  switch (it.kind) {
    case 'values':
      return `values ${names(it.fields)}`;
    case 'by':
      return `by ${names(it.fields)}`;
    case 'history':
      return `history ${formatDuration(it.history.ms)}`;
    case 'ignore_new_groups':
      return 'ignore new groups';
  }
}

function baselineItem(it: A.BaselineItem): string {
  switch (it.kind) {
    case 'group_by':
      return `group by ${names(it.fields)}`;
    case 'window':
      return window(it.window);
    case 'metric':
      return metric(it.metric);
    case 'history':
      return `history ${formatDuration(it.history.ms)}`;
    case 'spike':
      return `spike ${it.spike} >= ${num(it.min.value)}`;
    case 'min_buckets':
      return `min_buckets ${num(it.count.value)}`;
    case 'having':
      return `having ${formatHaving(it.having)}`;
  }
}

function incidentItem(it: A.IncidentItem): string {
  switch (it.kind) {
    case 'title':
    case 'summary':
      return `${it.kind} ${str(it.text.value)}`;
    case 'entities':
      return `entities ${it.entities.map((e) => `${e.role.name}: ${e.field.name}`).join(', ')}`;
    case 'suppress':
      return `suppress ${it.by ? `by ${names(it.by)} ` : ''}for ${formatDuration(it.period.ms)}`;
    case 'evidence':
      return `evidence ${num(it.sample.value)}${it.fields ? ` fields ${names(it.fields)}` : ''}`;
    case 'invalid':
      return `# (invalid item \`${it.key}\` dropped)`;
  }
}

// ---- expressions ----------------------------------------------------------------------

export function formatFilter(f: A.Filter): string {
  switch (f.type) {
    case 'or':
      return f.args.map((a) => (a.type === 'or' ? `(${formatFilter(a)})` : formatFilter(a))).join(' or ');
    case 'and':
      return f.args
        .map((a) => (a.type === 'or' || a.type === 'and' ? `(${formatFilter(a)})` : formatFilter(a)))
        .join(' and ');
    case 'not':
      return `not ${f.arg.type === 'and' || f.arg.type === 'or' ? `(${formatFilter(f.arg)})` : formatFilter(f.arg)}`;
    case 'true':
      return 'true';
    case 'ref':
      return f.name.name;
    case 'cmp':
      return `${f.field.name} ${f.op} ${lit(f.value.value)}`;
    case 'in':
      return `${f.field.name} ${f.negated ? 'not in' : 'in'} ${source(f.source, true)}`;
    case 'like':
    case 'contains':
    case 'startswith':
    case 'endswith':
      return `${f.field.name} ${f.type} ${source(f.source, false)}${f.nocase ? ' nocase' : ''}`;
    case 'matches':
      return `${f.field.name} matches /${f.pattern}/${f.flags}`;
    case 'cidr':
      return `${f.field.name} cidr ${source(f.source, false)}`;
    case 'exists':
      return `${f.field.name} exists`;
  }
}

function source(s: A.ValueSource, alwaysParens: boolean): string {
  if (s.kind === 'list') return `list ${s.name.name}`;
  if (s.values.length === 1 && !alwaysParens) return lit(s.values[0]!.value);
  return `(${s.values.map((v) => lit(v.value)).join(', ')})`;
}

export function formatHaving(h: A.Having): string {
  switch (h.type) {
    case 'or':
      return h.args.map((a) => (a.type === 'or' ? `(${formatHaving(a)})` : formatHaving(a))).join(' or ');
    case 'and':
      return h.args
        .map((a) => (a.type === 'or' || a.type === 'and' ? `(${formatHaving(a)})` : formatHaving(a)))
        .join(' and ');
    case 'not':
      return `not ${h.arg.type === 'and' || h.arg.type === 'or' ? `(${formatHaving(h.arg)})` : formatHaving(h.arg)}`;
    case 'cmp':
      return `${h.metric.name} ${h.op} ${num(h.value.value)}`;
    case 'cmp_metric':
      return `${h.metric.name} ${h.op} ${h.other.name}`;
  }
}

function str(s: string): string {
  return JSON.stringify(s);
}

function num(n: number): string {
  return String(n);
}

function lit(v: A.LiteralValue): string {
  return typeof v === 'string' ? str(v) : String(v);
}
