/**
 * Health: readiness of the stores, ingest sources and their rates and lag, dead letters with
 * their reasons, recent rule runs, and the rule coverage report (which rules can fire on
 * the stored events, and why the others cannot).
 */
import { Link } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import { Empty, ErrorNote, Loading, Section } from '../components/ui.tsx';
import { duration, when } from '../format.ts';
import { useLoad, useSession, useTitle } from '../hooks.ts';

export function OperationsPage() {
  useTitle('Health');
  const session = useSession();
  const ready = useLoad(async () => {
    const r = await api.GET('/health/ready');
    return (r.data ?? r.error) as {
      status: string;
      checks: Record<string, { ok: boolean; latency_ms: number; detail?: string }>;
    };
  }, []);
  const sources = useLoad(() => must(api.GET('/api/v1/ingest/sources')), []);
  const queue = useLoad(() => must(api.GET('/api/v1/ingest/queue')), []);
  const letters = useLoad(
    () =>
      session.can.admin
        ? must(api.GET('/api/v1/ingest/dead-letters', { params: { query: { limit: 50 } } }))
        : Promise.resolve(undefined),
    [],
  );
  const activity = useLoad(
    () => must(api.GET('/api/v1/rules/activity', { params: { query: { days: 7 } } })),
    [],
  );
  const coverage = useLoad(() => must(api.GET('/api/v1/rules/coverage')), []);
  const totals = new Map<string, { runs: number; detections: number; failed: number }>();
  for (const a of activity.data?.items ?? []) {
    const t = totals.get(a.rule_id) ?? { runs: 0, detections: 0, failed: 0 };
    t.runs += a.runs;
    t.detections += a.detections;
    t.failed += a.failed;
    totals.set(a.rule_id, t);
  }
  return (
    <>
      <h1>Health</h1>
      <Section title="Readiness">
        {!ready.data && <Loading what="readiness" />}
        {ready.data && (
          <ul class="plain" data-testid="readiness">
            <li>
              <strong>{ready.data.status}</strong>
            </li>
            {Object.entries(ready.data.checks ?? {}).map(([name, c]) => (
              <li key={name} class={c.ok ? 'ok' : 'error'}>
                {name}: {c.ok ? 'answers' : 'down'} in {c.latency_ms} ms{' '}
                {c.detail && <span class="muted">({c.detail})</span>}
              </li>
            ))}
          </ul>
        )}
      </Section>
      <Section title="Ingest sources">
        <ErrorNote error={sources.error} />
        {sources.data && sources.data.items.length === 0 && <Empty>No sources configured or seen.</Empty>}
        {sources.data && sources.data.items.length > 0 && (
          <table class="grid" aria-label="Ingest sources">
            <thead>
              <tr>
                <th scope="col">Source</th>
                <th scope="col">Type</th>
                <th scope="col">State</th>
                <th scope="col">Events/s</th>
                <th scope="col">Bytes/s</th>
                <th scope="col">Lag</th>
                <th scope="col">Errors</th>
                <th scope="col">Last event</th>
              </tr>
            </thead>
            <tbody>
              {sources.data.items.map((s) => (
                <tr key={s.name}>
                  <td>{s.name}</td>
                  <td>{s.type}</td>
                  <td>{s.state}</td>
                  <td>{s.events_per_second.toFixed(1)}</td>
                  <td>{Math.round(s.bytes_per_second)}</td>
                  <td>{s.lag_seconds === null ? '—' : duration(s.lag_seconds * 1000)}</td>
                  <td>
                    {s.errors_total}
                    {s.last_error && <div class="muted small">{s.last_error}</div>}
                  </td>
                  <td class="nowrap">{when(s.last_event_at)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Ingest queue">
        <ErrorNote error={queue.error} />
        {queue.data && queue.data.queue === null && (
          <Empty>No ingest queue here: the embedded mode ingests by replaying files.</Empty>
        )}
        {queue.data?.queue && (
          <table class="kv" data-testid="queue">
            <tbody>
              <tr>
                <th scope="row">Waiting</th>
                <td>
                  {queue.data.queue.waiting} batches{' '}
                  <span class="muted">(sources push back above {queue.data.queue.high_water_mark})</span>
                </td>
              </tr>
              <tr>
                <th scope="row">Being processed</th>
                <td>{queue.data.queue.active}</td>
              </tr>
              <tr>
                <th scope="row">Delayed (retrying)</th>
                <td>{queue.data.queue.delayed}</td>
              </tr>
              <tr>
                <th scope="row">Failed</th>
                <td>{queue.data.queue.failed}</td>
              </tr>
              <tr>
                <th scope="row">Oldest waiting</th>
                <td>
                  {queue.data.queue.oldest_waiting_seconds === null
                    ? '—'
                    : duration(queue.data.queue.oldest_waiting_seconds * 1000)}
                </td>
              </tr>
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Dead letters">
        {!session.can.admin && <Empty>Dead letters hold raw log lines: they need an admin key.</Empty>}
        <ErrorNote error={letters.error} />
        {letters.data && letters.data.items.length === 0 && <Empty>No dead letters.</Empty>}
        {letters.data && letters.data.items.length > 0 && (
          <table class="grid small" aria-label="Dead letters">
            <thead>
              <tr>
                <th scope="col">When</th>
                <th scope="col">Source</th>
                <th scope="col">Reason</th>
                <th scope="col">Replayed</th>
                <th scope="col">Line</th>
              </tr>
            </thead>
            <tbody>
              {letters.data.items.map((d) => (
                <tr key={d.id}>
                  <td class="nowrap">{when(d.at)}</td>
                  <td>{d.source}</td>
                  <td>{d.reason}</td>
                  <td>{d.replayed_at ? when(d.replayed_at) : 'no'}</td>
                  <td>
                    <details>
                      <summary>Show</summary>
                      <pre>{d.payload}</pre>
                    </details>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Rule runs (last 7 days)">
        <ErrorNote error={activity.error} />
        {activity.data && totals.size === 0 && <Empty>No rule runs recorded in the last 7 days.</Empty>}
        {totals.size > 0 && (
          <table class="grid small" aria-label="Rule runs per rule">
            <thead>
              <tr>
                <th scope="col">Rule</th>
                <th scope="col">Runs</th>
                <th scope="col">Detections</th>
                <th scope="col">Failed or degraded</th>
              </tr>
            </thead>
            <tbody>
              {[...totals].map(([id, t]) => (
                <tr key={id} class={t.failed > 0 ? 'degraded' : ''}>
                  <td>
                    <Link href={`/rules/${encodeURIComponent(id)}`}>{id}</Link>
                  </td>
                  <td>{t.runs}</td>
                  <td>{t.detections}</td>
                  <td>{t.failed}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      <Section title="Rule coverage">
        <ErrorNote error={coverage.error} />
        {!coverage.data && !coverage.error && <Loading what="coverage" />}
        {coverage.data && (
          <>
            <p data-testid="coverage-summary">{coverage.data.summary}</p>
            {coverage.data.warnings.map((w) => (
              <p key={w} class="warn">
                {w}
              </p>
            ))}
            <table class="grid small" aria-label="Rule coverage" data-testid="coverage">
              <thead>
                <tr>
                  <th scope="col">Rule</th>
                  <th scope="col">Verdict</th>
                  <th scope="col">Why</th>
                  <th scope="col">Sources with every field it needs</th>
                </tr>
              </thead>
              <tbody>
                {coverage.data.rules.map((r) => (
                  <tr key={r.rule} class={r.verdict === 'cannot fire' ? 'degraded' : ''}>
                    <td>
                      <Link href={`/rules/${encodeURIComponent(r.rule)}`}>{r.rule}</Link>
                      <div class="muted small">{r.title}</div>
                    </td>
                    <td>{r.verdict}</td>
                    <td>{r.reasons.join('; ') || '—'}</td>
                    <td>{r.sources.join(', ') || '—'}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </>
        )}
      </Section>
    </>
  );
}
