import type { ComponentChildren } from 'preact';
import { ApiError } from '../api/client.ts';
import { STATUS_LABEL } from '../format.ts';

export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  const problem = error instanceof ApiError ? error.problem : undefined;
  return (
    <div class="error" role="alert">
      <strong>{problem ? `${problem.status} ${problem.title ?? ''}` : 'Error'}</strong>{' '}
      {(error as Error).message}
      {problem?.errors && problem.errors.length > 0 && (
        <ul>
          {problem.errors.map((e) => (
            <li key={`${e.field}${e.message}`}>
              {e.line ? `${e.line}:${e.column} ` : ''}
              {e.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}

export function Loading({ what }: { what: string }) {
  return (
    <p class="muted" aria-live="polite">
      Loading {what}…
    </p>
  );
}

export function SeverityBadge({ severity }: { severity: string }) {
  return <span class={`badge sev-${severity}`}>{severity}</span>;
}

export function StatusBadge({ status }: { status: string }) {
  return <span class={`badge st-${status}`}>{STATUS_LABEL[status] ?? status}</span>;
}

export function Section(props: {
  title: string;
  children: ComponentChildren;
  id?: string;
  actions?: ComponentChildren;
}) {
  const id = props.id ?? props.title.toLowerCase().replace(/[^a-z0-9]+/g, '-');
  return (
    <section aria-labelledby={`h-${id}`} class="panel">
      <div class="panel-head">
        <h2 id={`h-${id}`}>{props.title}</h2>
        {props.actions}
      </div>
      {props.children}
    </section>
  );
}

export function Empty({ children }: { children: ComponentChildren }) {
  return <p class="muted">{children}</p>;
}
