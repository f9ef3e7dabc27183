/**
 * AWS SDK clients for the pull sources, configured the usual way: credentials from the SDK's
 * default chain (environment, shared config and credential files with `profile`, SSO, web
 * identity, container and instance roles), the region from the source, AWS_REGION or the
 * profile, and an endpoint override for S3-compatible stores and emulators. Nothing here
 * logs or stores a credential.
 */
import type { Readable } from 'node:stream';
import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import type { Lister, ListPage } from '../layouts.ts';
import type { StoredObject } from '../objects.ts';

export interface AwsSettings {
  region?: string | undefined;
  endpoint?: string | undefined;
  profile?: string | undefined;
  forcePathStyle?: boolean | undefined;
}

/** The region of an SQS queue URL (https://sqs.<region>.amazonaws.com/<acct>/<name>). */
export function regionOfQueueUrl(url: string): string | undefined {
  return /^https:\/\/sqs\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\//.exec(url)?.[1];
}

/** Client options shared by S3, SQS and CloudWatch Logs clients. */
export function awsClientOptions(settings: AwsSettings, regionHint?: string) {
  const region = settings.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? regionHint;
  return {
    ...(region ? { region } : {}),
    ...(settings.endpoint ? { endpoint: settings.endpoint } : {}),
    ...(settings.profile ? { profile: settings.profile } : {}),
    // The SDK retries throttling and 5xx itself; sources retry beyond that on their own schedule.
    maxAttempts: 4,
  };
}

export function s3Client(settings: AwsSettings): S3Client {
  return new S3Client({
    ...awsClientOptions(settings),
    forcePathStyle: settings.forcePathStyle ?? false,
    // A bucket in another region than the client's is followed, not an error.
    followRegionRedirects: true,
  });
}

/** S3 key as it arrives in event notifications: URL-encoded, spaces as '+'. */
export function decodeEventKey(key: string): string {
  return decodeURIComponent(key.replace(/\+/g, ' '));
}

export function s3Url(bucket: string, key: string): string {
  return `s3://${bucket}/${key}`;
}

/** An S3 object as the shared object reader sees it (ranged GETs for resumes). */
export function s3Object(
  s3: S3Client,
  bucket: string,
  key: string,
  meta: { etag: string; size?: number | undefined; modified?: number | undefined },
): StoredObject {
  return {
    url: s3Url(bucket, key),
    version: meta.etag.replace(/"/g, ''),
    ...(meta.size !== undefined ? { size: meta.size } : {}),
    ...(meta.modified !== undefined ? { modified: meta.modified } : {}),
    async open(start, signal) {
      const response = await s3.send(
        new GetObjectCommand({
          Bucket: bucket,
          Key: key,
          ...(start > 0 ? { Range: `bytes=${start}-` } : {}),
        }),
        { abortSignal: signal },
      );
      return response.Body as Readable;
    },
  };
}

/** ListObjectsV2, one level ("/") or flat, page by page. */
export function s3Lister(s3: S3Client, bucket: string): Lister {
  return {
    async *list(prefix, delimited): AsyncIterable<ListPage> {
      let token: string | undefined;
      do {
        const page = await s3.send(
          new ListObjectsV2Command({
            Bucket: bucket,
            Prefix: prefix,
            ...(delimited ? { Delimiter: '/' } : {}),
            ...(token ? { ContinuationToken: token } : {}),
          }),
        );
        yield {
          prefixes: (page.CommonPrefixes ?? []).map((p) => p.Prefix!).filter(Boolean),
          objects: (page.Contents ?? [])
            .filter((o) => o.Key !== undefined && !o.Key.endsWith('/'))
            .map((o) => ({
              key: o.Key!,
              etag: (o.ETag ?? '').replace(/"/g, ''),
              size: o.Size ?? 0,
              modified: o.LastModified?.getTime() ?? 0,
            })),
        };
        token = page.IsTruncated ? page.NextContinuationToken : undefined;
      } while (token);
    },
  };
}
