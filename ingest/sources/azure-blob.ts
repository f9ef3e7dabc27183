/**
 * Azure Blob Storage: lists containers (named, or every `insights-logs-…` container Azure
 * Monitor diagnostic settings write to) and reads new blobs, with per-blob checkpoints in
 * Redis (./listing.ts). Azure Monitor writes one append blob per resource and hour
 * (`…/y=YYYY/m=MM/d=DD/h=HH/m=00/PT1H.json`, one JSON record per line) and appends to it for
 * the whole hour: append blobs are read from the byte after the last complete line queued,
 * never again from the start, and a last line still without its newline waits for the next
 * poll. Block blobs (gzip or plain) are read whole, and again from the start if replaced.
 *
 * Credentials the usual Azure way: a connection string (`connectionString` or
 * AZURE_STORAGE_CONNECTION_STRING), a SAS token in `accountUrl`, an account key in
 * AZURE_STORAGE_KEY, or else DefaultAzureCredential (environment service principal, workload
 * or managed identity, Azure CLI login). Blob URLs in errors lose their query (SAS) strings.
 */
import type { Readable } from 'node:stream';
import { BlobServiceClient, type ContainerClient, StorageSharedKeyCredential } from '@azure/storage-blob';
import type { AzureBlobSourceConfig } from '../../core/config/schema.ts';
import type { ListedObject, Lister, ListPage } from './layouts.ts';
import { type ListingLocation, type ListingSettings, ListingSource } from './listing.ts';
import type { ObjectPosition, StoredObject } from './objects.ts';
import type { PullSourceOptions } from './pull-source.ts';

/** A blob service client from the settings, the usual Azure way (see above). */
export async function blobServiceClient(settings: {
  accountUrl?: string | undefined;
  connectionString?: string | undefined;
}): Promise<BlobServiceClient> {
  const connection = settings.connectionString ?? process.env.AZURE_STORAGE_CONNECTION_STRING;
  if (connection) return BlobServiceClient.fromConnectionString(connection);
  if (!settings.accountUrl)
    throw new Error(
      'azure-blob: give azureBlob.accountUrl or azureBlob.connectionString (or AZURE_STORAGE_CONNECTION_STRING)',
    );
  const url = new URL(settings.accountUrl);
  if (url.search) return new BlobServiceClient(settings.accountUrl); // SAS token
  const key = process.env.AZURE_STORAGE_KEY;
  if (key) {
    const account = process.env.AZURE_STORAGE_ACCOUNT ?? url.hostname.split('.')[0]!;
    return new BlobServiceClient(settings.accountUrl, new StorageSharedKeyCredential(account, key));
  }
  const { DefaultAzureCredential } = await import('@azure/identity');
  return new BlobServiceClient(settings.accountUrl, new DefaultAzureCredential());
}

/** Blobs of a container, one level ("/") or flat. */
export function blobLister(container: ContainerClient): Lister {
  const entry = (b: {
    name: string;
    properties: { etag?: string; contentLength?: number; lastModified?: Date; blobType?: string };
  }): ListedObject => ({
    key: b.name,
    etag: (b.properties.etag ?? '').replace(/"/g, ''),
    size: b.properties.contentLength ?? 0,
    modified: b.properties.lastModified?.getTime() ?? 0,
    ...(b.properties.blobType ? { kind: b.properties.blobType } : {}),
  });
  return {
    async *list(prefix, delimited): AsyncIterable<ListPage> {
      if (delimited) {
        for await (const page of container
          .listBlobsByHierarchy('/', { prefix })
          .byPage({ maxPageSize: 5000 })) {
          yield {
            prefixes: (page.segment.blobPrefixes ?? []).map((p) => p.name),
            objects: page.segment.blobItems.map(entry),
          };
        }
      } else {
        for await (const page of container.listBlobsFlat({ prefix }).byPage({ maxPageSize: 5000 })) {
          yield { prefixes: [], objects: page.segment.blobItems.map(entry) };
        }
      }
    },
  };
}

export function blobObject(container: ContainerClient, entry: ListedObject): StoredObject {
  const blob = container.getBlobClient(entry.key);
  return {
    url: `azure://${container.accountName}/${container.containerName}/${entry.key}`,
    version: entry.etag,
    size: entry.size,
    modified: entry.modified,
    async open(start, signal) {
      const response = await blob.download(start, undefined, { abortSignal: signal });
      return response.readableStreamBody as Readable;
    },
  };
}

export class AzureBlobSource extends ListingSource {
  private readonly settings: AzureBlobSourceConfig;
  private service: BlobServiceClient | undefined;

  constructor(options: PullSourceOptions) {
    super(options);
    this.settings = options.source.azureBlob!;
  }

  protected listing(): ListingSettings {
    return this.settings;
  }

  protected override readOptions(listed: ListedObject) {
    return listed.kind === 'AppendBlob' ? { completeLinesOnly: true, appendOnly: true } : {};
  }

  protected override needsRead(listed: ListedObject, prior: ObjectPosition | undefined): boolean {
    if (listed.kind !== 'AppendBlob') return super.needsRead(listed, prior);
    // An append blob has news when it holds bytes past what was read of it: past the last line
    // queued and the unfinished line after it (same version), or past the last line (it grew).
    if (!prior) return true;
    if (prior.version === listed.etag) return prior.bytes + (prior.tail ?? 0) < listed.size;
    return prior.bytes < listed.size;
  }

  protected async locations(): Promise<ListingLocation[]> {
    this.service ??= await blobServiceClient(this.settings);
    const service = this.service;
    const names = [...this.settings.containers];
    if (names.length === 0) {
      for await (const c of service.listContainers({ prefix: this.settings.containerPrefix }))
        names.push(c.name);
    }
    return names.sort().map((name) => {
      const container = service.getContainerClient(name);
      return {
        lister: blobLister(container),
        prefix: this.settings.prefix,
        object: (entry: ListedObject) => blobObject(container, entry),
      };
    });
  }
}
