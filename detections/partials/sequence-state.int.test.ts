/**
 * Sequence state across scheduled runs (docs/partials.md, "Sequences across runs"), on real
 * Redis and Elasticsearch with a controlled clock: a series of scheduled runs that carry their
 * state opens exactly the detections the in-process evaluator finds in one pass over the whole
 * span — for the built-in sequence rules and the differential tests' sequence cases, with
 * matches straddling runs, trailing absences decided in a later run and repeat steps spanning
 * runs — including after a crash between the state write and the checkpoint write, and when the
 * state is missing, at the wrong watermark or over its size cap (noted in the run record).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../core/queue/bullmq.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { bulkWrite, indexNames } from '../../core/store/elasticsearch.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { loadRuleFiles } from '../../parser/index.ts';
import type { SequenceRule } from '../../parser/ir.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { evaluateRule } from '../engine/evaluate.ts';
import { prng } from '../engine/generate.ts';
import { ev, sequenceCases } from '../engine/testing.ts';
import { toIncident } from '../engine/types.ts';
import { elasticsearchExecutor } from '../runtime.ts';
import { DetectionScheduler, type RuleExecutor, type RunRecord } from '../scheduler/scheduler.ts';

const ctx = integrationContext('seq-state');
const names = indexNames(ctx.prefix);
const M = 60_000;
/** Events lie in [T0, T0 + 75m); the first scheduled run ends at T0 + 30m, the last at T0 + 80m. */
const T0 = Date.parse('2026-11-20T10:00:00.000Z');
const FIRST_END = T0 + 30 * M;
const LAST_END = T0 + 80 * M;
/**
 * Clock steps between runs (minutes): regular, short, late and one past the catch-up step
 * (MAX_CATCH_UP), run as two ranges.
 */
const STEPS = [5, 5, 7, 3, 5, 13, 5, 5, 4, 6, 5];
const MAX_CATCH_UP = 10 * M;

// ---- rules: the built-in sequence rules and the differential tests' sequence cases ----------
const custom: SequenceRule[] = sequenceCases();
const builtIn = (await loadRuleFiles(['detections/rules'])).rules.filter(
  (r): r is SequenceRule => r.kind === 'sequence',
);
const rules: SequenceRule[] = [...builtIn, ...custom];
/** The same rule under another id and version: each scenario keeps its own states and checkpoints. */
const as = (rule: SequenceRule, tag: string): SequenceRule => ({
  ...rule,
  id: `${rule.id}-${tag}`,
  version: `${rule.version}-${tag}`,
});

// ---- events ---------------------------------------------------------------------------------
/** Dense and sparse users and clients: logins failing and succeeding, resets, WAF verdicts. */
function randomEvents(n: number, seed: number): GatewatchEvent[] {
  const r = prng(seed);
  const users = ['u0', 'u0', 'u0', 'u1', 'u1', 'u1', 'u2', 'u2', 'u3', 'u4', 'u5', 'u6'];
  const ips = ['203.0.113.1', '203.0.113.2', '203.0.113.3', '198.51.100.7'];
  const routes = ['/api/v1/orders', '/api/v1/search'];
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!;
  const out: GatewatchEvent[] = [];
  for (let i = 0; i < n; i++) {
    const ts = T0 + Math.floor(r() * 75 * M);
    const user = pick(users);
    const ip = pick(ips);
    const id = `sq-${seed}-${String(i).padStart(6, '0')}`;
    const x = r();
    const authFields = (ok: boolean, route: string) => ({
      'user.name': user,
      'source.ip': ip,
      'gatewatch.route': route,
      'gatewatch.auth.attempt': true,
      'gatewatch.auth.outcome': ok ? 'success' : 'failure',
      'event.outcome': ok ? 'success' : 'failure',
      'http.request.method': 'POST',
      'http.response.status_code': ok ? 200 : 401,
    });
    if (x < 0.4) out.push(ev(ts, authFields(false, pick(['/api/v1/login', '/login'])), id));
    else if (x < 0.5) out.push(ev(ts, authFields(true, pick(['/api/v1/login', '/login'])), id));
    else if (x < 0.53) out.push(ev(ts, authFields(true, '/password/reset'), id));
    else if (x < 0.8) {
      const action = r() < 0.6 ? 'block' : r() < 0.7 ? 'allow' : 'count';
      out.push(
        ev(
          ts,
          {
            'source.ip': ip,
            'gatewatch.route': pick(routes),
            'gatewatch.waf.action': action,
            'http.request.method': 'GET',
            ...(action !== 'block' && r() < 0.5 ? { 'gatewatch.upstream.status_code': 200 } : {}),
          },
          id,
        ),
      );
    } else
      out.push(
        ev(
          ts,
          {
            'user.name': user,
            'source.ip': ip,
            'gatewatch.route': '/products',
            'http.request.method': 'GET',
            'http.response.status_code': 200,
          },
          id,
        ),
      );
  }
  return out;
}

/** Hand-placed cases at run boundaries (the runs end at FIRST_END + 5m, + 10m, + 17m, …). */
function placedEvents(): GatewatchEvent[] {
  const out: GatewatchEvent[] = [];
  const auth = (ts: number, user: string, ok: boolean, id: string) =>
    ev(
      ts,
      {
        'user.name': user,
        'source.ip': '203.0.113.99',
        'gatewatch.route': '/api/v1/login',
        'gatewatch.auth.attempt': true,
        'gatewatch.auth.outcome': ok ? 'success' : 'failure',
        'event.outcome': ok ? 'success' : 'failure',
        'http.request.method': 'POST',
        'http.response.status_code': ok ? 200 : 401,
      },
      id,
    );
  // A repeat step spanning runs and a match straddling two: 12 failures from 3 minutes before a
  // run's end to 3 minutes after it, the success 2 minutes later (in the next run).
  const b = FIRST_END + 5 * M;
  for (let i = 0; i < 12; i++) out.push(auth(b - 3 * M + i * 30_000, 'straddle', false, `pl-str-${i}`));
  out.push(auth(b + 5 * M, 'straddle', true, 'pl-str-ok'));
  // A trailing absence decided in a later run: a quiet user's successful login 2 minutes
  // before a run's end, nothing from them for 20 minutes after.
  out.push(auth(FIRST_END + 15 * M, 'quiet-user', true, 'pl-quiet-login'));
  // The same, broken in the next run by a request that is not a login.
  out.push(auth(FIRST_END + 45 * M, 'noisy-user', true, 'pl-noisy-login'));
  out.push(
    ev(
      FIRST_END + 52 * M,
      { 'user.name': 'noisy-user', 'gatewatch.route': '/products', 'http.response.status_code': 200 },
      'pl-noisy-other',
    ),
  );
  return out;
}

/**
 * The bug a stateless series shows (account-takeover-failures-then-success: 10 failures then a
 * success within 15m, look-back 21m): f1 at t, 9 failures at t + 10m…, a success A at t + 14.9m
 * (a match, consuming them), one more failure and a success B at t + 15.5m. One pass: B has one
 * failure after A, no match. Without state, a run whose look-back begins after f1 no longer
 * finds A, so nothing tells it the 9 failures were consumed: B matches.
 */
function consumedCase(t: number): GatewatchEvent[] {
  const auth = (ts: number, ok: boolean, id: string) =>
    ev(
      ts,
      {
        'user.name': 'consumed-user',
        'source.ip': '203.0.113.77',
        'gatewatch.route': '/api/v1/login',
        'gatewatch.auth.attempt': true,
        'gatewatch.auth.outcome': ok ? 'success' : 'failure',
        'event.outcome': ok ? 'success' : 'failure',
        'http.request.method': 'POST',
        'http.response.status_code': ok ? 200 : 401,
      },
      id,
    );
  const out = [auth(t, false, 'cc-f1')];
  for (let i = 0; i < 9; i++) out.push(auth(t + 10 * M + i * 30_000, false, `cc-f${i + 2}`));
  out.push(auth(t + 14 * M + 54_000, true, 'cc-a'));
  out.push(auth(t + 15 * M + 10_000, false, 'cc-f11'));
  out.push(auth(t + 15 * M + 30_000, true, 'cc-b'));
  return out;
}

// The runs end at FIRST_END + 0, 5, 10, 17, 20…: A and B fall in the one ending at +10m (whose
// look-back holds f1), the one ending at +20m reads from −4m: B without f1.
const CONSUMED_AT = FIRST_END - 6 * M;
const events: GatewatchEvent[] = [...randomEvents(500, 5), ...placedEvents(), ...consumedCase(CONSUMED_AT)];

async function index(all: GatewatchEvent[]): Promise<void> {
  for (let i = 0; i < all.length; i += 5000) {
    const res = await bulkWrite(
      ctx.es,
      all.slice(i, i + 5000).map((doc) => ({
        op: 'create' as const,
        index: names.eventsIndexFor(doc['@timestamp']),
        id: String(doc.event?.id),
        doc,
      })),
    );
    expect(res.rejected + res.retryable).toBe(0);
  }
  await ctx.es.indices.refresh({ index: names.eventsPattern });
}

/** What a detection says, without the times of the run that opened it. */
function comparable(i: Incident) {
  return {
    id: i.id,
    title: i.title,
    summary: i.summary,
    group_key: i.group_key,
    window: i.window,
    first_seen: i.first_seen,
    last_seen: i.last_seen,
    event_count: i.event_count,
    metrics: i.metrics,
    evidence: i.evidence,
  };
}

/** One pass of the in-process evaluator over everything the series covers. */
function onePass(rule: SequenceRule): ReturnType<typeof comparable>[] {
  // the first run (no checkpoint) ends one catch-up step after target − look-back
  const L = rule.schedule.lookbackMs;
  const start = Math.min(FIRST_END, FIRST_END - L + MAX_CATCH_UP) - L;
  const result = evaluateRule(rule, events, { start, end: LAST_END });
  return result.detections
    .map((d) => comparable(toIncident(d, rule, 0)))
    .sort((a, b) => (a.id < b.id ? -1 : 1));
}

interface Series {
  detections: ReturnType<typeof comparable>[];
  records: RunRecord[];
  /** Incident ids per range run (`start-end`), sorted. */
  perRange: Map<string, string[]>;
}

describe('sequence state across scheduled runs (real Redis and Elasticsearch, controlled clock)', {
  timeout: 600_000,
}, () => {
  const redisPromise = connectRedis(ctx.redisUrl, 'producer');
  const schedulers: DetectionScheduler[] = [];
  let n = 0;
  const stateful = (cap = 8 * 1024 * 1024) =>
    elasticsearchExecutor(ctx.es, ctx.prefix, 100_000, () => undefined, {
      exactValues: 256,
      sequenceStateBytes: cap,
    });
  const stateless = () => elasticsearchExecutor(ctx.es, ctx.prefix, 100_000, () => undefined);

  async function scheduler(
    rule: SequenceRule,
    execute: RuleExecutor,
    found: Map<string, Incident>,
    perRange: Map<string, string[]>,
    clock: { now: number },
  ) {
    const s = new DetectionScheduler({
      es: ctx.es,
      redis: await redisPromise,
      redisUrl: ctx.redisUrl,
      prefix: ctx.prefix,
      queuePrefix: `${ctx.prefix}-q${n++}`,
      rules: [rule],
      execute: async (r, range, at, context) => {
        const result = await execute(r, range, at, context);
        for (const i of result.incidents) found.set(i.id, i);
        perRange.set(`${range.start}-${range.end}`, result.incidents.map((i) => i.id).sort());
        return result;
      },
      maxCatchUpMs: MAX_CATCH_UP,
      leaseMs: 60_000,
      clock: () => clock.now,
    });
    await s.init();
    schedulers.push(s);
    return s;
  }

  /**
   * Scheduled runs from FIRST_END to LAST_END; `between(step, s)` runs after each step's runs
   * (to delete a state, move a checkpoint…).
   */
  async function series(
    rule: SequenceRule,
    execute: RuleExecutor,
    between?: (step: number, s: DetectionScheduler, records: RunRecord[]) => Promise<void>,
  ): Promise<Series> {
    const found = new Map<string, Incident>();
    const perRange = new Map<string, string[]>();
    const clock = { now: FIRST_END + rule.schedule.latenessMs };
    const s = await scheduler(rule, execute, found, perRange, clock);
    const records: RunRecord[] = [];
    const last = LAST_END + rule.schedule.latenessMs;
    for (let step = 0; ; step++) {
      const ran = await s.runRule(rule.id);
      records.push(...ran);
      await between?.(step, s, ran);
      if (clock.now >= last) break;
      clock.now = Math.min(clock.now + STEPS[step % STEPS.length]! * M, last);
    }
    expect(records.every((r) => r.outcome === 'ok')).toBe(true);
    const detections = [...found.values()].map(comparable).sort((a, b) => (a.id < b.id ? -1 : 1));
    return { detections, records, perRange };
  }

  const readPerRun = (s: Series) => s.records.map((r) => r.events_read ?? 0);
  const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0);

  beforeAll(async () => {
    await installCoreTemplates(ctx.es, { prefix: ctx.prefix });
    await index(events);
  });
  afterAll(async () => {
    for (const s of schedulers) await s.close();
    (await redisPromise).disconnect();
    await ctx.cleanup();
  });

  it('the hand-placed cases are in the one-pass result (the series below cannot pass vacuously)', () => {
    const ato = onePass(builtIn.find((r) => r.id === 'account-takeover-failures-then-success')!);
    expect(ato.some((d) => d.group_key.includes('straddle') && d.metrics['failures.count'] === 12)).toBe(
      true,
    );
    expect(ato.filter((d) => d.group_key.includes('consumed-user'))).toHaveLength(1);
    const trailing = onePass(custom.find((r) => r.id === 's-trailing')!);
    expect(trailing.some((d) => d.group_key.includes('quiet-user'))).toBe(true);
    expect(trailing.some((d) => d.group_key.includes('noisy-user'))).toBe(false);
    for (const rule of rules) {
      const found = onePass(rule);
      console.log(`${rule.id}: ${found.length} detections in one pass`);
      expect(found.length, rule.id).toBeGreaterThan(0);
    }
  });

  /** The series with state of each rule, run at once (they wait mostly on refreshes). */
  const withState = new Map<string, Promise<Series>>();
  const seriesOf = (rule: SequenceRule) => {
    let p = withState.get(rule.id);
    if (!p) {
      p = series(as(rule, 'series'), stateful());
      withState.set(rule.id, p);
    }
    return p;
  };

  it('every rule: runs carrying their state open exactly the one-pass detections', async () => {
    const all = await Promise.all(rules.map(seriesOf));
    for (const [i, rule] of rules.entries()) {
      const r = as(rule, 'series');
      const done = all[i]!;
      expect(done.detections, rule.id).toEqual(onePass(r));
      // after the first run, every run read only its new events plus the state
      expect(done.records[0]!.note).toMatch(/no sequence state at the checkpoint \(first run/);
      for (const rec of done.records.slice(1))
        expect(rec.note).toMatch(/^sequence state at the checkpoint: read/);
      // Measured, not asserted: events read per run with the state, and by today's runs (no
      // state: the look-back, pruned by partition) over the same ranges.
      const today: number[] = [];
      for (const rec of done.records) {
        const range = { start: Date.parse(rec.range_start), end: Date.parse(rec.range_end) };
        today.push((await stateless()(r, range, 0)).eventsRead ?? 0);
      }
      console.log(
        `${rule.id}: ${done.records.length} runs, events read with state ${sum(readPerRun(done))} (per run ${readPerRun(done).join(' ')}), without ${sum(today)} (per run ${today.join(' ')})`,
      );
    }
  });

  it('today without state two runs open a match one pass does not; with state they do not', async () => {
    const base = builtIn.find((r) => r.id === 'account-takeover-failures-then-success')!;
    const mine = (s: Series) => s.detections.filter((d) => d.group_key.includes('consumed-user'));
    const expected = onePass(as(base, 'series')).filter((d) => d.group_key.includes('consumed-user'));
    expect(expected.map((d) => d.last_seen)).toEqual([new Date(CONSUMED_AT + 14 * M + 54_000).toISOString()]);
    const without = await series(as(base, 'bug-stateless'), stateless());
    // the success B re-uses the failures A consumed
    expect(mine(without).map((d) => d.last_seen)).toEqual([
      new Date(CONSUMED_AT + 14 * M + 54_000).toISOString(),
      new Date(CONSUMED_AT + 15 * M + 30_000).toISOString(),
    ]);
    expect(mine(await seriesOf(base))).toEqual(expected);
  });

  it('a crash between the state write and the checkpoint write: the rerun gives the same result', async () => {
    const crash = async (base: SequenceRule) => {
      const rule = as(base, 'crash');
      const reruns: RunRecord[][] = [];
      const result = await series(rule, stateful(), async (step, s, records) => {
        if (step !== 2 && step !== 5) return;
        // The step's last run kept its state, then its checkpoint write was lost: the queue's
        // retry runs the same range again from the old checkpoint.
        const last = records.at(-1)!;
        await s.setCheckpoint(rule.id, Date.parse(last.range_start) + rule.schedule.lookbackMs);
        const again = await s.runRule(rule.id);
        expect(again.map((r) => [r.range_start, r.range_end, r.detections])).toEqual([
          [last.range_start, last.range_end, last.detections],
        ]);
        expect(again[0]!.note).toMatch(/^sequence state at the checkpoint: read/);
        expect(await s.getCheckpoint(rule.id)).toBe(Date.parse(last.range_end));
        reruns.push(again);
      });
      expect(reruns).toHaveLength(2);
      expect(result.detections).toEqual(onePass(rule));
      // the series went on from the states the reruns rewrote
      expect(result.records.at(-1)!.note).toMatch(/^sequence state at the checkpoint: read/);
    };
    await Promise.all([
      crash(builtIn.find((r) => r.id === 'account-takeover-failures-then-success')!),
      crash(custom.find((r) => r.id === 's-trailing')!),
    ]);
  });

  it('state over its cap keeps only the ends of earlier matches, or nothing; said in the run record', async () => {
    const base = builtIn.find((r) => r.id === 'account-takeover-failures-then-success')!;
    // A few kB: the events do not fit, the partitions' consumed ends do. The runs read their
    // look-back raw but honour them: still exactly the one-pass detections.
    const rule = as(base, 'consumed-only');
    const capped1 = series(as(base, 'capped'), stateful(1));
    const lean = await series(rule, stateful(4000));
    expect(lean.detections).toEqual(onePass(rule));
    for (const r of lean.records)
      expect(r.note).toMatch(
        /sequence state kept without its events \(\d+ bytes > detections.partials.sequenceStateBytes 4000\)/,
      );
    for (const r of lean.records.slice(1))
      expect(r.note).toMatch(
        /^sequence state at the checkpoint kept no events \(over its size cap\): read the look-back raw/,
      );
    // 1 byte: nothing kept, every run reads its look-back raw as today and says why
    const capped = await capped1;
    for (const r of capped.records)
      expect(r.note).toMatch(
        /sequence state not kept \(\d+ bytes > detections.partials.sequenceStateBytes 1\)/,
      );
    for (const r of capped.records.slice(1))
      expect(r.note).toMatch(/^no sequence state at the checkpoint \(none kept for this rule version\)/);
  });

  it('state missing or at the wrong watermark: the look-back read raw as today, said in the run record', async () => {
    const base = builtIn.find((r) => r.id === 'account-takeover-failures-then-success')!;
    const cases = [
      // the states deleted after the fourth step's runs
      [
        'missing',
        async (rule: SequenceRule) => {
          await ctx.es.indices.refresh({ index: names.partials });
          const r = await ctx.es.search({
            index: names.partials,
            size: 100,
            _source: false,
            query: {
              bool: {
                filter: [{ term: { level: 'sequence' } }, { term: { rule: `${rule.id}@${rule.version}` } }],
              },
            },
          });
          expect(r.hits.hits.length).toBeGreaterThan(0);
          await ctx.es.bulk({
            refresh: true,
            operations: r.hits.hits.map((h) => ({ delete: { _index: names.partials, _id: h._id! } })),
          });
        },
      ],
      // the checkpoint moved on by hand by 2 minutes (a range skipped)
      [
        'moved',
        async (rule: SequenceRule, s: DetectionScheduler) => {
          await ctx.es.indices.refresh({ index: names.partials });
          await s.setCheckpoint(rule.id, (await s.getCheckpoint(rule.id))! + 2 * M);
        },
      ],
    ] as const;
    const check = async ([tag, lose]: (typeof cases)[number]) => {
      const rule = as(base, tag);
      const found = await series(rule, stateful(), async (step, s) => {
        if (step === 3) await lose(rule, s);
      });
      const fallback = found.records.filter((r) => r.note?.startsWith('no sequence state'));
      expect(fallback).toHaveLength(2); // the first run and the one after the loss
      expect(fallback[1]!.note).toMatch(
        tag === 'missing'
          ? /\(none kept for this rule version\): read the look-back raw$/
          : /\(the newest kept is at .+, not at .+\): read the look-back raw$/,
      );
      // that run is today's: the detections of a run without state over the same range
      const range = { start: Date.parse(fallback[1]!.range_start), end: Date.parse(fallback[1]!.range_end) };
      const today = await stateless()(rule, range, 0, {});
      expect(found.perRange.get(`${range.start}-${range.end}`)).toEqual(
        today.incidents.map((i) => i.id).sort(),
      );
      // and the state is kept again from there on
      const after = found.records.slice(found.records.indexOf(fallback[1]!) + 1);
      expect(after.length).toBeGreaterThan(0);
      for (const r of after) expect(r.note).toMatch(/^sequence state at the checkpoint: read/);
    };
    await Promise.all(cases.map(check));
  });
});
