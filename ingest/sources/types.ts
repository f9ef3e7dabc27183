/**
 * What every pulling or listening source looks like to the ingest process. HTTP push
 * endpoints share one server (./http/server.ts) instead.
 *
 * The shape is meant for S3-compatible bucket polling too: such a source would list objects
 * under a prefix, keep "object key + ETag → offset" in the same Redis offsets hash the file
 * source uses, read objects (gzip or plain) as line streams, and enqueue batches through the
 * IngestProducer with `object key + offset` as the batch discriminator — the file source's
 * readGzip path is that algorithm with a local file in place of an object.
 */
export interface SourceStatusSnapshot {
  name: string;
  /** Records handed to the queue since start. */
  records: number;
  /** Records dropped because the source cannot push back (UDP syslog only). */
  dropped: number;
}

export interface Source {
  readonly name: string;
  start(): Promise<void> | void;
  stop(): Promise<void>;
  status(): SourceStatusSnapshot;
}
