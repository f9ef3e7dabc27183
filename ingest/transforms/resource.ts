/**
 * The resource a request read (`gatewatch.resource`): its path plus the query parameters that
 * select a page or an object, in a canonical order.
 *
 * Scraping walks listings (`/products?page=1 … ?page=4000`) and objects addressed in the query
 * (`/item?id=…`); counting distinct paths sees one path there. Counting distinct resources sees
 * each page and object once, and ignores parameters that only shape the answer (sort, fields,
 * page size) or vary per request (cache busters, timestamps).
 */
import type { EventDraft } from '../formats/types.ts';
import { child } from '../formats/util.ts';
import { queryPairs } from './identity.ts';

/** Parameters that say which page of a listing, by position or continuation token. */
const PAGINATION = new Set([
  'page',
  'p',
  'pg',
  'pagenum',
  'page_num',
  'pagenumber',
  'page_number',
  'pageno',
  'offset',
  'start',
  'startindex',
  'start_index',
  'skip',
  'from',
  'cursor',
  'after',
  'before',
  'starting_after',
  'ending_before',
  'since_id',
  'max_id',
  'last_id',
  'marker',
  'next',
  'next_token',
  'nexttoken',
  'page_token',
  'pagetoken',
  'continuation',
  'continuation_token',
  'continuationtoken',
  'exclusivestartkey',
  'scroll_id',
]);

/** Parameters that name an object: `id`, `ids`, `*_id`, `*Id`, `uuid`, `sku`, `slug`. */
function isObjectParam(name: string): boolean {
  if (name.length > 48) return false;
  const n = name.toLowerCase();
  if (n === 'id' || n === 'ids' || n === 'uuid' || n === 'sku' || n === 'slug') return true;
  return n.endsWith('_id') || n.endsWith('-id') || (name.endsWith('Id') && name.length > 2);
}

export function resourceOf(path: string, query: string | undefined): string {
  if (query === undefined || query === '') return path;
  const selected: [string, string][] = [];
  for (const [name, value] of queryPairs(query)) {
    if (value !== '' && (PAGINATION.has(name.toLowerCase()) || isObjectParam(name)))
      selected.push([name, value]);
  }
  if (selected.length === 0) return path;
  selected.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : a[1] < b[1] ? -1 : a[1] > b[1] ? 1 : 0));
  let out = `${path}?`;
  for (let i = 0; i < selected.length; i++) out += `${i > 0 ? '&' : ''}${selected[i]![0]}=${selected[i]![1]}`;
  return out.length > 4096 ? out.slice(0, 4096) : out;
}

export function applyResource(ev: EventDraft): void {
  const path = ev.url?.path;
  if (path === undefined) return;
  child(ev, 'gatewatch').resource = resourceOf(path, ev.url?.query);
}
