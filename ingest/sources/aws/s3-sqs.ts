/**
 * S3 with event notifications: an SQS queue receives the bucket's "object created" events
 * (directly, through SNS, or from EventBridge); each message's objects are read, and the
 * message is deleted only once every line of them is in the ingest queue. SQS is the
 * checkpoint: a message not deleted comes back after its visibility timeout.
 *
 * While a large object is read the message's visibility is extended every half timeout, so it
 * does not reappear mid-read. Per-object positions (expiring Redis keys) let a message that
 * does come back — the process was killed — resume after the lines already queued. A message
 * whose objects keep failing is dead-lettered and deleted after `maxReceiveCount` receives
 * (0: left to the queue's own redrive policy). Unreadable objects (bad gzip, binary) are
 * dead-lettered at once and the message deleted: reading them again would not help.
 */

import type { S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  GetQueueAttributesCommand,
  type Message,
  ReceiveMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { durationMs } from '../../../core/config/load.ts';
import type { S3SourceConfig } from '../../../core/config/schema.ts';
import { eachLimit } from '../listing.ts';
import { ExpiringCheckpoints, enqueueUnreadable } from '../objects.ts';
import { safeErrorMessage } from '../progress.ts';
import { PollingSource, type PullSourceOptions } from '../pull-source.ts';
import { awsClientOptions, regionOfQueueUrl, s3Client, s3Object, s3Url } from './clients.ts';
import { parseS3Notification } from './s3-notifications.ts';

/** How long per-object positions are kept (a redelivered message within this resumes mid-object). */
const POSITION_TTL_SECONDS = 7 * 86_400;

export class S3SqsSource extends PollingSource {
  private readonly s3: S3Client;
  private readonly sqs: SQSClient;
  private readonly settings: S3SourceConfig;
  private readonly queueUrl: string;
  private readonly checkpoints: ExpiringCheckpoints;
  private readonly visibilitySeconds: number;
  private readonly abort = new AbortController();
  /** Bytes still to read of the objects in flight, by object URL. */
  private readonly inFlight = new Map<string, number>();
  private attributesAt = 0;

  constructor(options: PullSourceOptions) {
    super(options);
    this.settings = options.source.s3!;
    this.queueUrl = this.settings.queueUrl!;
    this.s3 = s3Client(this.settings);
    this.sqs = new SQSClient(awsClientOptions(this.settings, regionOfQueueUrl(this.queueUrl)));
    this.checkpoints = new ExpiringCheckpoints(options.redis, this.key('object'), POSITION_TTL_SECONDS);
    this.visibilitySeconds = Math.max(1, Math.round(durationMs(this.settings.visibilityTimeout) / 1000));
  }

  protected intervalMs(): number {
    return 0; // receiving long-polls
  }

  override async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    await super.stop();
  }

  protected async poll(): Promise<void> {
    await this.reportQueue();
    if (await this.options.producer.overHighWater()) {
      await this.sleep(500);
      return;
    }
    let messages: Message[];
    try {
      const received = await this.sqs.send(
        new ReceiveMessageCommand({
          QueueUrl: this.queueUrl,
          MaxNumberOfMessages: Math.min(10, this.settings.concurrency * 2),
          WaitTimeSeconds: 10,
          VisibilityTimeout: this.visibilitySeconds,
          MessageSystemAttributeNames: ['ApproximateReceiveCount'],
        }),
        { abortSignal: this.abort.signal },
      );
      messages = received.Messages ?? [];
    } catch (err) {
      if (this.stopped) return;
      throw err;
    }
    await eachLimit(messages, this.settings.concurrency, (m) => this.handle(m));
  }

  /** Queue depth (messages waiting and in flight) and bytes in flight, every few seconds. */
  private async reportQueue(): Promise<void> {
    const now = Date.now();
    if (now - this.attributesAt < 5_000) return;
    this.attributesAt = now;
    const attributes = await this.sqs.send(
      new GetQueueAttributesCommand({
        QueueUrl: this.queueUrl,
        AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
      }),
    );
    const a = attributes.Attributes ?? {};
    this.progress.set({
      objectsPending:
        Number(a.ApproximateNumberOfMessages ?? 0) + Number(a.ApproximateNumberOfMessagesNotVisible ?? 0),
      bytesBehind: [...this.inFlight.values()].reduce((s, n) => s + n, 0),
    });
  }

  private async setVisibility(message: Message, seconds: number): Promise<void> {
    await this.sqs.send(
      new ChangeMessageVisibilityCommand({
        QueueUrl: this.queueUrl,
        ReceiptHandle: message.ReceiptHandle!,
        VisibilityTimeout: seconds,
      }),
    );
  }

  private async remove(message: Message): Promise<void> {
    await this.sqs.send(
      new DeleteMessageCommand({ QueueUrl: this.queueUrl, ReceiptHandle: message.ReceiptHandle! }),
    );
  }

  private async handle(message: Message): Promise<void> {
    const receives = Number(message.Attributes?.ApproximateReceiveCount ?? 1);
    const notification = parseS3Notification(message.Body ?? '');
    if (notification.kind === 'skip') return this.remove(message);
    if (notification.kind === 'invalid') {
      const url = `sqs://${this.queueUrl.replace(/^https?:\/\//, '')}#${message.MessageId}`;
      await enqueueUnreadable(
        this.options.producer,
        this.options.source,
        { url, version: message.MessageId ?? '' },
        notification.reason,
      );
      this.progress.add('dead_letters');
      this.options.onError?.(
        `s3 source ${this.name}: message ${message.MessageId} dead-lettered: ${notification.reason}`,
      );
      return this.remove(message);
    }
    const objects = notification.objects.filter(
      (o) =>
        (this.settings.bucket === undefined || o.bucket === this.settings.bucket) &&
        o.key.startsWith(this.settings.prefix),
    );
    // Keep the message hidden while its objects are read.
    const heartbeat = setInterval(
      () => void this.setVisibility(message, this.visibilitySeconds).catch(() => undefined),
      Math.max(500, (this.visibilitySeconds * 1000) / 2),
    );
    try {
      for (const o of objects) {
        const object = s3Object(this.s3, o.bucket, o.key, {
          etag: o.etag ?? o.sequencer ?? message.MessageId ?? '',
          size: o.size,
          modified: o.eventTime,
        });
        const prior = (await this.checkpoints.get([object.url]))[0];
        this.inFlight.set(object.url, (o.size ?? 0) - (prior?.version === object.version ? prior.bytes : 0));
        try {
          const { position } = await this.readStoredObject(object, prior, this.checkpoints);
          if (!position.done) return; // stopping: the message comes back, the position resumes it
        } finally {
          this.inFlight.delete(object.url);
        }
      }
    } catch (err) {
      const reason = safeErrorMessage(err);
      if (this.settings.maxReceiveCount > 0 && receives >= this.settings.maxReceiveCount) {
        for (const o of objects) {
          await enqueueUnreadable(
            this.options.producer,
            this.options.source,
            { url: s3Url(o.bucket, o.key), version: o.etag ?? message.MessageId ?? '', size: o.size },
            `gave up after ${receives} receives of SQS message ${message.MessageId}: ${reason}`,
          );
          this.progress.add('dead_letters');
        }
        clearInterval(heartbeat);
        await this.remove(message);
        return;
      }
      // Back off: let the message return later rather than at once.
      clearInterval(heartbeat);
      await this.setVisibility(
        message,
        Math.min(this.visibilitySeconds, 5 * 2 ** Math.min(receives, 6)),
      ).catch(() => undefined);
      throw err;
    } finally {
      clearInterval(heartbeat);
    }
    await this.remove(message);
  }
}
