import { describe, expect, it } from 'vitest';
import { parseS3Notification } from './s3-notifications.ts';

const record = (eventName: string, key: string) => ({
  eventVersion: '2.1',
  eventSource: 'aws:s3',
  awsRegion: 'us-east-1',
  eventTime: '2026-11-23T12:05:01.123Z',
  eventName,
  s3: {
    bucket: { name: 'alb-logs', arn: 'arn:aws:s3:::alb-logs' },
    object: { key, size: 1234, eTag: '0123456789abcdef', sequencer: '0065A3F2E0' },
  },
});

describe('S3 event notifications', () => {
  it('reads objects of direct notifications, decoding keys as S3 encodes them', () => {
    const body = JSON.stringify({
      Records: [record('ObjectCreated:Put', 'AWSLogs/dir%2Fa+b%2Bc%3Dd.log.gz')],
    });
    expect(parseS3Notification(body)).toEqual({
      kind: 'objects',
      objects: [
        {
          bucket: 'alb-logs',
          key: 'AWSLogs/dir/a b+c=d.log.gz',
          size: 1234,
          etag: '0123456789abcdef',
          sequencer: '0065A3F2E0',
          eventTime: Date.parse('2026-11-23T12:05:01.123Z'),
        },
      ],
    });
  });

  it('unwraps SNS notifications and EventBridge events', () => {
    const inner = JSON.stringify({ Records: [record('ObjectCreated:CompleteMultipartUpload', 'a.log')] });
    const sns = JSON.stringify({
      Type: 'Notification',
      MessageId: 'm',
      TopicArn: 'arn:aws:sns:us-east-1:1:t',
      Message: inner,
    });
    expect(parseS3Notification(sns)).toMatchObject({
      kind: 'objects',
      objects: [{ bucket: 'alb-logs', key: 'a.log' }],
    });
    const eventBridge = JSON.stringify({
      source: 'aws.s3',
      'detail-type': 'Object Created',
      time: '2026-11-23T12:05:01Z',
      detail: { bucket: { name: 'b' }, object: { key: 'x%20y.log', size: 9, etag: 'e' } },
    });
    expect(parseS3Notification(eventBridge)).toMatchObject({
      kind: 'objects',
      objects: [{ bucket: 'b', key: 'x y.log', size: 9 }],
    });
  });

  it('skips test events and events that create nothing; calls other bodies invalid', () => {
    expect(
      parseS3Notification(JSON.stringify({ Service: 'Amazon S3', Event: 's3:TestEvent', Bucket: 'b' })),
    ).toEqual({
      kind: 'skip',
      reason: 'S3 test event',
    });
    expect(
      parseS3Notification(JSON.stringify({ Records: [record('ObjectRemoved:Delete', 'a.log')] })),
    ).toMatchObject({
      kind: 'skip',
    });
    expect(parseS3Notification('not json')).toMatchObject({ kind: 'invalid' });
    expect(parseS3Notification(JSON.stringify({ hello: 'world' }))).toMatchObject({ kind: 'invalid' });
  });
});
