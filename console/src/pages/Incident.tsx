/**
 * One incident: what happened (title, summary, entities, metrics, the detection timeline
 * against the rule's threshold, evidence with the query that reproduces it) and the triage
 * around it (status transitions, assignee, comments, history, exceptions).
 */
import { useMemo, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import type { Incident, Status } from '../api/types.ts';
import { Chart } from '../components/Chart.tsx';
import { Empty, ErrorNote, Loading, Section, SeverityBadge, StatusBadge } from '../components/ui.tsx';
import { duration, ENTITY_LABEL, entityHref, NEXT_STATUS, STATUS_LABEL, when } from '../format.ts';
import { useLoad, useSession, useTitle } from '../hooks.ts';

export function IncidentPage({ id }: { id: string }) {
  const incident = useLoad(() => must(api.GET('/api/v1/incidents/{id}', { params: { path: { id } } })), [id]);
  useTitle(incident.data?.title ?? 'Incident');
  if (incident.error) return <ErrorNote error={incident.error} />;
  if (!incident.data) return <Loading what="incident" />;
  return <IncidentView incident={incident.data} reload={incident.reload} />;
}

function IncidentView({ incident: i, reload }: { incident: Incident; reload: () => void }) {
  const session = useSession();
  // Names the gateway knows entity values by (an API key's consumer), when the API has them.
  const names: Record<string, string> = i.entity_names ?? {};
  const entities = Object.entries(i.entities ?? {}).flatMap(([type, values]) =>
    (values ?? []).map((v) => ({ type, value: String(v) })),
  );
  return (
    <>
      <p class="crumbs">
        <Link href="/">Incidents</Link> / {i.rule.id}
      </p>
      <h1>{i.title}</h1>
      <p class="meta">
        <SeverityBadge severity={i.severity} /> <StatusBadge status={i.status} /> risk {i.risk} · rule{' '}
        <Link href={`/rules/${encodeURIComponent(i.rule.id)}`}>{i.rule.title}</Link> ({i.rule.kind}) · window{' '}
        {when(i.window.start)} – {when(i.window.end)} · {i.event_count} events · {i.occurrences} occurrence(s)
      </p>
      <p class="summary">{i.summary}</p>

      {session.can.triage && <Triage incident={i} onChange={reload} />}

      <div class="columns">
        <Section title="Entities">
          {entities.length === 0 ? (
            <Empty>This rule names no entities.</Empty>
          ) : (
            <ul class="plain">
              {entities.map((e) => (
                <li key={`${e.type}:${e.value}`}>
                  <span class="muted">{ENTITY_LABEL[e.type] ?? e.type}</span>{' '}
                  <Link href={entityHref(e.type, e.value)}>{e.value}</Link>
                  {names[e.value] && <span class="muted"> ({names[e.value]})</span>}
                </li>
              ))}
            </ul>
          )}
        </Section>
        <Section title="Metrics">
          <table class="kv">
            <tbody>
              {Object.entries(i.metrics).map(([k, v]) => (
                <tr key={k}>
                  <th scope="row">{k}</th>
                  <td>{Number.isInteger(v) ? v : v.toFixed(3)}</td>
                </tr>
              ))}
              <tr>
                <th scope="row">first seen</th>
                <td>{when(i.first_seen)}</td>
              </tr>
              <tr>
                <th scope="row">last seen</th>
                <td>{when(i.last_seen)}</td>
              </tr>
            </tbody>
          </table>
        </Section>
      </div>

      <Detections incident={i} />
      <Timeline id={i.id} />
      <Evidence incident={i} />
      <Exceptions incident={i} />

      <div class="columns">
        <Section title="Status history">
          {i.history.length === 0 ? (
            <Empty>No changes yet.</Empty>
          ) : (
            <ol class="history" data-testid="history">
              {i.history.map((h) => (
                <li key={`${h.at}${h.field}`}>
                  <span class="nowrap">{when(h.at)}</span> · {h.by}: {h.field}{' '}
                  {h.field === 'status'
                    ? `${STATUS_LABEL[h.from ?? ''] ?? h.from ?? '—'} → ${STATUS_LABEL[h.to ?? ''] ?? h.to}`
                    : `${h.from ?? '—'} → ${h.to ?? '—'}`}
                  {h.note && <div class="muted">{h.note}</div>}
                </li>
              ))}
            </ol>
          )}
        </Section>
        <Comments incident={i} onChange={reload} />
      </div>
    </>
  );
}

/** The detections folded into the incident: several rules on one entity are one incident. */
function Detections({ incident: i }: { incident: Incident }) {
  const detections = i.detections ?? [];
  if (detections.length <= 1) return null;
  return (
    <Section
      title={`Detections (${detections.length}${i.occurrences > detections.length ? ` of ${i.occurrences}` : ''})`}
    >
      <p class="muted">
        Rules:{' '}
        {(i.rules ?? [i.rule.id]).map((r, k) => (
          <span key={r}>
            {k > 0 && ', '}
            <Link href={`/rules/${encodeURIComponent(r)}`}>{r}</Link>
          </span>
        ))}
      </p>
      <table class="grid small" aria-label="Detections in this incident" data-testid="detections">
        <thead>
          <tr>
            <th scope="col">Rule</th>
            <th scope="col">Window</th>
            <th scope="col">Events</th>
            <th scope="col">What it found</th>
            <th scope="col">Events of it</th>
          </tr>
        </thead>
        <tbody>
          {detections.map((d) => (
            <tr key={d.id}>
              <td>
                {d.rule.title} <SeverityBadge severity={d.rule.severity} />
              </td>
              <td class="nowrap">
                {when(d.window.start)} – {when(d.window.end)}
              </td>
              <td>{d.event_count}</td>
              <td>{d.summary}</td>
              <td>
                <Link
                  href={`/events?${new URLSearchParams({
                    filter: d.query,
                    from: new Date(Date.parse(d.first_seen) - 60_000).toISOString(),
                    to: new Date(Date.parse(d.last_seen) + 60_000).toISOString(),
                  })}`}
                >
                  Search
                </Link>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </Section>
  );
}

function Triage({ incident: i, onChange }: { incident: Incident; onChange: () => void }) {
  const session = useSession();
  const [note, setNote] = useState('');
  const [assignee, setAssignee] = useState(i.assignee ?? '');
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const patch = async (body: { status?: Status; assignee?: string | null; note?: string }) => {
    setBusy(true);
    setError(undefined);
    try {
      await must(api.PATCH('/api/v1/incidents/{id}', { params: { path: { id: i.id } }, body }));
      setNote('');
      onChange();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return (
    <section class="panel triage" aria-labelledby="h-triage">
      <h2 id="h-triage">Triage</h2>
      <fieldset class="row bare">
        <legend>Move to</legend>
        <div class="buttons">
          {(NEXT_STATUS[i.status] ?? []).map((s) => (
            <button
              type="button"
              key={s}
              disabled={busy}
              data-testid={`to-${s}`}
              onClick={() => patch({ status: s as Status, ...(note.trim() ? { note: note.trim() } : {}) })}
            >
              {STATUS_LABEL[s]}
            </button>
          ))}
        </div>
      </fieldset>
      <div class="row">
        <label for="triage-note">Note for the change (optional)</label>
        <input
          id="triage-note"
          value={note}
          onInput={(e) => setNote(e.currentTarget.value)}
          maxLength={4096}
        />
      </div>
      <form
        class="row"
        onSubmit={(e) => {
          e.preventDefault();
          patch({ assignee: assignee.trim() || null });
        }}
      >
        <label for="assignee">Assignee</label>
        <input
          id="assignee"
          value={assignee}
          onInput={(e) => setAssignee(e.currentTarget.value)}
          maxLength={256}
        />
        <button type="submit" disabled={busy}>
          Save assignee
        </button>
        <button type="button" class="link" disabled={busy} onClick={() => patch({ assignee: session.name })}>
          Assign to me
        </button>
      </form>
      <ErrorNote error={error} />
    </section>
  );
}

function Timeline({ id }: { id: string }) {
  const t = useLoad(
    () => must(api.GET('/api/v1/incidents/{id}/timeline', { params: { path: { id } } })),
    [id],
  );
  const chart = useMemo(() => {
    if (!t.data) return undefined;
    return {
      x: t.data.buckets.map((b) => Date.parse(b.start)),
      series: [{ label: 'events', color: '#1570ef', values: t.data.buckets.map((b) => b.count) }],
      threshold: t.data.threshold
        ? {
            value: t.data.threshold.value,
            label: `threshold ${t.data.threshold.metric} ${t.data.threshold.op} ${t.data.threshold.value}`,
          }
        : null,
      window: { start: Date.parse(t.data.window.start), end: Date.parse(t.data.window.end) },
    };
  }, [t.data]);
  return (
    <Section title="Detection timeline">
      {t.error && <ErrorNote error={t.error} />}
      {chart && t.data && (
        <Chart
          {...chart}
          label={`Matching events per ${duration(t.data.interval_ms)}; the incident's window is shaded${t.data.threshold ? '; the dashed line is the rule’s threshold' : ''}`}
          testId="timeline-chart"
        />
      )}
    </Section>
  );
}

function Evidence({ incident: i }: { incident: Incident }) {
  const from = new Date(Date.parse(i.first_seen) - 60_000).toISOString();
  const to = new Date(Date.parse(i.last_seen) + 60_000).toISOString();
  const events = useLoad(
    () =>
      must(
        api.POST('/api/v1/events/search', {
          body: { filter: i.evidence.query, from, to, limit: 20, order: 'asc' },
        }),
      ),
    [i.id],
  );
  const search = `/events?${new URLSearchParams({ filter: i.evidence.query, from, to })}`;
  return (
    <Section title="Evidence" actions={<Link href={search}>Open in event search</Link>}>
      <p class="muted">The query that reproduces the detection's events:</p>
      <pre class="query" data-testid="evidence-query">
        {i.evidence.query}
      </pre>
      {events.error && <ErrorNote error={events.error} />}
      {events.data && events.data.items.length === 0 && (
        <Empty>No stored events match (they may have aged out).</Empty>
      )}
      {events.data && events.data.items.length > 0 && <EventTable events={events.data.items} />}
    </Section>
  );
}

export function EventTable({ events }: { events: Record<string, unknown>[] }) {
  const get = (e: Record<string, unknown>, path: string): unknown =>
    path
      .split('.')
      .reduce<unknown>(
        (o, k) => (o && typeof o === 'object' ? (o as Record<string, unknown>)[k] : undefined),
        e,
      );
  const cols = [
    '@timestamp',
    'source.ip',
    'http.request.method',
    'url.path',
    'http.response.status_code',
    'user.name',
  ];
  return (
    <table class="grid small" aria-label="Events">
      <thead>
        <tr>
          {cols.map((c) => (
            <th scope="col" key={c}>
              {c}
            </th>
          ))}
          <th scope="col">Event</th>
        </tr>
      </thead>
      <tbody>
        {events.map((e) => (
          <tr key={String(get(e, 'event.id'))}>
            {cols.map((c) => (
              <td key={c}>{String(get(e, c) ?? '—')}</td>
            ))}
            <td>
              <details>
                <summary>JSON</summary>
                <pre>{JSON.stringify(e, null, 2)}</pre>
              </details>
            </td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function Comments({ incident: i, onChange }: { incident: Incident; onChange: () => void }) {
  const session = useSession();
  const [text, setText] = useState('');
  const [error, setError] = useState<unknown>();
  return (
    <Section title="Comments">
      {i.comments.length === 0 ? (
        <Empty>No comments yet.</Empty>
      ) : (
        <ul class="comments" data-testid="comments">
          {i.comments.map((c) => (
            <li key={c.id}>
              <div class="muted small">
                {c.by} · {when(c.at)}
              </div>
              <p>{c.text}</p>
            </li>
          ))}
        </ul>
      )}
      {session.can.triage && (
        <form
          onSubmit={async (e) => {
            e.preventDefault();
            setError(undefined);
            try {
              await must(
                api.POST('/api/v1/incidents/{id}/comments', {
                  params: { path: { id: i.id } },
                  body: { text },
                }),
              );
              setText('');
              onChange();
            } catch (err) {
              setError(err);
            }
          }}
        >
          <label for="comment">Add a comment</label>
          <textarea
            id="comment"
            rows={3}
            value={text}
            onInput={(e) => setText(e.currentTarget.value)}
            required
            maxLength={16384}
          />
          <button type="submit">Comment</button>
          <ErrorNote error={error} />
        </form>
      )}
    </Section>
  );
}

const FOR = [
  ['1d', 'one day', 86_400_000],
  ['7d', 'seven days', 7 * 86_400_000],
  ['30d', 'thirty days', 30 * 86_400_000],
  ['forever', 'for good', null],
] as const;

function Exceptions({ incident: i }: { incident: Incident }) {
  const session = useSession();
  const list = useLoad(
    () => must(api.GET('/api/v1/exceptions', { params: { query: { rule_id: i.rule.id } } })),
    [i.rule.id],
  );
  const entities = Object.entries(i.entities ?? {}).flatMap(([type, values]) =>
    (values ?? []).map((v) => ({ type, value: String(v) })),
  );
  const mine = (list.data?.items ?? []).filter((e) =>
    entities.some((x) => x.type === e.entity.type && x.value === e.entity.value),
  );
  const [entity, setEntity] = useState(entities[0] ? `${entities[0].type}\u0000${entities[0].value}` : '');
  const [period, setPeriod] = useState<string>('7d');
  const [reason, setReason] = useState('');
  const [error, setError] = useState<unknown>();
  const [done, setDone] = useState<string>();
  return (
    <Section title="Exceptions">
      {mine.length === 0 ? (
        <Empty>No exception of this rule covers these entities.</Empty>
      ) : (
        <ul class="plain" data-testid="exceptions">
          {mine.map((e) => (
            <li key={e.id}>
              {e.active ? <strong>Active</strong> : <span class="muted">Inactive</span>}:{' '}
              {ENTITY_LABEL[e.entity.type]} {e.entity.value}{' '}
              {e.expires_at ? `until ${when(e.expires_at)}` : 'for good'} — “{e.reason}” by {e.created_by},{' '}
              {when(e.created_at)}
            </li>
          ))}
        </ul>
      )}
      {session.can.triage && entities.length > 0 && (
        <form
          class="exception-form"
          aria-label="Add exception"
          onSubmit={async (e) => {
            e.preventDefault();
            setError(undefined);
            setDone(undefined);
            const [type, value] = entity.split('\u0000') as [string, string];
            const ms = FOR.find((f) => f[0] === period)![2];
            try {
              await must(
                api.POST('/api/v1/exceptions', {
                  body: {
                    rule_id: i.rule.id,
                    entity: { type: type as 'ip', value },
                    reason,
                    expires_at: ms === null ? null : new Date(Date.now() + ms).toISOString(),
                    incident_id: i.id,
                  },
                }),
              );
              setReason('');
              setDone(`Rule ${i.rule.id} will skip ${value} from its next run on.`);
              list.reload();
            } catch (err) {
              setError(err);
            }
          }}
        >
          <h3>Add exception</h3>
          <p class="muted">Suppress an entity for this rule: its next runs skip it.</p>
          <label for="exc-entity">Entity</label>
          <select id="exc-entity" value={entity} onChange={(e) => setEntity(e.currentTarget.value)}>
            {entities.map((x) => (
              <option key={`${x.type}:${x.value}`} value={`${x.type}\u0000${x.value}`}>
                {ENTITY_LABEL[x.type]} {x.value}
              </option>
            ))}
          </select>
          <label for="exc-for">For</label>
          <select id="exc-for" value={period} onChange={(e) => setPeriod(e.currentTarget.value)}>
            {FOR.map(([v, label]) => (
              <option key={v} value={v}>
                {label}
              </option>
            ))}
          </select>
          <label for="exc-reason">Why</label>
          <input
            id="exc-reason"
            value={reason}
            onInput={(e) => setReason(e.currentTarget.value)}
            required
            minLength={3}
            maxLength={4096}
          />
          <button type="submit">Add exception</button>
          {done && <p role="status">{done}</p>}
          <ErrorNote error={error} />
        </form>
      )}
    </Section>
  );
}
