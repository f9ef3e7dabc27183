/**
 * The console end to end against `gatewatch serve --embedded` over a replay of the demo
 * scenario, in Debian's Chromium (console/e2e/flows.ts). These screenshots are the ones in
 * docs/console/ (GATEWATCH_UPDATE_SCREENSHOTS=1 npx vitest run console/e2e/embedded.int.test.ts).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { type StartedServer, startEmbeddedServer } from '../../cli/commands/serve.ts';
import { loadConfig } from '../../core/config/load.ts';
import { replay, replayFiles } from '../../embedded/replay.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { loadRuleFiles } from '../../parser/index.ts';
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
let server: StartedServer;
let browser: ConsoleBrowser;
let target: ConsoleTarget;
let range: { from: string; to: string };

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatewatch-console-e2e-'));
  const db = join(dir, 'demo.sqlite');
  const config = loadConfig({ env: {}, file: `${SCENARIO}/gatewatch.yaml` });
  config.api.host = '127.0.0.1';
  config.api.port = 0;
  const store = new EmbeddedStore(db);
  try {
    await replay(replayFiles([SCENARIO]), {
      config,
      store,
      rules: (await loadRuleFiles(config.detections.rulePaths)).rules,
    });
    const bounds = store.timeBounds()!;
    // The scenario's last hours (its first events are a month of history for first-seen rules).
    range = {
      from: new Date(bounds.max - 6 * 3_600_000).toISOString(),
      to: new Date(bounds.max + 60_000).toISOString(),
    };
  } finally {
    store.close();
  }
  server = await startEmbeddedServer(config, { db, logger: false });
  const key = async (role: 'viewer' | 'analyst' | 'admin') =>
    (await server.keys.create(role, `e2e-${role}`, 'test')).token;
  target = {
    base: server.url,
    keys: { viewer: await key('viewer'), analyst: await key('analyst'), admin: await key('admin') },
    screenshots: true,
  };
  browser = await launchBrowser();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('console over the embedded store', () => {
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
