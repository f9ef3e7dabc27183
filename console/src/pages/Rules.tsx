/** Every rule with its last run, outcome, degraded status and detections per day. */
import { Link } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import type { RunRecord } from '../api/types.ts';
import { ErrorNote, Loading, SeverityBadge } from '../components/ui.tsx';
import { when } from '../format.ts';
import { useLoad, useSession, useTitle } from '../hooks.ts';

const DAYS = 7;

export function RulesPage() {
  useTitle('Rules');
  const session = useSession();
  const rules = useLoad(() => must(api.GET('/api/v1/rules')), []);
  const activity = useLoad(
    () => must(api.GET('/api/v1/rules/activity', { params: { query: { days: DAYS } } })),
    [],
  );
  const last = useLoad(async () => {
    const items = rules.data?.items ?? [];
    const runs = await Promise.all(
      items.map((r) =>
        must(
          api.GET('/api/v1/rules/{id}/runs', { params: { path: { id: r.id }, query: { limit: 1 } } }),
        ).then((x) => [r.id, x] as const),
      ),
    );
    return new Map(runs);
  }, [rules.data]);
  const days: string[] = [];
  if (activity.data) {
    for (let t = Date.parse(activity.data.from); t <= Date.parse(activity.data.to); t += 86_400_000) {
      days.push(new Date(t).toISOString().slice(0, 10));
    }
  }
  const perDay = (id: string) =>
    days.map((d) => activity.data?.items.find((x) => x.rule_id === id && x.day === d)?.detections ?? 0);
  return (
    <>
      <div class="page-head">
        <h1>Rules</h1>
        {session.can.triage && (
          <Link href="/rules/new" class="button">
            New rule
          </Link>
        )}
      </div>
      {rules.error && <ErrorNote error={rules.error} />}
      {!rules.data && <Loading what="rules" />}
      {rules.data && (
        <table class="grid" aria-label="Rules">
          <thead>
            <tr>
              <th scope="col">Rule</th>
              <th scope="col">Kind</th>
              <th scope="col">Severity</th>
              <th scope="col">Enabled</th>
              <th scope="col">Last run</th>
              <th scope="col">Outcome</th>
              <th scope="col">
                Detections per day <span class="muted small">(last {DAYS} days, oldest first)</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rules.data.items.map((r) => {
              const status = last.data?.get(r.id)?.status;
              const run: RunRecord | undefined = status?.last_run;
              const counts = perDay(r.id);
              return (
                <tr key={r.id} class={status?.degraded ? 'degraded' : ''}>
                  <td>
                    <Link href={`/rules/${encodeURIComponent(r.id)}`}>{r.id}</Link>
                    <div class="muted small">{r.title}</div>
                  </td>
                  <td>{r.kind}</td>
                  <td>
                    <SeverityBadge severity={r.severity} />
                  </td>
                  <td>{r.enabled ? 'yes' : 'no'}</td>
                  <td class="nowrap">{run ? when(run.started_at) : '—'}</td>
                  <td>
                    {run ? run.outcome : '—'}
                    {status?.degraded && <div class="warn small">degraded: {status.reason}</div>}
                  </td>
                  <td>
                    <span
                      class="spark"
                      role="img"
                      aria-label={`${counts.reduce((a, b) => a + b, 0)} detections in ${DAYS} days: ${counts.join(', ')}`}
                    >
                      {counts.map((n, k) => (
                        <span
                          key={k}
                          class="bar"
                          style={{ height: `${Math.min(100, n === 0 ? 0 : 15 + Math.log2(1 + n) * 12)}%` }}
                          title={`${days[k]}: ${n}`}
                        />
                      ))}
                    </span>{' '}
                    {counts.reduce((a, b) => a + b, 0)}
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
    </>
  );
}
