/** An entity: first and last seen, activity over time, its incidents, inventory facts for routes. */
import { useMemo } from 'preact/hooks';
import { Link } from 'wouter-preact';
import { api, must } from '../api/client.ts';
import type { Endpoint, EntityType } from '../api/types.ts';
import { Chart } from '../components/Chart.tsx';
import { Empty, ErrorNote, Loading, Section, SeverityBadge, StatusBadge } from '../components/ui.tsx';
import { duration, ENTITY_LABEL, when } from '../format.ts';
import { useLoad, useTitle } from '../hooks.ts';

export function EntityPage({ type, value }: { type: string; value: string }) {
  useTitle(`${ENTITY_LABEL[type] ?? type} ${value}`);
  const entity = useLoad(
    () =>
      must(
        api.GET('/api/v1/entities/{type}/{value}', { params: { path: { type: type as EntityType, value } } }),
      ),
    [type, value],
  );
  const incidents = useLoad(
    () =>
      must(
        api.GET('/api/v1/incidents', {
          params: { query: { entity: [value], limit: 50, sort: 'last_seen' } },
        }),
      ),
    [value],
  );
  const endpoints = useLoad(
    () =>
      type === 'route'
        ? must(
            api.GET('/api/v1/inventory/endpoints', {
              params: { query: { route_prefix: value, limit: 100 } },
            }),
          )
        : Promise.resolve(undefined),
    [type, value],
  );
  const chart = useMemo(
    () =>
      entity.data && {
        x: entity.data.activity.map((b) => Date.parse(b.start)),
        series: [{ label: 'events', color: '#1570ef', values: entity.data.activity.map((b) => b.count) }],
      },
    [entity.data],
  );
  const e = entity.data;
  return (
    <>
      <p class="crumbs">
        <Link href="/">Incidents</Link> / {ENTITY_LABEL[type] ?? type}
      </p>
      <h1>
        {ENTITY_LABEL[type] ?? type} <span class="mono">{value}</span>
      </h1>
      {entity.error && <ErrorNote error={entity.error} />}
      {!e && !entity.error && <Loading what="activity" />}
      {e && (
        <>
          <table class="kv">
            <tbody>
              <tr>
                <th scope="row">First seen</th>
                <td data-testid="first-seen">{when(e.first_seen)}</td>
              </tr>
              <tr>
                <th scope="row">Last seen</th>
                <td>{when(e.last_seen)}</td>
              </tr>
              <tr>
                <th scope="row">Events</th>
                <td>{e.event_count}</td>
              </tr>
              <tr>
                <th scope="row">Found by</th>
                <td>
                  <code>{e.filter}</code>{' '}
                  <Link
                    href={`/events?${new URLSearchParams({ filter: e.filter, from: e.from, to: new Date(Date.parse(e.to) + 1).toISOString() })}`}
                  >
                    Search its events
                  </Link>
                </td>
              </tr>
            </tbody>
          </table>
          {chart && (
            <Section title="Activity">
              <Chart
                {...chart}
                label={`Events per ${duration(e.interval_ms)}, ${when(e.from)} – ${when(e.to)}`}
                testId="entity-chart"
              />
            </Section>
          )}
        </>
      )}
      <Section title="Incidents">
        {incidents.error && <ErrorNote error={incidents.error} />}
        {incidents.data && incidents.data.items.length === 0 && <Empty>No incident names this entity.</Empty>}
        {incidents.data && incidents.data.items.length > 0 && (
          <table class="grid" aria-label="Incidents of this entity">
            <thead>
              <tr>
                <th scope="col">Severity</th>
                <th scope="col">Incident</th>
                <th scope="col">Status</th>
                <th scope="col">Last seen</th>
              </tr>
            </thead>
            <tbody>
              {incidents.data.items.map((i) => (
                <tr key={i.id}>
                  <td>
                    <SeverityBadge severity={i.severity} />
                  </td>
                  <td>
                    <Link href={`/incidents/${encodeURIComponent(i.id)}`}>{i.title}</Link>
                  </td>
                  <td>
                    <StatusBadge status={i.status} />
                  </td>
                  <td>{when(i.last_seen)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
      {type === 'route' && (
        <Section title="Inventory">
          {endpoints.error && <ErrorNote error={endpoints.error} />}
          {endpoints.data && <EndpointFacts items={endpoints.data.items.filter((x) => x.route === value)} />}
        </Section>
      )}
    </>
  );
}

function EndpointFacts({ items }: { items: Endpoint[] }) {
  if (items.length === 0) return <Empty>The API inventory has no endpoint with this route template.</Empty>;
  return (
    <table class="grid" aria-label="Endpoints with this route">
      <thead>
        <tr>
          <th scope="col">Host</th>
          <th scope="col">Method</th>
          <th scope="col">Classification</th>
          <th scope="col">Requests</th>
          <th scope="col">First seen</th>
          <th scope="col">Last seen</th>
        </tr>
      </thead>
      <tbody>
        {items.map((x) => (
          <tr key={x.id}>
            <td>{x.host}</td>
            <td>{x.method}</td>
            <td>{x.classification}</td>
            <td>{x.requests}</td>
            <td>{when(x.first_seen)}</td>
            <td>{when(x.last_seen)}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}
