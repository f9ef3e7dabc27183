/**
 * S3 event notifications as they arrive in an SQS queue: sent by S3 directly, wrapped in an
 * SNS notification (a topic fanning out to queues), or as an EventBridge "Object Created"
 * event. Test events (sent when a notification is configured) and events that do not create
 * an object (removals, restores, replication) carry nothing to read.
 */
import { decodeEventKey } from './clients.ts';

export interface NotifiedObject {
  bucket: string;
  key: string;
  size?: number;
  etag?: string;
  /** Orders events of one key (hex, compare by length then value). */
  sequencer?: string;
  eventTime?: number;
}

export type Notification =
  | { kind: 'objects'; objects: NotifiedObject[] }
  | { kind: 'skip'; reason: string }
  | { kind: 'invalid'; reason: string };

type Json = Record<string, unknown>;
const isObj = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
const num = (v: unknown) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);

function fromRecords(records: unknown[]): Notification {
  const objects: NotifiedObject[] = [];
  let other = 0;
  for (const record of records) {
    if (!isObj(record)) return { kind: 'invalid', reason: 'S3 event record is not an object' };
    const name = str(record.eventName) ?? '';
    const s3 = isObj(record.s3) ? record.s3 : undefined;
    if (!name.startsWith('ObjectCreated:') || str(record.eventSource) !== 'aws:s3') {
      other++;
      continue;
    }
    const bucket = isObj(s3?.bucket) ? str(s3.bucket.name) : undefined;
    const object = isObj(s3?.object) ? s3.object : undefined;
    const key = str(object?.key);
    if (!bucket || key === undefined)
      return { kind: 'invalid', reason: `${name} record without bucket name or object key` };
    const time = Date.parse(str(record.eventTime) ?? '');
    objects.push({
      bucket,
      key: decodeEventKey(key),
      ...(num(object?.size) !== undefined ? { size: num(object?.size) } : {}),
      ...(str(object?.eTag) ? { etag: str(object?.eTag) } : {}),
      ...(str(object?.sequencer) ? { sequencer: str(object?.sequencer) } : {}),
      ...(Number.isNaN(time) ? {} : { eventTime: time }),
    });
  }
  if (objects.length === 0) return { kind: 'skip', reason: `${other} event(s) that create no object` };
  return { kind: 'objects', objects };
}

/** What an SQS message body says about S3 objects. Never throws. */
export function parseS3Notification(body: string, depth = 0): Notification {
  let json: unknown;
  try {
    json = JSON.parse(body);
  } catch {
    return { kind: 'invalid', reason: 'SQS message body is not JSON (not an S3 event notification)' };
  }
  if (!isObj(json)) return { kind: 'invalid', reason: 'SQS message body is not a JSON object' };
  if (str(json.Event) === 's3:TestEvent') return { kind: 'skip', reason: 'S3 test event' };
  // SNS → SQS without raw message delivery: the S3 event is the string in Message.
  if (str(json.Type) === 'Notification' && typeof json.Message === 'string' && depth === 0) {
    return parseS3Notification(json.Message, 1);
  }
  if (Array.isArray(json.Records)) return fromRecords(json.Records);
  // EventBridge: {"source":"aws.s3","detail-type":"Object Created","detail":{bucket:{name},object:{key,size,etag}}}
  if (str(json.source) === 'aws.s3' && isObj(json.detail)) {
    if (str(json['detail-type']) !== 'Object Created')
      return { kind: 'skip', reason: `EventBridge ${String(json['detail-type'])}` };
    const bucket = isObj(json.detail.bucket) ? str(json.detail.bucket.name) : undefined;
    const object = isObj(json.detail.object) ? json.detail.object : undefined;
    const key = str(object?.key);
    if (!bucket || key === undefined)
      return { kind: 'invalid', reason: 'EventBridge S3 event without bucket or key' };
    const time = Date.parse(str(json.time) ?? '');
    return {
      kind: 'objects',
      objects: [
        {
          bucket,
          // EventBridge keys are URL-encoded like notification keys
          key: decodeEventKey(key),
          ...(num(object?.size) !== undefined ? { size: num(object?.size) } : {}),
          ...(str(object?.etag) ? { etag: str(object?.etag) } : {}),
          ...(str(object?.sequencer) ? { sequencer: str(object?.sequencer) } : {}),
          ...(Number.isNaN(time) ? {} : { eventTime: time }),
        },
      ],
    };
  }
  return { kind: 'invalid', reason: 'JSON message is not an S3 event notification (no Records)' };
}
