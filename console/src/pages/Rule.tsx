/**
 * One rule: its text in an editor with live diagnostics from the API's parser, its test
 * cases, a backtest over a chosen range (the incidents it would open, on a chart, before
 * saving), its exceptions and its run history.
 */
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { Link, useLocation } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import type { Diagnostic, RuleDetail, TestRun } from '../api/types.ts';
import { Chart } from '../components/Chart.tsx';
import { RuleEditor } from '../components/editor.tsx';
import { Empty, ErrorNote, Loading, Section, SeverityBadge } from '../components/ui.tsx';
import { duration, ENTITY_LABEL, fromLocalInput, toLocalInput, when } from '../format.ts';
import { useLoad, useSession, useTitle } from '../hooks.ts';

const NEW_RULE = `rule my-new-rule {
  title "Admin route probed"
  severity medium
  where gatewatch.route startswith "/admin" and http.response.status_code >= 400
  incident {
    entities ip: source.ip
  }
}
`;

export default function RulePage({ id }: { id: string | null }) {
  const rule = useLoad(
    async () =>
      id
        ? Promise.all([
            must(api.GET('/api/v1/rules/{id}', { params: { path: { id } } })),
            must(api.GET('/api/v1/rules/{id}/draft', { params: { path: { id } } })),
          ])
        : undefined,
    [id],
  );
  useTitle(id ? `Rule ${id}` : 'New rule');
  if (rule.error) return <ErrorNote error={rule.error} />;
  if (id && !rule.data) return <Loading what="rule" />;
  return (
    <RuleView
      key={id ?? 'new'}
      id={id}
      detail={rule.data?.[0]}
      draft={rule.data?.[1].text}
      reload={rule.reload}
    />
  );
}

function RuleView({
  id,
  detail,
  draft,
  reload,
}: {
  id: string | null;
  detail: RuleDetail | undefined;
  draft: string | undefined;
  reload: () => void;
}) {
  const session = useSession();
  const [, navigate] = useLocation();
  const [text, setText] = useState(draft ?? NEW_RULE);
  const [diagnostics, setDiagnostics] = useState<Diagnostic[]>([]);
  const [checkError, setCheckError] = useState<unknown>();
  const [saveError, setSaveError] = useState<unknown>();
  const [message, setMessage] = useState<string>();
  const editable = session.can.triage;
  const seq = useRef(0);
  /** Bumped after a run, so the run history reads again. */
  const [runs, setRuns] = useState(0);

  // Live diagnostics: the API's parser on the draft, a moment after typing stops.
  useEffect(() => {
    if (!editable) return;
    const mine = ++seq.current;
    const timer = setTimeout(async () => {
      try {
        const r = await must(api.POST('/api/v1/rules/validate', { body: { text } }));
        if (mine === seq.current) {
          setDiagnostics(r.diagnostics);
          setCheckError(undefined);
        }
      } catch (err) {
        if (mine === seq.current) setCheckError(err);
      }
    }, 250);
    return () => clearTimeout(timer);
  }, [text, editable]);

  const r = detail?.rule;
  const save = async () => {
    setSaveError(undefined);
    setMessage(undefined);
    try {
      if (r && r.source === 'api') {
        await must(
          api.PUT('/api/v1/rules/{id}', {
            params: { path: { id: r.id } },
            body: { text, ...(r.revision ? { expected_revision: r.revision } : {}) },
          }),
        );
        setMessage('Saved as a new revision.');
        reload();
      } else {
        const stored = await must(api.POST('/api/v1/rules', { body: { text } }));
        setMessage(r ? `Stored through the API; it replaces the rule from ${r.file}.` : 'Stored.');
        if (!r || stored.id !== r.id) navigate(`/rules/${encodeURIComponent(stored.id)}`);
        else reload();
      }
    } catch (err) {
      setSaveError(err);
    }
  };
  const errors = diagnostics.filter((d) => d.severity === 'error');
  return (
    <>
      <p class="crumbs">
        <Link href="/rules">Rules</Link> / {id ?? 'new'}
      </p>
      <h1>{r ? r.title : 'New rule'}</h1>
      {r && (
        <p class="meta">
          <code>{r.id}</code> · {r.kind} · <SeverityBadge severity={r.severity} /> ·{' '}
          {r.enabled ? 'enabled' : 'disabled'} ·{' '}
          {r.source === 'file' ? `from ${r.file}` : `stored through the API, revision ${r.revision}`}
          {detail?.status.degraded && <span class="warn"> · degraded: {detail.status.reason}</span>}
        </p>
      )}
      {r && session.can.admin && (
        <AdminActions
          id={r.id}
          enabled={r.enabled}
          onChange={() => {
            reload();
            setRuns((n) => n + 1);
          }}
        />
      )}

      <Section title="Rule text">
        <RuleEditor text={text} readOnly={!editable} diagnostics={diagnostics} onChange={setText} />
        {editable && (
          <div aria-live="polite" data-testid="diagnostics" class="diagnostics">
            {diagnostics.length === 0 ? (
              <p class="ok">No problems found.</p>
            ) : (
              <ul>
                {diagnostics.map((d) => (
                  <li key={`${d.line}:${d.column}:${d.code}`} class={d.severity}>
                    <span class="mono">
                      {d.line}:{d.column}
                    </span>{' '}
                    {d.severity} {d.code}: {d.message}
                    {d.hint && <span class="hint"> — {d.hint}</span>}
                  </li>
                ))}
              </ul>
            )}
            <ErrorNote error={checkError} />
          </div>
        )}
        {session.can.admin && (
          <div class="row">
            <button type="button" disabled={errors.length > 0} onClick={save}>
              {r?.source === 'file' ? 'Save through the API (replaces the file rule)' : 'Save rule'}
            </button>
            {message && <span role="status">{message}</span>}
          </div>
        )}
        <ErrorNote error={saveError} />
      </Section>

      {editable && (
        <Backtest
          text={text}
          defaultRange={
            detail?.status.last_run
              ? { from: detail.status.last_run.range_start, to: detail.status.last_run.range_end }
              : undefined
          }
          disabled={errors.length > 0}
        />
      )}
      {r && <Tests id={r.id} text={text} canRun={editable} />}
      {r && <RuleExceptions id={r.id} />}
      {r && <Runs id={r.id} refresh={runs} />}
    </>
  );
}

function AdminActions({ id, enabled, onChange }: { id: string; enabled: boolean; onChange: () => void }) {
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<string>();
  const act = async (what: 'enable' | 'disable' | 'run') => {
    setError(undefined);
    setResult(undefined);
    try {
      if (what === 'run') {
        const run = await must(api.POST('/api/v1/rules/{id}/run', { params: { path: { id } } }));
        setResult(
          `Run ${run.outcome}: ${run.detections} detections, ${run.incidents_created} new, ${run.incidents_updated} updated, ${run.incidents_suppressed} suppressed, ${run.incidents_excepted ?? 0} excepted.`,
        );
      } else {
        await must(
          api.POST(what === 'enable' ? '/api/v1/rules/{id}/enable' : '/api/v1/rules/{id}/disable', {
            params: { path: { id } },
          }),
        );
      }
      onChange();
    } catch (err) {
      setError(err);
    }
  };
  return (
    <div class="row">
      <button type="button" onClick={() => act('run')}>
        Run now
      </button>
      <button type="button" onClick={() => act(enabled ? 'disable' : 'enable')}>
        {enabled ? 'Disable' : 'Enable'}
      </button>
      {result && (
        <span role="status" data-testid="run-result">
          {result}
        </span>
      )}
      <ErrorNote error={error} />
    </div>
  );
}

function Backtest({
  text,
  defaultRange,
  disabled,
}: {
  text: string;
  defaultRange: { from: string; to: string } | undefined;
  disabled: boolean;
}) {
  const now = Date.now();
  const [from, setFrom] = useState(
    new Date((defaultRange ? Date.parse(defaultRange.to) : now) - 86_400_000).toISOString(),
  );
  const [to, setTo] = useState(defaultRange?.to ?? new Date(now).toISOString());
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const [result, setResult] = useState<{
    incidents: {
      id: string;
      title: string;
      severity: string;
      window: { start: string; end: string };
      event_count: number;
    }[];
    detections: number;
    degraded?: { reason: string };
  }>();
  const chart = useMemo(() => {
    if (!result) return undefined;
    const start = Date.parse(from);
    const end = Date.parse(to);
    const step =
      [60_000, 300_000, 900_000, 3_600_000, 6 * 3_600_000, 86_400_000].find((s) => (end - start) / s <= 96) ??
      86_400_000;
    const first = Math.floor(start / step) * step;
    const x: number[] = [];
    for (let t = first; t < end; t += step) x.push(t);
    const values = x.map(() => 0);
    for (const i of result.incidents) {
      const k = Math.floor((Date.parse(i.window.start) - first) / step);
      if (k >= 0 && k < values.length) values[k]!++;
    }
    return { x, series: [{ label: 'incidents it would open', color: '#7a5af8', values }], step };
  }, [result]);
  return (
    <Section title="Backtest">
      <form
        class="row"
        aria-label="Backtest"
        onSubmit={async (e) => {
          e.preventDefault();
          setBusy(true);
          setError(undefined);
          try {
            setResult(await must(api.POST('/api/v1/rules/preview', { body: { text, from, to } })));
          } catch (err) {
            setError(err);
            setResult(undefined);
          } finally {
            setBusy(false);
          }
        }}
      >
        <label for="bt-from">From (UTC)</label>
        <input
          id="bt-from"
          type="datetime-local"
          value={toLocalInput(from)}
          onChange={(e) => setFrom(fromLocalInput(e.currentTarget.value) ?? from)}
        />
        <label for="bt-to">To (UTC)</label>
        <input
          id="bt-to"
          type="datetime-local"
          value={toLocalInput(to)}
          onChange={(e) => setTo(fromLocalInput(e.currentTarget.value) ?? to)}
        />
        <button type="submit" disabled={busy || disabled}>
          {busy ? 'Running…' : 'Run backtest'}
        </button>
      </form>
      <p class="muted">Runs the text in the editor over stored events; nothing is written.</p>
      <ErrorNote error={error} />
      {result && chart && (
        <>
          <p role="status" data-testid="backtest-summary">
            {result.incidents.length} incident(s) from {result.detections} detection(s)
            {result.degraded && <span class="warn"> — degraded: {result.degraded.reason}</span>}
          </p>
          <Chart
            x={chart.x}
            series={chart.series}
            label={`Incidents the rule would open per ${duration(chart.step)}`}
            testId="backtest-chart"
          />
          {result.incidents.length > 0 && (
            <table class="grid small" aria-label="Incidents the rule would open">
              <thead>
                <tr>
                  <th scope="col">Window start</th>
                  <th scope="col">Title</th>
                  <th scope="col">Events</th>
                </tr>
              </thead>
              <tbody>
                {result.incidents.slice(0, 100).map((i) => (
                  <tr key={i.id}>
                    <td class="nowrap">{when(i.window.start)}</td>
                    <td>{i.title}</td>
                    <td>{i.event_count}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </>
      )}
    </Section>
  );
}

function Tests({ id, text, canRun }: { id: string; text: string; canRun: boolean }) {
  const stored = useLoad(() => must(api.GET('/api/v1/rules/{id}/tests', { params: { path: { id } } })), [id]);
  const [draft, setDraft] = useState<TestRun>();
  const [error, setError] = useState<unknown>();
  const shown = draft ?? stored.data;
  return (
    <Section
      title="Test cases"
      actions={
        canRun && (
          <button
            type="button"
            onClick={async () => {
              setError(undefined);
              try {
                setDraft(
                  await must(
                    api.POST('/api/v1/rules/{id}/tests', { params: { path: { id } }, body: { text } }),
                  ),
                );
              } catch (err) {
                setError(err);
              }
            }}
          >
            Run against the editor's text
          </button>
        )
      }
    >
      <ErrorNote error={error ?? stored.error} />
      {shown && shown.items.length === 0 && (
        <Empty>No test cases for this rule (detections/rules/tests/).</Empty>
      )}
      {shown && shown.items.length > 0 && (
        <>
          <p data-testid="tests-summary">
            {draft ? 'Editor text: ' : 'As it runs: '}
            {shown.passed} passed, {shown.failed} failed
          </p>
          <ul class="plain">
            {shown.items.map((t) => (
              <li key={t.name} class={t.passed ? 'ok' : 'error'}>
                {t.passed ? '✓' : '✗'} {t.name}{' '}
                <span class="muted small">
                  ({t.events} events, {t.expected} expected, {t.actual} found)
                </span>
                {t.diff.map((d) => (
                  <div key={JSON.stringify(d)} class="small">
                    {d.kind}: {JSON.stringify(d.group)}
                  </div>
                ))}
                {t.diagnostics.map((d) => (
                  <div key={d} class="small">
                    {d}
                  </div>
                ))}
              </li>
            ))}
          </ul>
        </>
      )}
    </Section>
  );
}

function RuleExceptions({ id }: { id: string }) {
  const session = useSession();
  const list = useLoad(
    () => must(api.GET('/api/v1/exceptions', { params: { query: { rule_id: id } } })),
    [id],
  );
  const [error, setError] = useState<unknown>();
  const items = list.data?.items ?? [];
  return (
    <Section title="Exceptions">
      <ErrorNote error={error ?? list.error} />
      {items.length === 0 ? (
        <Empty>No exceptions: the rule sees every entity.</Empty>
      ) : (
        <table class="grid small" aria-label="Exceptions of this rule" data-testid="rule-exceptions">
          <thead>
            <tr>
              <th scope="col">Entity</th>
              <th scope="col">Until</th>
              <th scope="col">Why</th>
              <th scope="col">Who</th>
              <th scope="col">State</th>
              {session.can.triage && <th scope="col">Action</th>}
            </tr>
          </thead>
          <tbody>
            {items.map((e) => (
              <tr key={e.id}>
                <td>
                  {ENTITY_LABEL[e.entity.type]} {e.entity.value}
                </td>
                <td>{e.expires_at ? when(e.expires_at) : 'for good'}</td>
                <td>{e.reason}</td>
                <td>
                  {e.created_by}, {when(e.created_at)}
                </td>
                <td>{e.active ? 'active' : e.removed_at ? `lifted by ${e.removed_by}` : 'expired'}</td>
                {session.can.triage && (
                  <td>
                    {e.active && (
                      <button
                        type="button"
                        onClick={async () => {
                          try {
                            await must(
                              api.DELETE('/api/v1/exceptions/{id}', { params: { path: { id: e.id } } }),
                            );
                            list.reload();
                          } catch (err) {
                            setError(err);
                          }
                        }}
                      >
                        Lift
                      </button>
                    )}
                  </td>
                )}
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}

function Runs({ id, refresh }: { id: string; refresh: number }) {
  const runs = useLoad(
    () => must(api.GET('/api/v1/rules/{id}/runs', { params: { path: { id }, query: { limit: 20 } } })),
    [id, refresh],
  );
  return (
    <Section title="Runs">
      <ErrorNote error={runs.error} />
      {runs.data && runs.data.items.length === 0 && <Empty>No runs recorded yet.</Empty>}
      {runs.data && runs.data.items.length > 0 && (
        <table class="grid small" aria-label="Run history" data-testid="runs">
          <thead>
            <tr>
              <th scope="col">Started</th>
              <th scope="col">Range</th>
              <th scope="col">Outcome</th>
              <th scope="col">Detections</th>
              <th scope="col">New</th>
              <th scope="col">Updated</th>
              <th scope="col">Suppressed</th>
              <th scope="col">Excepted</th>
              <th scope="col">Took</th>
            </tr>
          </thead>
          <tbody>
            {runs.data.items.map((r) => (
              <tr key={r.id}>
                <td class="nowrap">{when(r.started_at)}</td>
                <td class="nowrap small">
                  {when(r.range_start)} – {when(r.range_end)}
                </td>
                <td>
                  {r.outcome}
                  {r.degraded_reason && <div class="warn small">{r.degraded_reason}</div>}
                  {r.error && <div class="error small">{r.error}</div>}
                </td>
                <td>{r.detections}</td>
                <td>{r.incidents_created}</td>
                <td>{r.incidents_updated}</td>
                <td>{r.incidents_suppressed}</td>
                <td>{r.incidents_excepted ?? 0}</td>
                <td>{duration(r.duration_ms)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </Section>
  );
}
