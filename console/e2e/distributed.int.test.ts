/**
 * The console end to end against the distributed mode: the API on the real Elasticsearch and
 * Redis of the test harness, the demo scenario's events indexed into Elasticsearch (moved to
 * end a few minutes ago), the inventory fed as ingest workers feed it, and incidents opened by
 * the scheduler's own runs of the built-in pack. Same flows as the embedded mode.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startTestApp, type TestApp } from '../../api/testing/harness.ts';
import { loadConfig } from '../../core/config/load.ts';
import type { GatewatchEvent } from '../../core/schema/event.ts';
import { installCoreTemplates } from '../../core/store/templates.ts';
import { loadRuleSet } from '../../detections/rule-set.ts';
import { replay, replayFiles } from '../../embedded/replay.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { indexEvents } from '../../ingest/sinks/elasticsearch.ts';
import { InventoryAccumulator } from '../../inventory/accumulator.ts';
import { diskReaders, loadRuleFiles } from '../../parser/index.ts';
import { type ConsoleBrowser, launchBrowser } from './browser.ts';
import {
  analystFlow,
  type ConsoleTarget,
  exceptionSkippedFlow,
  keyboardTriage,
  otherPagesFlow,
  ruleEditorFlow,
  specUploadFlow,
  viewerFlow,
} from './flows.ts';

const SCENARIO = 'samples/scenarios/demo';
let dir: string;
let t: TestApp;
let browser: ConsoleBrowser;
let target: ConsoleTarget;
let range: { from: string; to: string };

beforeAll(async () => {
  t = await startTestApp('console-e2e');
  // As `gatewatch serve` wires them (cli/commands/serve.ts): rule text may include files.
  t.ports.ruleReaders = diskReaders();
  await installCoreTemplates(t.it.es, { prefix: t.it.prefix });

  // The scenario normalised and enriched (GeoIP, ASN) as ingest workers do, ending 5 minutes ago.
  dir = mkdtempSync(join(tmpdir(), 'gatewatch-console-e2e-'));
  const scenario = loadConfig({ env: {}, file: `${SCENARIO}/gatewatch.yaml` });
  const store = new EmbeddedStore(join(dir, 'events.sqlite'));
  let events: GatewatchEvent[];
  try {
    await replay(replayFiles([SCENARIO]), {
      config: scenario,
      store,
      rules: (await loadRuleFiles([])).rules,
      shiftTo: Date.now() - 5 * 60_000,
    });
    const bounds = store.timeBounds()!;
    events = store.eventsBetween(bounds.min, bounds.max + 1);
  } finally {
    store.close();
  }
  const written = await indexEvents(t.it.es, events, { prefix: t.it.prefix, refresh: true });
  expect(written.written).toBe(events.length);
  const inventory = new InventoryAccumulator(t.app.gatewatch.inventory.store);
  inventory.add(events);
  await inventory.flush();

  // The scheduler's runs of every rule over the attack hours (first-seen and baseline rules
  // read their history before that on their own).
  const last = Math.max(...events.map((e) => Date.parse(e['@timestamp'])));
  const checkpoint = String(last - 150 * 60_000);
  const setCheckpoint = (ruleId: string) =>
    t.redis.hset(`${t.it.prefix}:detect:checkpoints`, ruleId, checkpoint);
  for (const rule of (await loadRuleSet(t.config, t.it.es)).rules) {
    await setCheckpoint(rule.id);
    const run = await t.ports.detection.runNow(rule.id);
    expect(run.outcome, `${rule.id}: ${run.error ?? ''}`).not.toBe('error');
  }
  range = { from: new Date(last - 6 * 3_600_000).toISOString(), to: new Date(last + 60_000).toISOString() };

  await t.app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = t.app.server.address() as AddressInfo;
  target = {
    base: `http://127.0.0.1:${port}`,
    keys: { viewer: t.tokens.viewer, analyst: t.tokens.analyst, admin: t.tokens.admin },
    // A scheduled run covers the range since the rule's checkpoint; go back to the attack so
    // the admin's "Run now" sees the excepted entity again.
    beforeRerun: async (ruleId) => {
      await setCheckpoint(ruleId);
    },
    screenshots: false,
  };
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await t?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('console over Elasticsearch and Redis', () => {
  let found: { incidentId: string; ip: string };

  test('analyst: sign in, filter the queue, open an incident, triage it through every state, comment, add an exception', async () => {
    found = await analystFlow(browser, target);
  });

  test('admin: the rule skips the excepted entity in its next run, and shows the exception', async () => {
    await exceptionSkippedFlow(browser, target, found.ip);
  });

  test('keyboard only: open an incident from the queue and triage it', async () => {
    await keyboardTriage(browser, target);
  });

  test('rule editor: a diagnostic at its line and column; a backtest and its chart', async () => {
    await ruleEditorFlow(browser, target, range);
  });

  test('inventory: upload a spec and see a finding', async () => {
    await specUploadFlow(browser, target);
  });

  test('rules list, events search with field completion, health', async () => {
    await otherPagesFlow(browser, target, found.ip, range);
  });

  test('viewer: no write controls, and the API refuses the writes', async () => {
    await viewerFlow(browser, target, found.incidentId);
  });

  test('no script errors and no CSP violations on any page', () => {
    expect(browser.problems.join('\n')).toBe('');
  });
});
