/**
 * Builds the record → events function ingest workers (and the embedded replay) use, from the
 * Gatewatch configuration: one parsing/enrichment context per source, shared caches (user
 * agents, GeoIP readers) across sources.
 */
import type { GatewatchConfig } from '../../core/config/schema.ts';
import { createSharedEnrichment } from '../transforms/enrich.ts';
import {
  createNormalizeContext,
  type NormalizeContext,
  type NormalizeResult,
  normalizeLine,
  normalizeLines,
} from '../transforms/normalize.ts';
import type { RawBatch } from './batch.ts';

export type { NormalizeResult };

export interface Normalizer {
  (record: string, batch: RawBatch): NormalizeResult;
  /** Every record of a batch, results in record order (parsed grouped by format, see normalizeLines). */
  many(records: readonly string[], batch: RawBatch): NormalizeResult[];
  /** A record as the normaliser reads it: secrets scrubbed (what a dead letter may keep). */
  scrub(record: string, batch: RawBatch): string;
}

/**
 * What enrichment cannot do with this configuration, for start-up messages: without a GeoIP or
 * ASN database, rules about countries and networks fall back or fall silent (`rules coverage`).
 */
export function enrichmentWarnings(config: GatewatchConfig): string[] {
  const out: string[] = [];
  if (config.ingest.asnDatabase === undefined)
    out.push(
      'no ASN database configured (ingest.asnDatabase): client networks are /24 and /48 address blocks, and source.as.* stays empty',
    );
  if (config.ingest.geoipDatabase === undefined)
    out.push(
      'no GeoIP database configured (ingest.geoipDatabase): countries come only from logs that carry them (AWS WAF, Cloudflare); country rules cannot fire on the others',
    );
  return out;
}

/**
 * `config.ingest.fingerprintSecret` must be resolved (ingest/fingerprint-secret.ts): the secret
 * keys fingerprints, scrubbed secrets and event ids, so running without one is never silent.
 */
export function createNormalizer(config: GatewatchConfig): Normalizer {
  const fingerprintSecret = config.ingest.fingerprintSecret;
  if (fingerprintSecret === undefined)
    throw new Error(
      'ingest.fingerprintSecret is not resolved: use deploymentFingerprintSecret or embeddedFingerprintSecret (ingest/fingerprint-secret.ts) first',
    );
  const shared = createSharedEnrichment({
    geo: {
      ...(config.ingest.geoipDatabase ? { cityDatabase: config.ingest.geoipDatabase } : {}),
      ...(config.ingest.asnDatabase ? { asnDatabase: config.ingest.asnDatabase } : {}),
    },
  });
  const contexts = new Map<string, NormalizeContext>();
  const contextFor = (batch: RawBatch): NormalizeContext => {
    const key = `${batch.source}\0${batch.format ?? ''}`;
    let ctx = contexts.get(key);
    if (!ctx) {
      const source = config.ingest.sources.find((s) => s.name === batch.source);
      ctx = createNormalizeContext({
        name: batch.source,
        ...(batch.format ? { format: batch.format } : source?.format ? { format: source.format } : {}),
        ...(source?.fieldMap ? { fieldMap: source.fieldMap } : {}),
        keepOriginal: config.ingest.keepOriginal,
        clientIp: { trustedProxies: source?.trustedProxies ?? config.ingest.trustedProxies },
        identity: { fingerprintSecret },
        ...(source?.auth ? { auth: source.auth } : {}),
        shared,
      });
      contexts.set(key, ctx);
    }
    return ctx;
  };
  const contextOf = (batch: RawBatch): NormalizeContext => {
    const ctx = contextFor(batch);
    // Records without a timestamp of their own take the time the source received them.
    ctx.now = () => batch.receivedAt;
    return ctx;
  };
  // Batches a receiver queued hold scrubbed records already (batch.scrubbed).
  const one = (record: string, batch: RawBatch) =>
    normalizeLine(record, contextOf(batch), { scrubbed: batch.scrubbed === true });
  return Object.assign(one, {
    many: (records: readonly string[], batch: RawBatch) =>
      normalizeLines(records, contextOf(batch), { scrubbed: batch.scrubbed === true }),
    scrub: (record: string, batch: RawBatch) =>
      batch.scrubbed === true ? record : contextFor(batch).scrub(record),
  });
}
