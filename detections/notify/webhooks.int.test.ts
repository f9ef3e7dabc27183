/**
 * Notifications go through their own queue: a receiver that fails is retried with backoff,
 * and the Slack-compatible and generic JSON payloads arrive as specified.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, describe, expect, it } from 'vitest';
import { connectRedis } from '../../core/queue/bullmq.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { integrationContext } from '../../test/harness/context.ts';
import { eventually } from '../../test/harness/eventually.ts';
import { Notifier } from './webhooks.ts';

const ctx = integrationContext('notify');

const incident: Incident = {
  id: 'inc-1',
  rule: {
    id: 'credential-stuffing-single-source',
    version: 'v1',
    title: 'Credential stuffing',
    kind: 'threshold',
  },
  severity: 'high',
  severity_rank: 3,
  risk: 73,
  title: 'Credential stuffing from 203.0.113.7',
  summary: '338 failed logins for 338 accounts',
  status: 'new',
  assignee: null,
  tags: ['API2:2023', 'T1110.004'],
  rules: ['credential-stuffing-single-source'],
  entity_key: 'ip:203.0.113.7',
  entity_names: {},
  group: { 'source.ip': '203.0.113.7' },
  group_key: '["203.0.113.7"]',
  entities: { ip: ['203.0.113.7'] },
  window: { start: '2026-11-23T10:00:00.000Z', end: '2026-11-23T10:15:00.000Z' },
  first_seen: '2026-11-23T10:00:01.000Z',
  last_seen: '2026-11-23T10:09:00.000Z',
  occurrences: 1,
  detection_ids: ['inc-1'],
  event_count: 340,
  metrics: { failures: 338 },
  detections: [],
  evidence: { event_ids: [], query: 'source.ip == "203.0.113.7"' },
  suppression_key: null,
  suppression_keys: [],
  created_at: '2026-11-23T10:16:00.000Z',
  updated_at: '2026-11-23T10:16:00.000Z',
  acknowledged_at: null,
  resolved_at: null,
  history: [],
  comments: [],
};

describe('webhook notifications', () => {
  afterAll(() => ctx.cleanup());

  it('retries a failing receiver and delivers both payload kinds', async () => {
    const received: { path: string; body: Record<string, any> }[] = [];
    let failuresLeft = 2;
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        if (req.url === '/json' && failuresLeft-- > 0) {
          res.writeHead(503).end();
          return;
        }
        received.push({ path: req.url!, body: JSON.parse(body) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const redis = await connectRedis(ctx.redisUrl, 'producer');
    const fast = new Notifier({
      redis,
      redisUrl: ctx.redisUrl,
      queuePrefix: ctx.prefix,
      backoffMs: 100,
      targets: [
        { url: `${base}/json`, kind: 'json', minSeverity: 'medium' },
        { url: `${base}/slack`, kind: 'slack', minSeverity: 'high' },
        { url: `${base}/critical-only`, kind: 'json', minSeverity: 'critical' },
      ],
    });
    fast.startWorker();
    try {
      await fast.announce(incident);
      const got = await eventually(
        async () => received,
        (r) => r.length >= 2,
        { timeoutMs: 30_000 },
      );
      expect(got.map((r) => r.path).sort()).toEqual(['/json', '/slack']);
      const json = got.find((r) => r.path === '/json')!.body;
      expect(json.type).toBe('gatewatch.incident.created');
      expect(json.incident.id).toBe('inc-1');
      const slack = got.find((r) => r.path === '/slack')!.body;
      expect(slack.text).toBe('[HIGH] Credential stuffing from 203.0.113.7');
      expect(slack.blocks[0].type).toBe('header');
      expect(failuresLeft).toBeLessThan(0); // the JSON receiver failed twice before succeeding
    } finally {
      await fast.close();
      redis.disconnect();
      server.close();
    }
  });
});
