import { describe, expect, it } from 'vitest';
import { loadConfig } from './load.ts';

const load = (source: Record<string, unknown>) =>
  loadConfig({ env: {}, overrides: { ingest: { sources: [{ name: 'edge', ...source }] } } });

describe('pull source configuration', () => {
  it('fills defaults for each pull source', () => {
    const [s3] = load({ type: 's3', s3: { bucket: 'alb-logs' } }).ingest.sources;
    expect(s3?.s3).toMatchObject({
      prefix: '',
      start: 'beginning',
      pollInterval: '1m',
      visibilityTimeout: '5m',
      maxReceiveCount: 5,
    });
    const [kafka] = load({ type: 'kafka', kafka: { brokers: ['b1:9092'], topics: ['gw'] } }).ingest.sources;
    expect(kafka?.kafka).toMatchObject({ groupId: 'gatewatch', start: 'earliest', tls: false });
  });

  it('says in one line what a pull source lacks', () => {
    expect(() => load({ type: 's3', s3: { prefix: 'x/' } })).toThrow(
      'config: ingest.sources[0].s3: type s3 needs s3.bucket (listing) or s3.queueUrl (event notifications)',
    );
    expect(() => load({ type: 'cloudwatch', cloudwatch: {} })).toThrow(
      /needs cloudwatch.logGroups or cloudwatch.logGroupPrefix/,
    );
    expect(() => load({ type: 'kafka', kafka: { brokers: ['b:9092'], topicPattern: '(' } })).toThrow(
      /^config: ingest.sources\[0\].kafka.topicPattern: not a regular expression/,
    );
    expect(() => load({ type: 'file', s3: { bucket: 'b' } })).toThrow(
      'config: ingest.sources[0].s3: only for sources of type s3 (this one is file)',
    );
    expect(() => load({ type: 's3', s3: { bucket: 'b', start: 'yesterday' } })).toThrow(
      /ingest.sources.0.s3.start/,
    );
    expect(() => load({ type: 'kafka', kafka: { brokers: ['no-port'], topics: ['t'] } })).toThrow(/brokers/);
  });
});
