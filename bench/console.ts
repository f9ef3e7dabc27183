/**
 * The console's speed, measured in the browser (Debian's Chromium, playwright-core) over
 * 100,000 stored incidents:
 * - the queue: from navigation (a fresh load of /) to its first rows on screen;
 * - an incident page: from the click on a queue row to its title, and from a fresh load of
 *   its URL to its title;
 * next to a ceiling measured in the same browser in the same run: the API answering the
 * same requests (fetch from the page, no rendering). Also the console's scripts, gzipped.
 * Figures are printed, never asserted.
 *
 *   npm run bench:console                          (embedded store, a temporary SQLite file)
 *   npm run bench:console -- --store elasticsearch  (ELASTICSEARCH_URL and REDIS_URL)
 *   BENCH_INCIDENTS=100000 BENCH_ROUNDS=15 npm run bench:console
 */
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { Redis } from 'ioredis';
import { CONSOLE_DIST } from '../api/console.ts';
import { makeIncident } from '../api/testing/fixtures.ts';
import { type StartedServer, startEmbeddedServer, startServer } from '../cli/commands/serve.ts';
import { launchBrowser } from '../console/e2e/browser.ts';
import { loadConfig } from '../core/config/load.ts';
import type { Incident } from '../core/schema/incident.ts';
import { bulkWrite, createEsClient, indexNames } from '../core/store/elasticsearch.ts';
import { installIncidentIndex } from '../detections/incidents/repository.ts';
import { EmbeddedStore } from '../embedded/store.ts';

const INCIDENTS = Number(process.env.BENCH_INCIDENTS ?? 100_000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 15);
const store = process.argv.includes('--store')
  ? process.argv[process.argv.indexOf('--store') + 1]
  : 'embedded';
if (store !== 'embedded' && store !== 'elasticsearch') {
  console.error(`bench:console: --store is embedded or elasticsearch, got "${store}"`);
  process.exit(2);
}
if (store === 'elasticsearch' && (!process.env.ELASTICSEARCH_URL || !process.env.REDIS_URL)) {
  console.error('bench:console: --store elasticsearch needs ELASTICSEARCH_URL and REDIS_URL');
  process.exit(2);
}

/** Incidents spread over the last 30 days, every status and severity, many rules and IPs. */
function incidents(): Incident[] {
  const now = Date.now();
  const step = (30 * 86_400_000) / INCIDENTS;
  const statuses = ['new', 'new', 'new', 'triaged', 'in_remediation', 'resolved', 'false_positive'] as const;
  return Array.from({ length: INCIDENTS }, (_, n) => {
    const i = makeIncident(n, {}, now - 30 * 86_400_000);
    const at = new Date(now - 30 * 86_400_000 + n * step).toISOString();
    return {
      ...i,
      rule: { ...i.rule, id: `rule-${n % 40}`, title: `Rule ${n % 40}` },
      status: statuses[n % statuses.length]!,
      window: { start: at, end: at },
      first_seen: at,
      last_seen: at,
      created_at: at,
      updated_at: at,
      history: [{ at, by: 'gatewatch', field: 'status', from: null, to: 'new' }],
    };
  });
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return { median: q(0.5), p95: q(0.95), max: s[s.length - 1]! };
};
const fmt = (xs: number[]) => {
  const s = stats(xs);
  return `median ${s.median.toFixed(0).padStart(5)} ms  p95 ${s.p95.toFixed(0).padStart(5)} ms  max ${s.max.toFixed(0).padStart(5)} ms`;
};

async function main(): Promise<void> {
  const config = loadConfig({ env: store === 'elasticsearch' ? process.env : {} });
  config.api.host = '127.0.0.1';
  config.api.port = 0;
  config.api.rateLimitPerMinute = 1_000_000;
  let server: StartedServer;
  let cleanup: () => Promise<void>;
  const data = incidents();
  const loadStart = performance.now();
  if (store === 'embedded') {
    const dir = mkdtempSync(join(tmpdir(), 'gatewatch-bench-console-'));
    const db = join(dir, 'bench.sqlite');
    const s = new EmbeddedStore(db);
    const writer = s.incidentStore();
    s.db.exec('BEGIN');
    for (const i of data) await writer.create(i);
    s.db.exec('COMMIT');
    s.close();
    server = await startEmbeddedServer(config, { db, logger: false });
    cleanup = async () => rmSync(dir, { recursive: true, force: true });
  } else {
    const prefix = `gwbench-console-${randomBytes(3).toString('hex')}`;
    config.elasticsearch.indexPrefix = prefix;
    config.redis.prefix = prefix;
    config.redis.requireNoEviction = false;
    const es = createEsClient(config.elasticsearch);
    await installIncidentIndex(es, prefix);
    const index = indexNames(prefix).incidents;
    for (let i = 0; i < data.length; i += 5000) {
      await bulkWrite(
        es,
        data.slice(i, i + 5000).map((doc) => ({ op: 'index' as const, index, id: doc.id, doc })),
      );
    }
    await es.indices.refresh({ index });
    server = await startServer(config, { logger: false });
    cleanup = async () => {
      await es.indices.delete({ index: `${prefix}*`, ignore_unavailable: true, allow_no_indices: true });
      await es.close();
      const redis = new Redis(config.redis.url);
      const keys = await redis.keys(`${prefix}:*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    };
  }
  const { token } = await server.keys.create('analyst', 'bench', 'bench:console');
  console.log(
    `bench:console — ${INCIDENTS} incidents in the ${store} store (loaded in ${((performance.now() - loadStart) / 1000).toFixed(1)} s), ${ROUNDS} rounds, Chromium headless`,
  );

  const browser = await launchBrowser();
  try {
    const page = await browser.page();
    // Timestamps taken in the page itself (performance.now(), from the navigation's start):
    // when the first queue row and an incident's title appear, and when a click happened.
    await page.context().addInitScript(() => {
      const w = window as unknown as { __gw: Record<string, number | undefined> };
      w.__gw = {};
      const seen = () => {
        const gw = w.__gw;
        if (gw.rows === undefined && document.querySelector('table[aria-label="Incidents"] tbody tr')) {
          gw.rows = performance.now();
        }
        if (
          gw.incident === undefined &&
          location.pathname.startsWith('/incidents/') &&
          document.querySelector('main .meta')
        ) {
          gw.incident = performance.now();
        }
      };
      new MutationObserver(seen).observe(document, { subtree: true, childList: true });
      document.addEventListener(
        'click',
        (e) => {
          w.__gw.click = e.timeStamp;
          w.__gw.incident = undefined;
        },
        true,
      );
    });
    const gw = () => page.evaluate(() => (window as unknown as { __gw: Record<string, number> }).__gw);
    // Sign in once (the key lands in the tab's session storage), warm the server and caches.
    await page.goto(`${server.url}/#key=${token}`);
    await page.locator('table[aria-label="Incidents"] tbody tr').first().waitFor({ timeout: 60_000 });
    const ids = await page
      .locator('table[aria-label="Incidents"] a.title')
      .evaluateAll((as) =>
        as.map((a) => decodeURIComponent((a as HTMLAnchorElement).pathname.split('/').pop()!)),
      );
    const queue: number[] = [];
    const queueApi: number[] = [];
    const click: number[] = [];
    const open: number[] = [];
    const incidentApi: number[] = [];
    for (let r = 0; r < ROUNDS + 2; r++) {
      const measured = r >= 2; // two warm-up rounds
      // Queue: a fresh navigation; performance.now() counts from its start.
      await page.goto(`${server.url}/`);
      await page.locator('table[aria-label="Incidents"] tbody tr').first().waitFor();
      const firstRows = (await gw()).rows!;
      // Incident: a click on a row, to its title (client-side navigation).
      const id = ids[r % ids.length]!;
      await page.locator(`a.title[href="/incidents/${encodeURIComponent(id)}"]`).click();
      await page.locator('main .meta').waitFor();
      const afterClick = await gw();
      const clicked = afterClick.incident! - afterClick.click!;
      // Incident: a fresh load of its URL.
      await page.goto(`${server.url}/incidents/${encodeURIComponent(id)}`);
      await page.locator('main .meta').waitFor();
      const opened = (await gw()).incident!;
      // Ceiling: the same API requests from the page, without the console.
      const api = await page.evaluate(
        async ({ id, token }) => {
          const h = { authorization: `Bearer ${token}` };
          const t0 = performance.now();
          await Promise.all([
            fetch('/api/v1/session', { headers: h }).then((r) => r.json()),
            fetch('/api/v1/incidents?sort=created_at&order=desc&limit=50', { headers: h }).then((r) =>
              r.json(),
            ),
          ]);
          const t1 = performance.now();
          await fetch(`/api/v1/incidents/${encodeURIComponent(id)}`, { headers: h }).then((r) => r.json());
          return { queue: t1 - t0, incident: performance.now() - t1 };
        },
        { id, token },
      );
      if (measured) {
        queue.push(firstRows);
        click.push(clicked);
        open.push(opened);
        queueApi.push(api.queue);
        incidentApi.push(api.incident);
      }
    }
    console.log('');
    console.log(`queue, navigation → first rows     ${fmt(queue)}   (target < 1000 ms)`);
    console.log(`  ceiling: its API requests alone  ${fmt(queueApi)}`);
    console.log(`incident, click → title            ${fmt(click)}   (target < 500 ms)`);
    console.log(`incident, fresh load → title       ${fmt(open)}`);
    console.log(`  ceiling: GET the incident alone  ${fmt(incidentApi)}`);
  } finally {
    await browser.close();
    await server.close();
    await cleanup();
  }

  const assets = join(CONSOLE_DIST, 'assets');
  const scripts = readdirSync(assets).filter((f) => f.endsWith('.js'));
  const gz = (f: string) => gzipSync(readFileSync(join(assets, f)), { level: 9 }).length;
  const total = scripts.reduce((n, f) => n + gz(f), 0);
  const entry = /src="\/assets\/([^"]+\.js)"/.exec(
    readFileSync(join(CONSOLE_DIST, 'index.html'), 'utf8'),
  )?.[1];
  console.log('');
  console.log(
    `console scripts, gzipped: ${(total / 1024).toFixed(1)} KB in ${scripts.length} files (target < 300 KB)`,
  );
  for (const f of scripts.sort((a, b) => gz(b) - gz(a))) {
    console.log(
      `  ${f.padEnd(28)} ${(gz(f) / 1024).toFixed(1).padStart(6)} KB${f === entry ? '  (loaded first; the rest on demand)' : ''}`,
    );
  }
}

await main();
