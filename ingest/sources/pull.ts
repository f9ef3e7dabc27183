/**
 * The pull sources of a configuration, built and started by `gatewatch ingest sources`: S3
 * (notifications through SQS, or bucket listing), CloudWatch Logs, Kafka and Azure Blob
 * Storage. Each client library is loaded only when a source of its kind is configured.
 */
import type { Redis } from 'ioredis';
import type { SourceConfig } from '../../core/config/schema.ts';
import type { IngestProducer } from '../pipeline/producer.ts';
import type { PullSourceOptions } from './pull-source.ts';
import type { Source } from './types.ts';

export const PULL_SOURCE_TYPES: ReadonlySet<string> = new Set(['s3', 'cloudwatch', 'kafka', 'azure-blob']);

export async function createPullSource(options: PullSourceOptions): Promise<Source> {
  const { source } = options;
  switch (source.type) {
    case 's3':
      if (source.s3?.queueUrl) return new (await import('./aws/s3-sqs.ts')).S3SqsSource(options);
      return new (await import('./aws/s3-list.ts')).S3ListSource(options);
    case 'cloudwatch':
      return new (await import('./aws/cloudwatch.ts')).CloudWatchSource(options);
    case 'kafka':
      return new (await import('./kafka.ts')).KafkaSource(options);
    case 'azure-blob':
      return new (await import('./azure-blob.ts')).AzureBlobSource(options);
    default:
      throw new Error(`source ${source.name}: type ${source.type} is not a pull source`);
  }
}

/** Start every pull source of the configuration; returns how to stop them. */
export async function startPullSources(options: {
  sources: SourceConfig[];
  producer: IngestProducer;
  redis: Redis;
  prefix: string;
  log?: (line: string) => void;
}): Promise<{ sources: Source[]; stop(): Promise<void> }> {
  const log = options.log ?? ((line: string) => console.error(line));
  const started: Source[] = [];
  for (const source of options.sources.filter((s) => PULL_SOURCE_TYPES.has(s.type))) {
    const pull = await createPullSource({
      source,
      producer: options.producer,
      redis: options.redis,
      prefix: options.prefix,
      onError: log,
    });
    await pull.start();
    started.push(pull);
  }
  return {
    sources: started,
    async stop() {
      await Promise.all(started.map((s) => s.stop()));
    },
  };
}
