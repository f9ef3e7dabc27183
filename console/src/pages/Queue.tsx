/**
 * The incident queue: filters kept in the URL, counts per status and a time chart for the
 * range, a cursor-paged table (stable while new incidents arrive) and bulk triage.
 */
import { useMemo, useState } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import type { IncidentSummary, Status } from '../api/types.ts';
import { Chart } from '../components/Chart.tsx';
import { Empty, ErrorNote, Loading, Section, SeverityBadge, StatusBadge } from '../components/ui.tsx';
import {
  ENTITY_LABEL,
  entityHref,
  fromLocalInput,
  SEVERITIES,
  STATUS_LABEL,
  STATUSES,
  toLocalInput,
  when,
} from '../format.ts';
import { useLoad, useQuery, useSession, useTitle } from '../hooks.ts';

type Sort = 'created_at' | 'last_seen' | 'severity' | 'risk';

export function QueuePage() {
  useTitle('Incidents');
  const session = useSession();
  const [query, setQuery] = useQuery();
  const status = query.getAll('status') as Status[];
  const severity = query.getAll('severity') as ('low' | 'medium' | 'high' | 'critical')[];
  const rule = query.get('rule') ?? '';
  const entity = query.get('entity') ?? '';
  const assignee = query.get('assignee') ?? '';
  const from = query.get('from') ?? '';
  const to = query.get('to') ?? '';
  const sort = (query.get('sort') ?? 'created_at') as Sort;
  const order = (query.get('order') ?? 'desc') as 'asc' | 'desc';
  const key = query.toString();
  const [cursors, setCursors] = useState<{ key: string; stack: string[] }>({ key, stack: [] });
  const stack = cursors.key === key ? cursors.stack : [];
  const cursor = stack[stack.length - 1];
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [bulkStatus, setBulkStatus] = useState<Status>('triaged');
  const [bulkResult, setBulkResult] = useState<string>();
  const [bulkError, setBulkError] = useState<unknown>();

  const page = useLoad(
    () =>
      must(
        api.GET('/api/v1/incidents', {
          params: {
            query: {
              ...(status.length ? { status } : {}),
              ...(severity.length ? { severity } : {}),
              ...(rule ? { rule: [rule] } : {}),
              ...(entity ? { entity: [entity] } : {}),
              ...(assignee ? { assignee } : {}),
              ...(from ? { from } : {}),
              ...(to ? { to } : {}),
              sort,
              order,
              limit: 50,
              ...(cursor ? { cursor } : {}),
            },
          },
        }),
      ),
    [key, cursor],
  );
  // Counts and the chart cover the chosen time range (default: the last 7 days). They are
  // asked for once the rows are in, so the rows do not queue behind the heavier statistics.
  const listed = page.data !== undefined || page.error !== undefined;
  const stats = useLoad(
    () =>
      listed
        ? must(
            api.GET('/api/v1/incidents/stats', {
              params: { query: { ...(from ? { from } : {}), ...(to ? { to } : {}) } },
            }),
          )
        : Promise.resolve(undefined),
    [from, to, listed],
  );
  const rules = useLoad(
    () => (listed ? must(api.GET('/api/v1/rules')) : Promise.resolve(undefined)),
    [listed],
  );

  const update = (change: (q: URLSearchParams) => void) => {
    const next = new URLSearchParams(query);
    change(next);
    setSelected(new Set());
    setQuery(next);
  };
  const toggleMulti = (name: string, value: string) =>
    update((q) => {
      const all = q.getAll(name);
      q.delete(name);
      for (const v of all.includes(value) ? all.filter((x) => x !== value) : [...all, value])
        q.append(name, v);
    });
  const setOne = (name: string, value: string | undefined) =>
    update((q) => (value ? q.set(name, value) : q.delete(name)));

  const items = page.data?.items ?? [];
  const chart = useMemo(() => {
    const buckets = stats.data?.over_time ?? [];
    return {
      x: buckets.map((b) => Date.parse(b.start)),
      series: [{ label: 'incidents', color: '#1570ef', values: buckets.map((b) => b.count) }],
    };
  }, [stats.data]);

  const applyBulk = async () => {
    setBulkError(undefined);
    setBulkResult(undefined);
    try {
      const r = await must(
        api.POST('/api/v1/incidents/bulk/status', { body: { ids: [...selected], status: bulkStatus } }),
      );
      setBulkResult(
        `${r.updated} updated${r.failed ? `, ${r.failed} refused (not a valid next status)` : ''}`,
      );
      setSelected(new Set());
      page.reload();
      stats.reload();
    } catch (err) {
      setBulkError(err);
    }
  };

  return (
    <>
      <h1>Incidents</h1>
      <form class="filters" aria-label="Filter incidents" onSubmit={(e) => e.preventDefault()}>
        <fieldset>
          <legend>Status</legend>
          {STATUSES.map((s) => (
            <label key={s} class="check">
              <input type="checkbox" checked={status.includes(s)} onChange={() => toggleMulti('status', s)} />
              {STATUS_LABEL[s]}
            </label>
          ))}
        </fieldset>
        <fieldset>
          <legend>Severity</legend>
          {SEVERITIES.map((s) => (
            <label key={s} class="check">
              <input
                type="checkbox"
                checked={severity.includes(s)}
                onChange={() => toggleMulti('severity', s)}
              />
              {s}
            </label>
          ))}
        </fieldset>
        <div class="field">
          <label for="f-rule">Rule</label>
          <select id="f-rule" value={rule} onChange={(e) => setOne('rule', e.currentTarget.value)}>
            <option value="">Any rule</option>
            {(rules.data?.items ?? []).map((r) => (
              <option key={r.id} value={r.id}>
                {r.id}
              </option>
            ))}
          </select>
        </div>
        <TextFilter
          id="f-entity"
          label="Entity"
          value={entity}
          onCommit={(v) => setOne('entity', v)}
          placeholder="IP, user, key, route, ASN"
        />
        <TextFilter
          id="f-assignee"
          label="Assignee"
          value={assignee}
          onCommit={(v) => setOne('assignee', v)}
        />
        <div class="field">
          <label for="f-from">From (UTC)</label>
          <input
            id="f-from"
            type="datetime-local"
            value={toLocalInput(from)}
            onChange={(e) => setOne('from', fromLocalInput(e.currentTarget.value))}
          />
        </div>
        <div class="field">
          <label for="f-to">To (UTC)</label>
          <input
            id="f-to"
            type="datetime-local"
            value={toLocalInput(to)}
            onChange={(e) => setOne('to', fromLocalInput(e.currentTarget.value))}
          />
        </div>
        <div class="field">
          <label for="f-sort">Sort by</label>
          <select
            id="f-sort"
            value={`${sort}:${order}`}
            onChange={(e) => {
              const [s, o] = e.currentTarget.value.split(':');
              update((q) => {
                q.set('sort', s!);
                q.set('order', o!);
              });
            }}
          >
            <option value="created_at:desc">Newest first</option>
            <option value="created_at:asc">Oldest first</option>
            <option value="last_seen:desc">Last seen</option>
            <option value="severity:desc">Severity</option>
            <option value="risk:desc">Risk</option>
          </select>
        </div>
        {key && (
          <button type="button" class="link" onClick={() => setQuery(new URLSearchParams())}>
            Clear filters
          </button>
        )}
      </form>

      <Section title="Overview">
        {stats.error && <ErrorNote error={stats.error} />}
        {stats.data && (
          <>
            <ul class="counts" aria-label="Incidents per status in the range">
              {STATUSES.map((s) => (
                <li key={s}>
                  <button
                    type="button"
                    class={status.length === 1 && status[0] === s ? 'count active' : 'count'}
                    aria-pressed={status.length === 1 && status[0] === s}
                    onClick={() =>
                      update((q) => {
                        q.delete('status');
                        q.append('status', s);
                      })
                    }
                  >
                    <span class="n" data-testid={`count-${s}`}>
                      {stats.data!.by_status[s] ?? 0}
                    </span>{' '}
                    {STATUS_LABEL[s]}
                  </button>
                </li>
              ))}
            </ul>
            <Chart
              x={chart.x}
              series={chart.series}
              label={`Incidents created ${when(stats.data.from)} – ${when(stats.data.to)}, per ${stats.data.interval}`}
              height={140}
              testId="queue-chart"
            />
          </>
        )}
      </Section>

      {session.can.triage && (
        <fieldset class="bulk bare">
          <legend class="sr-only">Bulk triage</legend>
          <span>{selected.size} selected</span>
          <label for="bulk-status">Set status</label>
          <select
            id="bulk-status"
            value={bulkStatus}
            onChange={(e) => setBulkStatus(e.currentTarget.value as Status)}
          >
            {STATUSES.filter((s) => s !== 'new').map((s) => (
              <option key={s} value={s}>
                {STATUS_LABEL[s]}
              </option>
            ))}
          </select>
          <button type="button" disabled={selected.size === 0} onClick={applyBulk}>
            Apply to selected
          </button>
          {bulkResult && <span role="status">{bulkResult}</span>}
          <ErrorNote error={bulkError} />
        </fieldset>
      )}

      {page.error && <ErrorNote error={page.error} />}
      {page.loading && !page.data && <Loading what="incidents" />}
      {page.data && items.length === 0 && <Empty>No incident matches these filters.</Empty>}
      {items.length > 0 && (
        <table class="grid" aria-label="Incidents" aria-busy={page.loading}>
          <thead>
            <tr>
              {session.can.triage && (
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label="Select all on this page"
                    checked={items.every((i) => selected.has(i.id))}
                    onChange={(e) =>
                      setSelected(e.currentTarget.checked ? new Set(items.map((i) => i.id)) : new Set())
                    }
                  />
                </th>
              )}
              <th scope="col">Severity</th>
              <th scope="col">Incident</th>
              <th scope="col">Entities</th>
              <th scope="col">Status</th>
              <th scope="col">Assignee</th>
              <th scope="col">Last seen</th>
            </tr>
          </thead>
          <tbody>
            {items.map((i) => (
              <Row
                key={i.id}
                incident={i}
                canTriage={session.can.triage}
                selected={selected.has(i.id)}
                onSelect={(on) => {
                  const next = new Set(selected);
                  if (on) next.add(i.id);
                  else next.delete(i.id);
                  setSelected(next);
                }}
              />
            ))}
          </tbody>
        </table>
      )}
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={stack.length === 0}
          onClick={() => setCursors({ key, stack: stack.slice(0, -1) })}
        >
          Previous page
        </button>
        <span>Page {stack.length + 1}</span>
        <button
          type="button"
          disabled={!page.data?.next_cursor}
          onClick={() => setCursors({ key, stack: [...stack, page.data!.next_cursor!] })}
        >
          Next page
        </button>
      </nav>
    </>
  );
}

function TextFilter(props: {
  id: string;
  label: string;
  value: string;
  placeholder?: string;
  onCommit: (v: string | undefined) => void;
}) {
  const [draft, setDraft] = useState(props.value);
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      <input
        id={props.id}
        type="search"
        value={draft}
        placeholder={props.placeholder}
        onInput={(e) => setDraft(e.currentTarget.value)}
        onKeyDown={(e) => e.key === 'Enter' && props.onCommit(draft.trim() || undefined)}
        onBlur={() => draft.trim() !== props.value && props.onCommit(draft.trim() || undefined)}
      />
    </div>
  );
}

function Row(props: {
  incident: IncidentSummary;
  canTriage: boolean;
  selected: boolean;
  onSelect: (on: boolean) => void;
}) {
  const i = props.incident;
  const entities = Object.entries(i.entities ?? {}).flatMap(([type, values]) =>
    (values ?? []).slice(0, 2).map((v) => ({ type, value: String(v) })),
  );
  return (
    <tr class={props.selected ? 'selected' : ''}>
      {props.canTriage && (
        <td>
          <input
            type="checkbox"
            aria-label={`Select ${i.title}`}
            checked={props.selected}
            onChange={(e) => props.onSelect(e.currentTarget.checked)}
          />
        </td>
      )}
      <td>
        <SeverityBadge severity={i.severity} />
      </td>
      <td>
        <Link href={`/incidents/${encodeURIComponent(i.id)}`} class="title">
          {i.title}
        </Link>
        <div class="muted small">
          {i.rule.id}
          {(i.rules?.length ?? 1) > 1 &&
            ` + ${i.rules!.length - 1} more rule${i.rules!.length > 2 ? 's' : ''}`}
        </div>
      </td>
      <td class="entities">
        {entities.map((e) => (
          <Link key={`${e.type}:${e.value}`} href={entityHref(e.type, e.value)} class="chip">
            <span class="sr-only">{ENTITY_LABEL[e.type] ?? e.type} </span>
            {e.value.length > 24 ? `${e.value.slice(0, 22)}…` : e.value}
          </Link>
        ))}
      </td>
      <td>
        <StatusBadge status={i.status} />
      </td>
      <td>{i.assignee ?? <span class="muted">—</span>}</td>
      <td class="nowrap">{when(i.last_seen)}</td>
    </tr>
  );
}
