/**
 * Where `gatewatch replay` reads from besides local files: the pull sources' stores named by
 * URL. This module only recognises and parses them (no client library is loaded here); the
 * reading is in ./remote.ts.
 *
 *   s3://bucket/prefix[?region=…&endpoint=http://…&pathStyle=1&profile=…]
 *   cloudwatch://<log group>[?…]            cloudwatch://<log group prefix>*   (same options)
 *   kafka://host:port[,host:port]/topic[?tls=1&ca=<pem file>&sasl=plain|scram-sha-256|scram-sha-512&username=…]
 *       (SASL password from KAFKA_SASL_PASSWORD)
 *   azblob://container/prefix[?accountUrl=https://…]   (credentials as for the azure-blob source)
 *   https://<account>.blob.core.windows.net/container/prefix[?<SAS token>]
 */

export const REMOTE_INPUT = /^(s3|cloudwatch|kafka|azblob):\/\/|^https:\/\/[^/]+\.blob\.core\.windows\.net\//;

export function isRemoteInput(input: string): boolean {
  return REMOTE_INPUT.test(input);
}

export interface RemoteInput {
  scheme: 's3' | 'cloudwatch' | 'kafka' | 'azblob';
  /** Bucket, log group, broker list, or container. */
  target: string;
  /** Key or blob prefix, or Kafka topic. */
  path: string;
  options: Record<string, string>;
}

/** Split a remote input URL (never throws for what isRemoteInput accepted; bad values say so later). */
export function parseRemoteInput(input: string): RemoteInput {
  const q = input.indexOf('?');
  const base = q < 0 ? input : input.slice(0, q);
  const options = Object.fromEntries(new URLSearchParams(q < 0 ? '' : input.slice(q + 1)));
  const azure = /^https:\/\/([^/.]+)\.blob\.core\.windows\.net\/([^/]+)\/?(.*)$/.exec(base);
  if (azure) {
    const sas = q < 0 ? '' : input.slice(q);
    return {
      scheme: 'azblob',
      target: azure[2]!,
      path: decodeURIComponent(azure[3] ?? ''),
      options: { accountUrl: `https://${azure[1]}.blob.core.windows.net/${sas}` },
    };
  }
  const m = /^(s3|cloudwatch|kafka|azblob):\/\/(.*)$/.exec(base)!;
  const scheme = m[1] as RemoteInput['scheme'];
  const rest = m[2]!;
  if (scheme === 'cloudwatch') return { scheme, target: decodeURIComponent(rest), path: '', options };
  const slash = rest.indexOf('/');
  return {
    scheme,
    target: slash < 0 ? rest : rest.slice(0, slash),
    path: slash < 0 ? '' : decodeURIComponent(rest.slice(slash + 1)),
    options,
  };
}

/** A remote input URL from its parts (the inputs a listing expands into). */
export function remoteInputUrl(input: RemoteInput, path: string): string {
  const query = new URLSearchParams(input.options).toString();
  return `${input.scheme}://${input.target}/${encodeURIComponent(path).replaceAll('%2F', '/')}${query ? `?${query}` : ''}`;
}
