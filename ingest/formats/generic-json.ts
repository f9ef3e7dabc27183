/**
 * Any JSON source, described by a declarative field map in the source configuration
 * (`fieldMap`, see FieldMapTarget for the special targets) and optional observer fields.
 * Only used for auto-detection when the source has a field map, and then as a last resort.
 */
import { applyFieldMap, compileFieldMap } from './fieldmap.ts';
import type { EventDraft, Format, ParseContext, ParseResult, RawRequest } from './types.ts';
import { isObj, jsonObject, outcomeOf, timestampOr } from './util.ts';

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
    observer: {
      vendor: obs?.vendor,
      product: obs?.product,
      type: obs?.type ?? 'api-gateway',
      name: obs?.name,
    },
  };
  const { ms } = applyFieldMap(o, map, ev, raw);
  if (ev.source?.ip !== undefined) ev.source.address ??= ev.source.ip;
  ev.event!.outcome ??= outcomeOf(ev.http?.response?.status_code);
  timestampOr(ev, ms, ctx.receivedAt);
  return { ok: true, event: ev, raw };
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
