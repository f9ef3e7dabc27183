/**
 * Sequence state kept across scheduled runs (docs/partials.md, "Sequences across runs"): per rule
 * version and watermark, one document of level `sequence` in `<prefix>-partials` holding, per
 * partition, the candidate events a later match can still read, the end of its last emitted
 * match and a pending trailing-absence end (../engine/kinds/sequence.ts, SequenceCarry).
 *
 * The id derives from (rule id@version, watermark): a run whose checkpoint is C reads the state
 * at C and writes the state at its range end E; the one at C stays until a run reads past it.
 * A run that dies after writing E but before its checkpoint moves is run again from C, finds
 * the same state at C and writes the same E (idempotent), so no match is lost or doubled.
 */
import { createHash } from 'node:crypto';
import type { Client } from '@elastic/elasticsearch';
import { indexNames, isIndexNotFound } from '../../core/store/elasticsearch.ts';
import type { SequenceRule } from '../../parser/ir.ts';
import type { PartitionCarry, SequenceCarry, SequenceRunInput } from '../engine/kinds/sequence.ts';
import type { EventPos, SeqEvent } from '../engine/sequence.ts';
import { groupKeyOf } from '../engine/values.ts';
import { ensurePartialsIndex, partialsMappings } from './store.ts';

type Pos = [number, string];
/** Encoded state: events once (an event of several partitions is shared), partitions by index. */
interface Body {
  kept: boolean;
  events: [number, string, unknown][];
  /** values, event indexes, consumed, pending */
  partitions: [(string | number | boolean)[], number[], Pos | null, Pos | null][];
}

interface StateDoc {
  level: 'sequence';
  rule: string;
  chunk: number;
  watermark: number;
  events: number;
  bytes: number;
  written_at: string;
  body: Body;
}

export const ruleKey = (rule: SequenceRule) => `${rule.id}@${rule.version}`;

export function sequenceStateId(rule: SequenceRule, watermark: number): string {
  return createHash('sha256')
    .update(`sequence\u0000${ruleKey(rule)}\u0000${watermark}`)
    .digest('hex')
    .slice(0, 32);
}

const DAY = 86_400_000;
const pos = (p: EventPos | undefined): Pos | null => (p ? [p.ts, p.id] : null);
const unpos = (p: Pos | null): EventPos | undefined => (p ? { ts: p[0], id: p[1] } : undefined);

export function encodeState(state: SequenceCarry, keepEvents: boolean): Body {
  const index = new Map<string, number>();
  const events: Body['events'] = [];
  const partitions: Body['partitions'] = [];
  for (const p of state.partitions.values()) {
    const idx: number[] = [];
    if (keepEvents)
      for (const e of p.events) {
        let i = index.get(e.id);
        if (i === undefined) {
          i = events.length;
          index.set(e.id, i);
          events.push([e.ts, e.id, e.event]);
        }
        idx.push(i);
      }
    // without events only the partitions whose consumed or pending matter are kept
    if (!keepEvents && !p.consumed && !p.pending) continue;
    partitions.push([p.values, idx, pos(p.consumed), pos(p.pending)]);
  }
  return { kept: keepEvents, events, partitions };
}

export function decodeState(body: Body, watermark: number): SequenceCarry {
  const events: SeqEvent[] = body.events.map(([ts, id, event]) => ({ ts, id, event }));
  const partitions = new Map<string, PartitionCarry>();
  for (const [values, idx, consumed, pending] of body.partitions) {
    const c = unpos(consumed);
    const p = unpos(pending);
    partitions.set(groupKeyOf(values), {
      values,
      events: idx.map((i) => events[i]!),
      ...(c ? { consumed: c } : {}),
      ...(p ? { pending: p } : {}),
    });
  }
  return { watermark, eventsKept: body.kept, partitions };
}

const mapped = new WeakMap<Client, Set<string>>();

/** The partials index with the `watermark` field (an index made before it lacks it: strict mapping). */
async function ensureStateMapping(es: Client, prefix: string): Promise<string> {
  const index = await ensurePartialsIndex(es, prefix);
  let seen = mapped.get(es);
  if (!seen) {
    seen = new Set();
    mapped.set(es, seen);
  }
  if (!seen.has(index)) {
    await es.indices.putMapping({ index, properties: { watermark: partialsMappings.properties.watermark } });
    seen.add(index);
  }
  return index;
}

/**
 * The state a scheduled run starts from: the one kept at its checkpoint, or why there is none
 * (no checkpoint yet, none kept, only older ones — the rule version changed, a run could not
 * keep it, the checkpoint was moved).
 */
export async function readSequenceState(
  es: Client,
  prefix: string,
  rule: SequenceRule,
  checkpoint: number | undefined,
): Promise<SequenceRunInput> {
  if (checkpoint === undefined) return { missing: 'first run of the rule' };
  const index = indexNames(prefix).partials;
  let found: StateDoc | undefined;
  try {
    const r = await es.get<StateDoc>({ index, id: sequenceStateId(rule, checkpoint) }, { ignore: [404] });
    found = r.found ? r._source : undefined;
  } catch (err) {
    if (!isIndexNotFound(err)) throw err;
    return { missing: 'none kept yet' };
  }
  if (found && found.rule === ruleKey(rule) && found.watermark === checkpoint)
    return { prior: decodeState(found.body, checkpoint) };
  // Only to say why: the newest state of this rule version, if any.
  const latest = await es
    .search<{ watermark: number }>({
      index,
      size: 1,
      _source: ['watermark'],
      query: { bool: { filter: [{ term: { level: 'sequence' } }, { term: { rule: ruleKey(rule) } }] } },
      sort: [{ watermark: 'desc' }],
    })
    .catch(() => undefined);
  const w = latest?.hits.hits[0]?._source?.watermark;
  return {
    missing:
      w === undefined
        ? 'none kept for this rule version'
        : `the newest kept is at ${new Date(w).toISOString()}, not at ${new Date(checkpoint).toISOString()}`,
  };
}

/**
 * Keep `state` (at its watermark) after the run's incidents are written and before its
 * checkpoint moves; then delete this rule's states older than `checkpoint` (and other versions').
 * Over `capBytes` only `consumed`/`pending` are kept; over it again, nothing. Returns what the
 * run record should say when the state was not kept whole.
 */
export async function writeSequenceState(
  es: Client,
  prefix: string,
  rule: SequenceRule,
  checkpoint: number | undefined,
  state: SequenceCarry,
  capBytes: number,
): Promise<string | undefined> {
  const index = await ensureStateMapping(es, prefix);
  let body = encodeState(state, true);
  let bytes = Buffer.byteLength(JSON.stringify(body));
  let note: string | undefined;
  if (bytes > capBytes) {
    const full = bytes;
    body = encodeState(state, false);
    bytes = Buffer.byteLength(JSON.stringify(body));
    note =
      bytes > capBytes
        ? `sequence state not kept (${full} bytes > detections.partials.sequenceStateBytes ${capBytes}): the next run reads its look-back raw`
        : `sequence state kept without its events (${full} bytes > detections.partials.sequenceStateBytes ${capBytes}): the next run reads its look-back raw`;
  }
  if (bytes <= capBytes) {
    const doc: StateDoc = {
      level: 'sequence',
      rule: ruleKey(rule),
      chunk: Math.floor(state.watermark / DAY) * DAY,
      watermark: state.watermark,
      events: body.events.length,
      bytes,
      written_at: new Date().toISOString(),
      body,
    };
    await es.index({ index, id: sequenceStateId(rule, state.watermark), document: doc });
  }
  // The state at the checkpoint stays (a rerun of this range after a crash reads it); older
  // ones and other versions' go. A handful of documents: found by a search, deleted by id.
  const old = await es.search({
    index,
    size: 1000,
    _source: false,
    query: {
      bool: {
        filter: [{ term: { level: 'sequence' } }, { prefix: { rule: `${rule.id}@` } }],
        should: [
          { bool: { must_not: { term: { rule: ruleKey(rule) } } } },
          ...(checkpoint !== undefined ? [{ range: { watermark: { lt: checkpoint } } }] : []),
        ],
        minimum_should_match: 1,
      },
    },
  });
  if (old.hits.hits.length > 0)
    await es.bulk({ operations: old.hits.hits.map((h) => ({ delete: { _index: index, _id: h._id! } })) });
  return note;
}
