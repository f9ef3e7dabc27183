/**
 * The aggregation model both backends share. Each backend reduces events to `Partial`s, one
 * per (group, time bucket): counts, filter counts, numeric stats and value histograms. From
 * there on the code is common: combining buckets into sliding windows, metric values,
 * `having`, baseline statistics. So the backends can only disagree on the partials, which the
 * differential tests compare.
 */
import type { FilterExpr, HavingExpr, Metric } from '../../parser/ir.ts';
import type { TimeRange } from './types.ts';

export type TermKey = string | number | boolean;

export interface NumStat {
  n: number;
  sum: number;
  min: number;
  max: number;
}

export interface Partial {
  count: number;
  firstTs: number;
  lastTs: number;
  /** Event counts per plan filter. */
  wheres: number[];
  /** Numeric statistics per plan stats field. */
  stats: NumStat[];
  /** Distinct value → number of events carrying it, per plan terms field; null = not enumerated. */
  terms: (Map<TermKey, number> | null)[];
  /** Approximate values (Elasticsearch cardinality/percentiles) by metric name, when terms is null. */
  approx?: Record<string, number | null>;
  /** Earliest event ids by (@timestamp, event.id), at most the sample size (evaluator only). */
  samples?: string[];
  /**
   * Read from partials with its values not merged (`terms` not filled): it lies in no window
   * that can fire, as decided from `knownMetrics`. Combining it is a bug, so `combine` refuses.
   */
  deferred?: boolean;
}

export interface AggPlan {
  metrics: Metric[];
  filters: FilterExpr[];
  statsFields: string[];
  termsFields: string[];
  /** For each metric: indexes into the above. */
  refs: { where?: number; of?: number; stats?: number; terms?: number }[];
}

export function buildPlan(metrics: Metric[]): AggPlan {
  const filters: FilterExpr[] = [];
  const filterKeys: string[] = [];
  const statsFields: string[] = [];
  const termsFields: string[] = [];
  const addFilter = (f: FilterExpr) => {
    const k = JSON.stringify(f);
    let i = filterKeys.indexOf(k);
    if (i < 0) {
      i = filters.length;
      filters.push(f);
      filterKeys.push(k);
    }
    return i;
  };
  const add = (list: string[], field: string) => {
    let i = list.indexOf(field);
    if (i < 0) {
      i = list.length;
      list.push(field);
    }
    return i;
  };
  const refs = metrics.map((m) => {
    switch (m.fn) {
      case 'count':
        return m.where ? { where: addFilter(m.where) } : {};
      case 'ratio':
        return { where: addFilter(m.where), ...(m.of ? { of: addFilter(m.of) } : {}) };
      case 'distinct_count':
      case 'percentile':
        return { terms: add(termsFields, m.field) };
      default:
        return { stats: add(statsFields, m.field) };
    }
  });
  return { metrics, filters, statsFields, termsFields, refs };
}

export function emptyPartial(plan: AggPlan): Partial {
  return {
    count: 0,
    firstTs: Number.POSITIVE_INFINITY,
    lastTs: Number.NEGATIVE_INFINITY,
    wheres: plan.filters.map(() => 0),
    stats: plan.statsFields.map(() => ({
      n: 0,
      sum: 0,
      min: Number.POSITIVE_INFINITY,
      max: Number.NEGATIVE_INFINITY,
    })),
    terms: plan.termsFields.map(() => new Map()),
  };
}

/** Merge partials of consecutive buckets (sliding windows). */
export function combine(plan: AggPlan, parts: Partial[], sampleSize: number): Partial {
  if (parts.length === 1 && !parts[0]!.deferred) return parts[0]!;
  const out = emptyPartial(plan);
  let samples: string[] | undefined;
  for (const p of parts) {
    if (p.deferred)
      throw new Error('internal: a window that cannot fire was combined (cell values not merged)');
    out.count += p.count;
    out.firstTs = Math.min(out.firstTs, p.firstTs);
    out.lastTs = Math.max(out.lastTs, p.lastTs);
    p.wheres.forEach((w, i) => {
      out.wheres[i]! += w;
    });
    p.stats.forEach((s, i) => {
      const o = out.stats[i]!;
      o.n += s.n;
      o.sum += s.sum;
      o.min = Math.min(o.min, s.min);
      o.max = Math.max(o.max, s.max);
    });
    p.terms.forEach((t, i) => {
      const o = out.terms[i];
      if (t === null || o === null || o === undefined) {
        out.terms[i] = null;
        return;
      }
      for (const [k, c] of t) o.set(k, (o.get(k) ?? 0) + c);
    });
    if (p.approx) {
      out.approx ??= {};
      for (const [k, v] of Object.entries(p.approx)) {
        const cur = out.approx[k];
        out.approx[k] = v === null ? (cur ?? null) : Math.max(cur ?? v, v);
      }
    }
    // parts arrive in time order and buckets do not overlap: concatenation stays ordered
    if (p.samples) samples = (samples ?? []).concat(p.samples).slice(0, sampleSize);
  }
  if (samples) out.samples = samples;
  return out;
}

/** R-7 percentile from a value histogram. */
export function percentileOf(hist: Map<TermKey, number>, p: number): number | null {
  const entries = [...hist.entries()]
    .filter((e): e is [number, number] => typeof e[0] === 'number')
    .sort((a, b) => a[0] - b[0]);
  let n = 0;
  for (const [, c] of entries) n += c;
  if (n === 0) return null;
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  const hi = Math.ceil(h);
  const at = (rank: number): number => {
    let seen = 0;
    for (const [v, c] of entries) {
      seen += c;
      if (rank < seen) return v;
    }
    return entries[entries.length - 1]![0];
  };
  const xl = at(lo);
  const xh = hi === lo ? xl : at(hi);
  return xl + (h - lo) * (xh - xl);
}

export interface MetricValues {
  values: Record<string, number | null>;
  /** Names of metrics whose value is approximate (not enumerated exactly). */
  approximate: string[];
}

export function computeMetrics(plan: AggPlan, p: Partial): MetricValues {
  const values: Record<string, number | null> = {};
  const approximate: string[] = [];
  plan.metrics.forEach((m, i) => {
    const ref = plan.refs[i]!;
    switch (m.fn) {
      case 'count':
        values[m.name] = ref.where === undefined ? p.count : p.wheres[ref.where]!;
        break;
      case 'ratio': {
        const num = p.wheres[ref.where!]!;
        const den = ref.of === undefined ? p.count : p.wheres[ref.of]!;
        values[m.name] = den === 0 ? null : num / den;
        break;
      }
      case 'sum':
        values[m.name] = p.stats[ref.stats!]!.sum;
        break;
      case 'avg': {
        const s = p.stats[ref.stats!]!;
        values[m.name] = s.n === 0 ? null : s.sum / s.n;
        break;
      }
      case 'min':
      case 'max': {
        const s = p.stats[ref.stats!]!;
        values[m.name] = s.n === 0 ? null : m.fn === 'min' ? s.min : s.max;
        break;
      }
      case 'distinct_count':
      case 'percentile': {
        const t = p.terms[ref.terms!];
        if (t === null || t === undefined) {
          values[m.name] = p.approx?.[m.name] ?? null;
          approximate.push(m.name);
        } else values[m.name] = m.fn === 'distinct_count' ? t.size : percentileOf(t, m.p);
        break;
      }
    }
  });
  return { values, approximate };
}

/**
 * `having` with only some metric values known: false when it is false whatever the unknown
 * metrics are, true when it is true whatever they are, undefined otherwise.
 */
export function havingMaybe(h: HavingExpr, known: Record<string, number | null>): boolean | undefined {
  switch (h.op) {
    case 'and': {
      let all = true;
      for (const a of h.args) {
        const v = havingMaybe(a, known);
        if (v === false) return false;
        if (v === undefined) all = false;
      }
      return all ? true : undefined;
    }
    case 'or': {
      let none = true;
      for (const a of h.args) {
        const v = havingMaybe(a, known);
        if (v === true) return true;
        if (v === undefined) none = false;
      }
      return none ? false : undefined;
    }
    case 'not': {
      const v = havingMaybe(h.arg, known);
      return v === undefined ? undefined : !v;
    }
    case 'cmp':
    case 'cmp_metric': {
      if (!(h.metric in known) || (h.op === 'cmp_metric' && !(h.other in known))) return undefined;
      return evalHaving(h, known);
    }
  }
}

export function evalHaving(h: HavingExpr, values: Record<string, number | null>): boolean {
  switch (h.op) {
    case 'and':
      return h.args.every((a) => evalHaving(a, values));
    case 'or':
      return h.args.some((a) => evalHaving(a, values));
    case 'not':
      return !evalHaving(h.arg, values);
    case 'cmp':
    case 'cmp_metric': {
      const a = values[h.metric];
      const b = h.op === 'cmp' ? h.value : values[h.other];
      if (a === null || a === undefined || b === null || b === undefined) return false;
      switch (h.cmp) {
        case '==':
          return a === b;
        case '!=':
          return a !== b;
        case '<':
          return a < b;
        case '<=':
          return a <= b;
        case '>':
          return a > b;
        case '>=':
          return a >= b;
      }
    }
  }
}

/** Per group: its key values and its buckets (bucket start → partial). */
export interface GroupBuckets {
  key: string;
  values: (string | number | boolean)[];
  buckets: Map<number, Partial>;
}

export interface WindowHit {
  group: GroupBuckets;
  window: TimeRange;
  partial: Partial;
  metrics: MetricValues;
}

/**
 * Threshold windows over bucketed partials (bucket size = window size for tumbling, slide for
 * sliding). Only windows entirely inside `range` are evaluated.
 */
export function thresholdWindows(
  plan: AggPlan,
  groups: Iterable<GroupBuckets>,
  sizeMs: number,
  slideMs: number,
  range: TimeRange,
  having: HavingExpr,
  sampleSize: number,
): WindowHit[] {
  const hits: WindowHit[] = [];
  const per = Math.round(sizeMs / slideMs);
  const cheap = plan.metrics.some((m) => CHEAP.has(m.fn));
  const counts = new Array<number>(plan.filters.length + 1);
  for (const group of groups) {
    const starts = new Set<number>();
    for (const b of group.buckets.keys()) {
      for (let j = 0; j < per; j++) {
        const s = b - j * slideMs;
        if (s >= range.start && s + sizeMs <= range.end) starts.add(s);
      }
    }
    for (const s of [...starts].sort((a, b) => a - b)) {
      const parts: Partial[] = [];
      for (let j = 0; j < per; j++) {
        const p = group.buckets.get(s + j * slideMs);
        if (p) parts.push(p);
      }
      // Windows that cannot fire whatever their other metrics (from event counts and numeric
      // stats alone) are not combined: most windows of a busy rule, and combining merges every
      // value map. Partials read the same way leave those windows' values unmerged.
      if (cheap && havingMaybe(having, knownMetrics(plan, parts, counts)) === false) continue;
      const partial = combine(plan, parts, sampleSize);
      const metrics = computeMetrics(plan, partial);
      if (evalHaving(having, metrics.values))
        hits.push({ group, window: { start: s, end: s + sizeMs }, partial, metrics });
    }
  }
  return hits;
}

export interface BaselineHit extends WindowHit {
  mean: number;
  stddev: number;
  buckets: number;
}

/** Metrics known exactly from event counts and numeric stats, without merging value maps. */
const CHEAP = new Set(['count', 'ratio', 'sum', 'avg', 'min', 'max']);

/**
 * The metrics of the events in `parts` that counts and numeric stats give exactly: count(),
 * count(where), ratio, sum, avg, min, max (distinct counts and percentiles unknown). `sums` is
 * scratch space of `plan.filters.length + 1` numbers.
 */
export function knownMetrics(
  plan: AggPlan,
  parts: Partial[],
  sums: number[] = new Array<number>(plan.filters.length + 1),
): Record<string, number | null> {
  sums.fill(0);
  for (const p of parts) {
    sums[0]! += p.count;
    for (let i = 0; i < p.wheres.length; i++) sums[i + 1]! += p.wheres[i]!;
  }
  const known: Record<string, number | null> = {};
  plan.metrics.forEach((m, i) => {
    const ref = plan.refs[i]!;
    if (m.fn === 'count') known[m.name] = ref.where === undefined ? sums[0]! : sums[ref.where + 1]!;
    else if (m.fn === 'ratio') {
      const den = ref.of === undefined ? sums[0]! : sums[ref.of + 1]!;
      known[m.name] = den === 0 ? null : sums[ref.where! + 1]! / den;
    } else if (ref.stats !== undefined) {
      let n = 0;
      let sum = 0;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const p of parts) {
        const s = p.stats[ref.stats]!;
        n += s.n;
        sum += s.sum;
        if (s.min < min) min = s.min;
        if (s.max > max) max = s.max;
      }
      if (m.fn === 'sum') known[m.name] = sum;
      else if (m.fn === 'avg') known[m.name] = n === 0 ? null : sum / n;
      else if (m.fn === 'min') known[m.name] = n === 0 ? null : min;
      else if (m.fn === 'max') known[m.name] = n === 0 ? null : max;
    }
  });
  return known;
}

/** Aggregates whose value over an empty history bucket is 0; the others exclude the bucket. */
const ZERO_WHEN_EMPTY = new Set(['count', 'distinct_count', 'sum']);

export function baselineWindows(
  plan: AggPlan,
  groups: Iterable<GroupBuckets>,
  spec: {
    windowMs: number;
    historyMs: number;
    comparison: { kind: 'ratio' | 'stddev'; min: number };
    minHistoryBuckets: number;
    having?: HavingExpr;
  },
  range: TimeRange,
): BaselineHit[] {
  const metric = plan.metrics[0]!;
  const w = spec.windowMs;
  const n = Math.round(spec.historyMs / w);
  const hits: BaselineHit[] = [];
  const zeroWhenEmpty = ZERO_WHEN_EMPTY.has(metric.fn);
  for (const group of groups) {
    // present buckets in time order with their metric value (computed once)
    const keys = [...group.buckets.keys()].sort((a, b) => a - b);
    const vals = keys.map((k) => computeMetrics(plan, group.buckets.get(k)!).values[metric.name] ?? null);
    let lo = 0;
    for (let idx = 0; idx < keys.length; idx++) {
      const s = keys[idx]!;
      if (s < range.start || s + w > range.end) continue;
      while (keys[lo]! < s - n * w) lo++;
      const partial = group.buckets.get(s)!;
      const metrics = computeMetrics(plan, partial);
      const current = metrics.values[metric.name] ?? null;
      // history: present buckets in [s − n·w, s); empty ones are 0 (count-like) or excluded
      const buckets = idx - lo;
      let included = zeroWhenEmpty ? n : 0;
      let sum = 0;
      for (let j = lo; j < idx; j++) {
        const v = vals[j];
        if (v !== null && v !== undefined) {
          sum += v;
          if (!zeroWhenEmpty) included++;
        }
      }
      if (buckets < spec.minHistoryBuckets || current === null || included === 0) continue;
      const mean = sum / included;
      let sq = 0;
      let counted = 0;
      for (let j = lo; j < idx; j++) {
        const v = vals[j];
        if (v !== null && v !== undefined) {
          sq += (v - mean) * (v - mean);
          counted++;
        }
      }
      if (zeroWhenEmpty) sq += (n - counted) * mean * mean;
      const stddev = Math.sqrt(sq / included);
      let ok: boolean;
      if (spec.comparison.kind === 'ratio') ok = mean > 0 && current / mean >= spec.comparison.min;
      else {
        const z = stddev === 0 ? (current > mean ? Number.POSITIVE_INFINITY : 0) : (current - mean) / stddev;
        ok = z >= spec.comparison.min;
      }
      if (!ok) continue;
      const values = { ...metrics.values, 'baseline.mean': mean, 'baseline.stddev': stddev };
      if (spec.having && !evalHaving(spec.having, values)) continue;
      hits.push({
        group,
        window: { start: s, end: s + w },
        partial,
        metrics: { values: { ...values, 'baseline.buckets': buckets }, approximate: metrics.approximate },
        mean,
        stddev,
        buckets,
      });
    }
  }
  return hits;
}
