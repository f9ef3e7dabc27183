/** Event search in the rule language's filter syntax, with field-name completion from the schema. */
import { useState } from 'preact/hooks';
import { api, must } from '../api/client.ts';
import { FilterInput } from '../components/editor.tsx';
import { Empty, ErrorNote, Loading } from '../components/ui.tsx';
import { fromLocalInput, toLocalInput } from '../format.ts';
import { useLoad, useQuery, useTitle } from '../hooks.ts';
import { EventTable } from './Incident.tsx';

export default function EventsPage() {
  useTitle('Events');
  const [query, setQuery] = useQuery();
  const fields = useLoad(() => must(api.GET('/api/v1/events/fields')), []);
  const now = Date.now();
  const filter = query.get('filter') ?? '';
  const from = query.get('from') ?? new Date(now - 86_400_000).toISOString();
  const to = query.get('to') ?? new Date(now).toISOString();
  const [draft, setDraft] = useState({ filter, from, to });
  const [pages, setPages] = useState<string[]>([]);
  const cursor = pages[pages.length - 1];
  const result = useLoad(
    () =>
      filter
        ? must(
            api.POST('/api/v1/events/search', {
              body: { filter, from, to, limit: 50, order: 'desc', ...(cursor ? { cursor } : {}) },
            }),
          )
        : Promise.resolve(undefined),
    [filter, from, to, cursor],
  );
  const submit = () => {
    setPages([]);
    setQuery(new URLSearchParams({ filter: draft.filter, from: draft.from, to: draft.to }));
  };
  return (
    <>
      <h1>Events</h1>
      <form
        class="search"
        aria-label="Search events"
        onSubmit={(e) => {
          e.preventDefault();
          submit();
        }}
      >
        <span id="filter-label" class="label">
          Filter (rule language; Ctrl-Space completes field names)
        </span>
        {fields.data ? (
          <FilterInput
            value={draft.filter}
            fields={fields.data.items}
            label="Filter"
            onChange={(f) => setDraft((d) => ({ ...d, filter: f }))}
            onSubmit={submit}
          />
        ) : (
          <Loading what="fields" />
        )}
        <div class="row">
          <label for="ev-from">From (UTC)</label>
          <input
            id="ev-from"
            type="datetime-local"
            value={toLocalInput(draft.from)}
            onChange={(e) =>
              setDraft((d) => ({ ...d, from: fromLocalInput(e.currentTarget.value) ?? d.from }))
            }
          />
          <label for="ev-to">To (UTC)</label>
          <input
            id="ev-to"
            type="datetime-local"
            value={toLocalInput(draft.to)}
            onChange={(e) => setDraft((d) => ({ ...d, to: fromLocalInput(e.currentTarget.value) ?? d.to }))}
          />
          <button type="submit">Search</button>
        </div>
      </form>
      <ErrorNote error={result.error} />
      {!filter && (
        <Empty>
          Write a filter, e.g. <code>http.response.status_code &gt;= 500</code>, and search.
        </Empty>
      )}
      {filter && result.loading && <Loading what="events" />}
      {result.data && result.data.items.length === 0 && <Empty>No event matches.</Empty>}
      {result.data && result.data.items.length > 0 && (
        <>
          <p data-testid="events-count">{result.data.items.length} events on this page</p>
          <EventTable events={result.data.items} />
          <nav class="pager" aria-label="Pages">
            <button type="button" disabled={pages.length === 0} onClick={() => setPages(pages.slice(0, -1))}>
              Previous page
            </button>
            <button
              type="button"
              disabled={!result.data.next_cursor}
              onClick={() => setPages([...pages, result.data!.next_cursor!])}
            >
              Next page
            </button>
          </nav>
        </>
      )}
    </>
  );
}
