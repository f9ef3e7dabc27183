/**
 * What travels through the ingest queue: bounded batches of raw records, never one event per
 * job. Sources produce them; ingest workers normalise, enrich and index them.
 */
import { createHash } from 'node:crypto';

export const RAW_QUEUE = 'ingest-raw';

export interface RawBatch {
  /** Configured source name: selects parsing options and trusted proxies. */
  source: string;
  /** Fixed format id, or absent for per-record auto-detection. */
  format?: string;
  /** Socket peer of the sender when the source is a network listener. */
  peerIp?: string;
  /** When the source received the data (ms since epoch): fallback event time. */
  receivedAt: number;
  /** Raw records: text lines, or JSON objects serialised as one line each. */
  records: string[];
  /** UTF-8 bytes of the records, counted in the queue's byte total until the batch is done. */
  bytes?: number;
  /**
   * The records were scrubbed of secrets before they were queued (ingest/transforms/scrub.ts,
   * with the deployment's fingerprint secret): workers do not scrub them again.
   */
  scrubbed?: boolean;
  /**
   * Set when a pull source could not read an input at all (bad gzip, binary object, a record
   * that is not text): the records then name what was unreadable, and workers store them as
   * dead letters with this reason instead of parsing them.
   */
  unreadable?: string;
}

/**
 * What a source says about a batch besides its records: the source, its fixed format if any,
 * the sender's socket peer (network listeners) and the time of receipt.
 */
export function batchHeader(
  source: { name: string; format?: string | undefined },
  peerIp?: string,
): Omit<RawBatch, 'records'> {
  return {
    source: source.name,
    ...(source.format ? { format: source.format } : {}),
    ...(peerIp !== undefined ? { peerIp } : {}),
    receivedAt: Date.now(),
  };
}

/** Redis key of the bytes of records queued and not yet stored (see IngestProducer). */
export function queuedBytesKey(queuePrefix: string): string {
  return `${queuePrefix}:${RAW_QUEUE}:queued-bytes`;
}

/** Largest number of records per job (sources split bigger inputs). */
export const MAX_BATCH_RECORDS = 10_000;

/**
 * A deterministic BullMQ job id for a batch. Re-sending the same input while its job is still
 * queued is then a no-op; after that, deterministic event ids make the re-index a no-op too.
 */
export function batchJobId(source: string, discriminator: string): string {
  // BullMQ job ids must not contain ':'.
  return `${source.replaceAll(':', '_')}-${createHash('sha256').update(discriminator).digest('base64url').slice(0, 32)}`;
}

/** Split records into batches of at most `size`. */
export function* chunk<T>(items: T[], size: number): Generator<T[]> {
  for (let i = 0; i < items.length; i += size) yield items.slice(i, i + size);
}
