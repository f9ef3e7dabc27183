/**
 * Incident notifications: a generic JSON webhook and a Slack-compatible payload. Deliveries go
 * through their own BullMQ queue with retries and exponential backoff, so a slow or failing
 * receiver never blocks detection.
 */
import type { Queue, Worker } from 'bullmq';
import type { Redis } from 'ioredis';
import { createQueue, createWorker } from '../../core/queue/bullmq.ts';
import type { Incident, Severity } from '../../core/schema/incident.ts';
import { SEVERITY_RANK } from '../../core/schema/incident.ts';

export const NOTIFY_QUEUE = 'notify';

export interface WebhookTarget {
  url: string;
  kind: 'json' | 'slack';
  minSeverity: Severity;
}

export interface Delivery {
  target: WebhookTarget;
  incident: Incident;
}

export function jsonPayload(incident: Incident) {
  return {
    type: 'gatewatch.incident.created',
    incident: {
      id: incident.id,
      title: incident.title,
      summary: incident.summary,
      severity: incident.severity,
      risk: incident.risk,
      rule: incident.rule,
      entities: incident.entities,
      window: incident.window,
      tags: incident.tags,
      first_seen: incident.first_seen,
      last_seen: incident.last_seen,
    },
  };
}

export function slackPayload(incident: Incident) {
  const entities = Object.entries(incident.entities)
    .filter(([, v]) => v && v.length > 0)
    .map(([k, v]) => `*${k}*: ${(v as string[]).join(', ')}`)
    .join('\n');
  return {
    text: `[${incident.severity.toUpperCase()}] ${incident.title}`,
    blocks: [
      { type: 'header', text: { type: 'plain_text', text: incident.title.slice(0, 150) } },
      { type: 'section', text: { type: 'mrkdwn', text: incident.summary } },
      {
        type: 'section',
        fields: [
          { type: 'mrkdwn', text: `*Severity*\n${incident.severity} (risk ${incident.risk})` },
          { type: 'mrkdwn', text: `*Rule*\n${incident.rule.id}` },
        ],
      },
      ...(entities ? [{ type: 'section', text: { type: 'mrkdwn', text: entities } }] : []),
      {
        type: 'context',
        elements: [{ type: 'mrkdwn', text: `incident ${incident.id} · ${incident.tags.join(' ')}` }],
      },
    ],
  };
}

export class Notifier {
  readonly queue: Queue<Delivery>;
  private readonly targets: WebhookTarget[];
  private worker?: Worker<Delivery>;
  private readonly redisUrl: string;
  private readonly prefix: string;

  constructor(options: {
    redis: Redis;
    redisUrl: string;
    queuePrefix: string;
    targets: WebhookTarget[];
    /** First retry delay; doubles each attempt (default 2 s). */
    backoffMs?: number;
  }) {
    this.targets = options.targets;
    this.redisUrl = options.redisUrl;
    this.prefix = options.queuePrefix;
    this.queue = createQueue<Delivery>(
      NOTIFY_QUEUE,
      { producer: options.redis, prefix: options.queuePrefix },
      {
        defaultJobOptions: {
          attempts: 12,
          backoff: { type: 'exponential', delay: options.backoffMs ?? 2_000 },
          removeOnFail: { count: 5_000 },
        },
      },
    );
  }

  /** Enqueue one delivery per interested target; returns at once. */
  async announce(incident: Incident): Promise<void> {
    const jobs = this.targets
      .filter((t) => SEVERITY_RANK[incident.severity] >= SEVERITY_RANK[t.minSeverity])
      .map((target, i) => ({
        name: 'deliver',
        data: { target, incident },
        opts: { jobId: `${incident.id}-${i}` },
      }));
    if (jobs.length > 0) await this.queue.addBulk(jobs);
  }

  startWorker(timeoutMs = 10_000): Worker<Delivery> {
    this.worker = createWorker<Delivery>(
      NOTIFY_QUEUE,
      async (job) => {
        const { target, incident } = job.data;
        const body = target.kind === 'slack' ? slackPayload(incident) : jsonPayload(incident);
        const response = await fetch(target.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'user-agent': 'gatewatch-notifier' },
          body: JSON.stringify(body),
          signal: AbortSignal.timeout(timeoutMs),
        });
        if (!response.ok) throw new Error(`${target.url} answered ${response.status}`);
      },
      { redisUrl: this.redisUrl, prefix: this.prefix },
      { concurrency: 4 },
    );
    return this.worker;
  }

  async close(): Promise<void> {
    await this.worker?.close();
    await this.queue.close();
  }
}
