/** The API inventory: endpoints seen in traffic, findings (shadow, zombie, orphan…), specs and their upload. */
import { useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import { Empty, ErrorNote, Loading, Section } from '../components/ui.tsx';
import { entityHref, when } from '../format.ts';

type FindingKind =
  | 'shadow'
  | 'zombie'
  | 'orphan'
  | 'undocumented_parameter'
  | 'undocumented_status'
  | 'anonymous_success';
const KINDS: [FindingKind, string][] = [
  ['shadow', 'Shadow (not in any spec)'],
  ['zombie', 'Zombie (removed or deprecated, still called)'],
  ['orphan', 'Orphan (documented, never called)'],
  ['undocumented_parameter', 'Undocumented parameters'],
  ['undocumented_status', 'Undocumented status codes'],
  ['anonymous_success', 'Anonymous success'],
];

import { useLoad, useSession, useTitle } from '../hooks.ts';

export function InventoryPage() {
  useTitle('Inventory');
  const session = useSession();
  const endpoints = useLoad(
    () => must(api.GET('/api/v1/inventory/endpoints', { params: { query: { limit: 200 } } })),
    [],
  );
  const [kind, setKind] = useState<FindingKind | ''>('');
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages[pages.length - 1];
  const findings = useLoad(
    () =>
      must(
        api.GET('/api/v1/inventory/findings', {
          params: { query: { limit: 100, ...(kind ? { kind } : {}), ...(cursor ? { cursor } : {}) } },
        }),
      ),
    [kind, cursor],
  );
  const specs = useLoad(() => must(api.GET('/api/v1/inventory/specs')), []);
  const reload = () => {
    endpoints.reload();
    findings.reload();
    specs.reload();
  };
  return (
    <>
      <h1>Inventory</h1>
      <Section title="Findings">
        <div class="row">
          <label for="finding-kind">Kind</label>
          <select
            id="finding-kind"
            value={kind}
            onChange={(e) => {
              setPages([]);
              setKind(e.currentTarget.value as FindingKind | '');
            }}
          >
            <option value="">All kinds</option>
            {KINDS.map(([k, label]) => (
              <option key={k} value={k}>
                {label}
              </option>
            ))}
          </select>
        </div>
        <ErrorNote error={findings.error} />
        {!findings.data && !findings.error && <Loading what="findings" />}
        {findings.data && findings.data.items.length === 0 && <Empty>No findings.</Empty>}
        {findings.data && findings.data.items.length > 0 && (
          <table class="grid" aria-label="Findings" data-testid="findings">
            <thead>
              <tr>
                <th scope="col">Kind</th>
                <th scope="col">Severity</th>
                <th scope="col">Endpoint</th>
                <th scope="col">Finding</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {findings.data.items.map((f) => (
                <tr key={f.id}>
                  <td>{f.kind}</td>
                  <td>{f.severity}</td>
                  <td class="mono small">
                    {f.method} {f.host}
                    <Link href={entityHref('route', f.route)}>{f.route}</Link>
                  </td>
                  <td>
                    {f.title}
                    <div class="muted small">{f.detail}</div>
                  </td>
                  <td class="nowrap">{when(f.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
        <nav class="pager" aria-label="Finding pages">
          <button type="button" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
            Previous page
          </button>
          <button
            type="button"
            disabled={!findings.data?.next_cursor}
            onClick={() => setPages([...pages, findings.data!.next_cursor!])}
          >
            Next page
          </button>
        </nav>
      </Section>

      <Section title="Specifications">
        <ErrorNote error={specs.error} />
        {specs.data && specs.data.items.length === 0 && (
          <Empty>No specification imported: every endpoint counts as undocumented.</Empty>
        )}
        {specs.data && specs.data.items.length > 0 && (
          <ul class="plain" data-testid="specs">
            {specs.data.items.map((s) => (
              <li key={s.id}>
                <strong>{s.title}</strong> {s.version}{' '}
                <span class="muted small">
                  ({s.key}, imported {when(s.imported_at)}, {s.operations} operations)
                </span>
              </li>
            ))}
          </ul>
        )}
        {session.can.admin && <SpecUpload onDone={reload} />}
      </Section>

      <Section title="Endpoints">
        <ErrorNote error={endpoints.error} />
        {endpoints.data && endpoints.data.items.length === 0 && <Empty>No endpoint seen yet.</Empty>}
        {endpoints.data && endpoints.data.items.length > 0 && (
          <table class="grid small" aria-label="Endpoints">
            <thead>
              <tr>
                <th scope="col">Method</th>
                <th scope="col">Host</th>
                <th scope="col">Route</th>
                <th scope="col">Classification</th>
                <th scope="col">Requests</th>
                <th scope="col">Clients</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {endpoints.data.items.map((e) => (
                <tr key={e.id}>
                  <td>{e.method}</td>
                  <td>{e.host}</td>
                  <td>
                    <Link href={entityHref('route', e.route)}>{e.route}</Link>
                  </td>
                  <td>{e.classification}</td>
                  <td>{e.requests}</td>
                  <td>{e.clients_estimate}</td>
                  <td class="nowrap">{when(e.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function SpecUpload({ onDone }: { onDone: () => void }) {
  const [text, setText] = useState('');
  const [host, setHost] = useState('');
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<string>();
  return (
    <form
      aria-label="Upload a specification"
      onSubmit={async (e) => {
        e.preventDefault();
        setError(undefined);
        setResult(undefined);
        const json = text.trimStart().startsWith('{');
        try {
          const r = await must(
            api.POST('/api/v1/inventory/specs', {
              params: { query: host ? { host: [host] } : {} },
              body: text,
              bodySerializer: (b: string) => b,
              headers: { 'content-type': json ? 'application/json' : 'application/yaml' },
            } as never),
          );
          const spec = (r as { created: boolean; spec: { title: string; version: string } }).spec;
          setResult(
            `${(r as { created: boolean }).created ? 'Imported' : 'Unchanged'}: ${spec.title} ${spec.version}. Findings are compared against it now.`,
          );
          setText('');
          onDone();
        } catch (err) {
          setError(err);
        }
      }}
    >
      <h3>Upload a specification</h3>
      <label for="spec-file">OpenAPI 3.x or Swagger 2.0 file (JSON or YAML)</label>
      <input
        id="spec-file"
        type="file"
        accept=".json,.yaml,.yml"
        onChange={async (e) => {
          const f = e.currentTarget.files?.[0];
          if (f) setText(await f.text());
        }}
      />
      <label for="spec-text">or paste it</label>
      <textarea
        id="spec-text"
        rows={6}
        value={text}
        onInput={(e) => setText(e.currentTarget.value)}
        required
      />
      <label for="spec-host">Host it describes (optional)</label>
      <input
        id="spec-host"
        value={host}
        onInput={(e) => setHost(e.currentTarget.value)}
        placeholder="api.example.com"
      />
      <button type="submit">Upload</button>
      {result && <p role="status">{result}</p>}
      <ErrorNote error={error} />
    </form>
  );
}
