/**
 * `correlate requests within <d>`: the records several logs keep of one request become one event
 * before a rule looks at them (docs/rule-language.md, "Correlating requests across logs").
 *
 * A WAF and the gateway behind it log separately: AWS WAF records the verdict but no status, the
 * load balancer the status but no verdict; a ModSecurity audit entry and the nginx access line of
 * one request share a request id. Two records are one request when they come from different
 * sources and carry the same `http.request.id`, or — when either lacks one — the same client
 * address, method and path within the tolerance of each other. Each field of the merged event
 * comes from the first record that has it, request records before WAF verdicts, so the status is
 * the gateway's and the verdict the WAF's; its time is the earliest record's.
 *
 * Both backends run correlated rules through this function: the in-process evaluator directly,
 * the Elasticsearch executor on the events it fetched (a superset, see `relaxForCorrelation`).
 */
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { FilterExpr } from '../../parser/ir.ts';

/** Fields records are matched on (a correlated rule's projection keeps them). */
export const CORRELATION_FIELDS = [
  'http.request.id',
  'source.ip',
  'http.request.method',
  'url.path',
  'gatewatch.source.name',
  'event.dataset',
  'observer.type',
] as const;

/** The filter fields a record can be selected by before its partners' fields join it. */
const MATCH_KEYS = new Set<string>([
  'source.ip',
  'http.request.method',
  'url.path',
  'http.request.id',
  '@timestamp',
]);

type Doc = Record<string, unknown>;

const get = (o: unknown, path: string): unknown => {
  let v: unknown = o;
  for (const k of path.split('.')) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Doc)[k];
  }
  return v;
};

const sourceOf = (e: Doc) => String(get(e, 'gatewatch.source.name') ?? get(e, 'event.dataset') ?? '');
const isWafRecord = (e: Doc) => get(e, 'observer.type') === 'waf';

/** `a` with every field it lacks taken from `b` (deep; arrays and scalars are taken whole). */
function fill(a: Doc, b: Doc): Doc {
  const out: Doc = { ...a };
  for (const [k, bv] of Object.entries(b)) {
    const av = out[k];
    if (av === undefined) out[k] = bv;
    else if (
      av !== null &&
      bv !== null &&
      typeof av === 'object' &&
      typeof bv === 'object' &&
      !Array.isArray(av) &&
      !Array.isArray(bv)
    )
      out[k] = fill(av as Doc, bv as Doc);
  }
  return out;
}

/** One event per request: records merged as the module comment says; input order not required. */
export function mergeRequests<E extends GatewatchEvent>(events: readonly E[], withinMs: number): E[] {
  const items = events
    .map((e) => ({ e: e as unknown as Doc, t: Date.parse(String(e['@timestamp'])) }))
    .filter((x) => !Number.isNaN(x.t))
    .sort((a, b) => a.t - b.t);
  /** Groups of records, each one request; `members` in time order. */
  const groups: { members: Doc[]; t: number; sources: Set<string> }[] = [];
  const byId = new Map<string, (typeof groups)[number]>();
  /** Recent groups by address, method and path, for records without a shared id. */
  const byKey = new Map<string, (typeof groups)[number][]>();
  for (const { e, t } of items) {
    const source = sourceOf(e);
    const id = get(e, 'http.request.id');
    let group: (typeof groups)[number] | undefined;
    if (typeof id === 'string' && id !== '') {
      const g = byId.get(id);
      if (g && !g.sources.has(source) && Math.abs(t - g.t) <= withinMs) group = g;
    }
    const ip = get(e, 'source.ip');
    const path = get(e, 'url.path');
    const key =
      ip === undefined || path === undefined
        ? undefined
        : `${ip}\u0000${get(e, 'http.request.method') ?? ''}\u0000${path}`;
    if (group === undefined && key !== undefined) {
      const recent = byKey.get(key);
      if (recent) {
        // Drop groups too old to match anything from now on (records arrive in time order).
        while (recent.length > 0 && t - recent[0]!.t > withinMs) recent.shift();
        group = recent.find((g) => {
          if (g.sources.has(source)) return false;
          // A shared id decides: two records with different ids are two requests.
          const gid = get(g.members[0], 'http.request.id');
          return !(
            typeof id === 'string' &&
            id !== '' &&
            typeof gid === 'string' &&
            gid !== '' &&
            gid !== id
          );
        });
      }
    }
    if (group) {
      group.members.push(e);
      group.sources.add(source);
      if (typeof id === 'string' && id !== '' && !byId.has(id)) byId.set(id, group);
      continue;
    }
    const fresh = { members: [e], t, sources: new Set([source]) };
    groups.push(fresh);
    if (typeof id === 'string' && id !== '') byId.set(id, fresh);
    if (key !== undefined) {
      const list = byKey.get(key);
      if (list) list.push(fresh);
      else byKey.set(key, [fresh]);
    }
  }
  return groups.map((g) => {
    if (g.members.length === 1) return g.members[0] as unknown as E;
    // Request records first (their status and timing), WAF verdicts after, each in time order.
    const ordered = [...g.members.filter((m) => !isWafRecord(m)), ...g.members.filter(isWafRecord)];
    let merged = ordered[0]!;
    for (const m of ordered.slice(1)) merged = fill(merged, m);
    return { ...merged, '@timestamp': g.members[0]!['@timestamp'] } as unknown as E;
  });
}

/**
 * A filter that holds for every record whose merged event could satisfy `f`: predicates on
 * fields a partner record may bring become `true` (with their negations), those on the fields
 * records are matched by stay. Used to fetch the candidates of a correlated rule.
 */
export function relaxForCorrelation(f: FilterExpr): FilterExpr {
  const usesOthers = (x: FilterExpr): boolean => {
    switch (x.op) {
      case 'and':
      case 'or':
        return x.args.some(usesOthers);
      case 'not':
        return usesOthers(x.arg);
      case 'true':
        return false;
      default:
        return !MATCH_KEYS.has(x.field);
    }
  };
  switch (f.op) {
    case 'and':
      return { op: 'and', args: f.args.map(relaxForCorrelation) };
    case 'or':
      return { op: 'or', args: f.args.map(relaxForCorrelation) };
    case 'not':
      return usesOthers(f.arg) ? { op: 'true' } : f;
    case 'true':
      return f;
    default:
      return MATCH_KEYS.has(f.field) ? f : { op: 'true' };
  }
}
