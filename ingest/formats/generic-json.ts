/**
 * Any JSON source, described by a declarative field map in the source configuration
 * (`fieldMap`, see FieldMapTarget for the special targets) and optional observer fields.
 * Only used for auto-detection when the source has a field map, and then as a last resort.
 */
import { applyFieldMap, compileFieldMap } from './fieldmap.ts';
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import { hasKeys, isObj, jsonObject, outcomeOf, timestampOr } from './util.ts';

function parse(line: string, ctx: ParseContext): ParseResult {
  const o = jsonObject(line, ctx.json);
  if (typeof o === 'string') return { ok: false, reason: o };
  const fieldMap = ctx.source.fieldMap;
  if (fieldMap === undefined) return { ok: false, reason: 'generic.json: the source has no fieldMap' };
  const map = compileFieldMap(fieldMap, ctx.source.keepUnmapped ?? true);
  const raw: RawRequest = {};
  const obs = ctx.source.observer;
  const ev: EventDraft = {
    event: { kind: 'event', category: ['web'], type: ['access'], action: 'request', module: 'generic' },
  };
  const observer = observerOf(obs);
  if (observer !== undefined) ev.observer = observer;
  const { ms } = applyFieldMap(o, map, ev, raw);
  if (ev.source?.ip !== undefined) ev.source.address ??= ev.source.ip;
  ev.event!.outcome ??= outcomeOf(ev.http?.response?.status_code);
  timestampOr(ev, ms, ctx.receivedAt);
  return { ok: true, event: ev, raw };
}

type Observer = NonNullable<EventDraft['observer']>;

/** The configured observer fields without empty values, built once per configuration. */
const OBSERVERS = new WeakMap<object, Observer>();
const DEFAULT_OBSERVER: Observer = { type: 'api-gateway' };

function observerOf(obs: ParseContext['source']['observer']): Observer | undefined {
  if (obs === undefined) return { ...DEFAULT_OBSERVER };
  let o = OBSERVERS.get(obs);
  if (o === undefined) {
    o = {};
    if (obs.vendor !== undefined && obs.vendor !== '') o.vendor = obs.vendor;
    if (obs.product !== undefined && obs.product !== '') o.product = obs.product;
    const type = obs.type ?? 'api-gateway';
    if (type !== '') o.type = type;
    if (obs.name !== undefined && obs.name !== '') o.name = obs.name;
    OBSERVERS.set(obs, o);
  }
  return hasKeys(o) ? { ...o } : undefined;
}

export const genericJson: Format = {
  id: 'generic.json',
  description: 'Any JSON log described by a declarative field map in the source configuration',
  kind: 'json',
  detect(_line, json) {
    return isObj(json) ? 0.05 : 0;
  },
  parse,
};
