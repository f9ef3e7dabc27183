/**
 * S3 bucket listing (no SQS): the bucket's prefix is listed every `pollInterval` and new,
 * changed or unfinished objects are read, with per-object checkpoints in Redis (../listing.ts).
 * Any S3-compatible store (Cloudflare R2, MinIO) works with `endpoint` and `forcePathStyle`.
 */
import type { S3Client } from '@aws-sdk/client-s3';
import type { S3SourceConfig } from '../../../core/config/schema.ts';
import { type ListingLocation, type ListingSettings, ListingSource } from '../listing.ts';
import type { PullSourceOptions } from '../pull-source.ts';
import { s3Client, s3Lister, s3Object } from './clients.ts';

export class S3ListSource extends ListingSource {
  private readonly s3: S3Client;
  private readonly settings: S3SourceConfig;

  constructor(options: PullSourceOptions) {
    super(options);
    this.settings = options.source.s3!;
    this.s3 = s3Client(this.settings);
  }

  protected listing(): ListingSettings {
    return this.settings;
  }

  protected async locations(): Promise<ListingLocation[]> {
    const bucket = this.settings.bucket!;
    return [
      {
        lister: s3Lister(this.s3, bucket),
        prefix: this.settings.prefix,
        object: (entry) => s3Object(this.s3, bucket, entry.key, entry),
      },
    ];
  }
}
