/**
 * What every pulling or listening source looks like to the ingest process. HTTP push
 * endpoints share one server (./http/server.ts) instead.
 *
 * Pull sources (./pull.ts builds them): S3 and CloudWatch Logs (./aws/), Kafka (./kafka.ts),
 * Azure Blob Storage (./azure-blob.ts). Objects are read by ./objects.ts with per-object
 * positions in Redis, listed by ./listing.ts, and report their backlog through ./progress.ts.
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
