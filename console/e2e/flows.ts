/**
 * The console end to end in a real browser, the same flows against either mode: a base URL
 * of a running `gatewatch serve` and a key per role. Every page is checked with axe-core (no
 * serious or critical violation) and photographed (docs/console/ with
 * GATEWATCH_UPDATE_SCREENSHOTS=1, else .cache/console-screenshots/); CSP violations and
 * script errors fail the run.
 */
import { mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Page } from 'playwright-core';
import { expect } from 'vitest';
import type { ConsoleBrowser } from './browser.ts';

export interface ConsoleTarget {
  base: string;
  keys: { viewer: string; analyst: string; admin: string };
  /** Called before the admin's "Run now" so the run's range covers the incident's window. */
  beforeRerun?: (ruleId: string) => Promise<void>;
  /** Photograph pages into the screenshot folder (one mode does, so the docs show one data set). */
  screenshots: boolean;
}

const AXE = readFileSync(
  join(import.meta.dirname, '..', '..', 'node_modules', 'axe-core', 'axe.min.js'),
  'utf8',
);
const SHOTS = process.env.GATEWATCH_UPDATE_SCREENSHOTS
  ? join(import.meta.dirname, '..', '..', 'docs', 'console')
  : join(import.meta.dirname, '..', '..', '.cache', 'console-screenshots');

export const RULE = 'credential-stuffing-single-source';

/** Wait for a value in the page: generous, as the suite runs on a loaded machine. */
const poll = <T>(fn: () => Promise<T> | T) => expect.poll(fn, { timeout: 30_000, interval: 100 });

/** axe-core on the page as it is: no serious or critical violation. */
export async function checkAccessibility(page: Page, what: string): Promise<void> {
  // evaluate runs through the DevTools protocol, outside the page's CSP (which rightly
  // refuses injected scripts).
  await page.evaluate(AXE);
  const result = (await page.evaluate(() =>
    (globalThis as unknown as { axe: { run: (o: object) => Promise<unknown> } }).axe.run({
      resultTypes: ['violations'],
    }),
  )) as { violations: { id: string; impact: string; help: string; nodes: { target: string[] }[] }[] };
  const bad = result.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.impact} ${v.id} (${v.help}) at ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
  expect(bad, `accessibility of ${what}`).toEqual([]);
}

export async function shoot(page: Page, target: ConsoleTarget, name: string): Promise<void> {
  if (!target.screenshots) return;
  mkdirSync(SHOTS, { recursive: true });
  // The whole page down to 1,800 px: long tables are cut rather than bloating the docs.
  const height = await page.evaluate(() => document.documentElement.scrollHeight);
  await page.screenshot({
    path: join(SHOTS, `${name}.png`),
    fullPage: true,
    clip: { x: 0, y: 0, width: 1360, height: Math.min(height, 1800) },
  });
}

export async function signIn(
  b: ConsoleBrowser,
  target: ConsoleTarget,
  role: keyof ConsoleTarget['keys'],
): Promise<Page> {
  const page = await b.page();
  await page.goto(`${target.base}/`);
  await page.getByLabel('API key').fill(target.keys[role]);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.getByTestId('who').waitFor();
  expect(await page.getByTestId('who').textContent()).toContain(role);
  // The key is a header, never a cookie.
  expect(await page.context().cookies()).toEqual([]);
  return page;
}

/** Go to a console path the way a link does (client-side), and wait for `ready`. */
export async function visit(page: Page, path: string, ready: string): Promise<void> {
  await page.evaluate((p) => {
    history.pushState(null, '', p);
    dispatchEvent(new PopStateEvent('popstate'));
  }, path);
  await page.locator(ready).first().waitFor({ timeout: 30_000 });
}

const statusOf = async (page: Page) => (await page.locator('.meta .badge').nth(1).textContent())?.trim();

/** Sign in, filter the queue, open an incident, triage it through every state, comment, add an exception. */
export async function analystFlow(
  b: ConsoleBrowser,
  target: ConsoleTarget,
): Promise<{ incidentId: string; ip: string }> {
  const signin = await b.page();
  await signin.goto(`${target.base}/`);
  await signin.getByLabel('API key').waitFor();
  await checkAccessibility(signin, 'sign-in');
  await shoot(signin, target, 'sign-in');
  await signin.context().close();

  const page = await signIn(b, target, 'analyst');
  const table = page.locator('table[aria-label="Incidents"]');
  await table.waitFor();
  await page.getByTestId('queue-chart').locator('canvas').waitFor();
  const allRows = await table.locator('tbody tr').count();
  expect(allRows).toBeGreaterThan(3);
  await checkAccessibility(page, 'incident queue');
  await shoot(page, target, 'queue');

  // Filter: critical severity (the stuffing that found a password folds into the incident and
  // raises it), then one rule; the URL keeps the filters.
  await page.getByRole('checkbox', { name: 'critical', exact: true }).check();
  await page.waitForURL(/severity=critical/);
  await poll(
    async () => new Set(await table.locator('tbody .badge[class*="sev-"]').allTextContents()),
  ).toEqual(new Set(['critical']));
  await page.getByLabel('Rule').selectOption(RULE);
  await page.waitForURL(new RegExp(`rule=${RULE}`));
  await poll(async () => table.locator('tbody tr').count()).toBe(1);
  expect((await table.locator('tbody .muted.small').first().textContent())?.startsWith(RULE)).toBe(true);

  // Open it.
  await table.locator('a.title').first().click();
  await page.waitForURL(/\/incidents\//);
  const incidentId = decodeURIComponent(page.url().split('/incidents/')[1]!);
  const chart = page.getByTestId('timeline-chart');
  await chart.locator('canvas').waitFor();
  expect(await chart.locator('[role="img"]').getAttribute('aria-label')).toContain('threshold 25');
  await page.getByTestId('evidence-query').waitFor();
  await page.locator('table[aria-label="Events"]').waitFor();
  await checkAccessibility(page, 'incident');
  await shoot(page, target, 'incident');

  // Every state: new → triaged → in_remediation → resolved → triaged (reopened) → false_positive.
  expect(await statusOf(page)).toBe('New');
  for (const [to, label] of [
    ['triaged', 'Triaged'],
    ['in_remediation', 'In remediation'],
    ['resolved', 'Resolved'],
    ['triaged', 'Triaged'],
    ['false_positive', 'False positive'],
  ] as const) {
    await page.getByTestId(`to-${to}`).click();
    await poll(() => statusOf(page)).toBe(label);
  }
  await poll(async () => page.getByTestId('history').locator('li').count()).toBe(5);

  await page.getByLabel('Add a comment').fill('Red team exercise, agreed with the SOC lead.');
  await page.getByRole('button', { name: 'Comment' }).click();
  await poll(async () => page.getByTestId('comments').textContent()).toContain('Red team exercise');

  // Add an exception for the IP, for good.
  const ip = (await page.getByLabel('Entity', { exact: true }).locator('option').first().textContent())!
    .replace(/^IP /, '')
    .trim();
  await page.getByLabel('For', { exact: true }).selectOption('forever');
  await page.getByLabel('Why', { exact: true }).fill('Our red team’s egress address');
  await page.getByRole('button', { name: 'Add exception' }).click();
  await page.getByText(`will skip ${ip} from its next run on`).waitFor();
  await poll(async () => page.getByTestId('exceptions').textContent()).toContain(ip);

  // Its entity page.
  await page.getByRole('link', { name: ip }).first().click();
  await page.getByTestId('entity-chart').locator('canvas').waitFor();
  expect(await page.getByTestId('first-seen').textContent()).toMatch(/^\d{4}-\d\d-\d\d /);
  await checkAccessibility(page, 'entity');
  await shoot(page, target, 'entity');
  await page.context().close();
  return { incidentId, ip };
}

/** Keyboard only: from the queue to an incident and through a status change, no pointer. */
export async function keyboardTriage(b: ConsoleBrowser, target: ConsoleTarget): Promise<void> {
  const page = await signIn(b, target, 'analyst');
  await visit(page, '/?status=new', 'table[aria-label="Incidents"] a.title');
  const focused = () =>
    page.evaluate(() => {
      const el = document.activeElement as HTMLElement | null;
      return el ? `${el.tagName}.${el.className}|${el.dataset.testid ?? ''}` : '';
    });
  const tabTo = async (match: (f: string) => boolean) => {
    for (let i = 0; i < 80; i++) {
      await page.keyboard.press('Tab');
      if (match(await focused())) return;
    }
    throw new Error('keyboard focus never reached the control');
  };
  await tabTo((f) => f.startsWith('A.title'));
  await page.keyboard.press('Enter');
  await page.waitForURL(/\/incidents\//);
  await page.getByTestId('to-triaged').waitFor();
  await tabTo((f) => f.endsWith('|to-triaged'));
  await page.keyboard.press('Enter');
  await poll(() => statusOf(page)).toBe('Triaged');
  await page.context().close();
}

/** The admin runs the rule: the excepted entity is skipped, and the exception shows on the rule. */
export async function exceptionSkippedFlow(
  b: ConsoleBrowser,
  target: ConsoleTarget,
  ip: string,
): Promise<void> {
  const page = await signIn(b, target, 'admin');
  await visit(page, `/rules/${RULE}`, '[data-testid="runs"]');
  await poll(async () => page.getByTestId('rule-exceptions').textContent()).toContain(ip);
  await target.beforeRerun?.(RULE);
  await page.getByRole('button', { name: 'Run now' }).click();
  const result = page.getByTestId('run-result');
  await result.waitFor();
  expect(await result.textContent()).toMatch(/Run ok: \d+ detections/);
  // A run catches up from the rule's checkpoint in steps, each recorded; no run before this
  // one had an exception to apply, so an excepted detection can only come from this run.
  const excepted = async () =>
    Math.max(
      ...(await page.getByTestId('runs').locator('tbody tr td:nth-child(8)').allTextContents()).map(Number),
    );
  await poll(excepted).toBeGreaterThanOrEqual(1);
  await page.context().close();
}

/** Edit a rule: a diagnostic at the right line and column; then a backtest and its chart. */
export async function ruleEditorFlow(
  b: ConsoleBrowser,
  target: ConsoleTarget,
  backtest: { from: string; to: string },
): Promise<void> {
  const page = await signIn(b, target, 'analyst');
  await visit(page, `/rules/${RULE}`, '[data-testid="rule-editor"] .cm-content');
  await page.getByTestId('diagnostics').getByText('No problems found.').waitFor();
  await checkAccessibility(page, 'rule');
  const editor = page.getByTestId('rule-editor').locator('.cm-content');
  // innerText: CodeMirror's lines are elements, and only innerText puts newlines between them.
  // biome-ignore lint/performance/useDomNodeTextContent: see above
  const original = (await editor.evaluate((el) => (el as HTMLElement).innerText)).replace(/\n$/, '');
  const lines = original.split('\n');
  const line = lines.findIndex((l) => l.includes('group by source.ip'));
  expect(line).toBeGreaterThan(0);
  const column = lines[line]!.indexOf('source.ip') + 1;
  await editor.click();
  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(original.replace('group by source.ip', 'group by sorce.ip'));
  const diagnostic = page.getByTestId('diagnostics').locator('li.error').first();
  await poll(async () => diagnostic.textContent()).toContain(`${line + 1}:${column}`);
  expect(await diagnostic.textContent()).toContain('source.ip');
  await page.getByTestId('rule-editor').locator('.cm-lintRange-error').first().waitFor();
  await shoot(page, target, 'rule-editor');

  await page.keyboard.press('Control+A');
  await page.keyboard.insertText(original);
  await page.getByTestId('diagnostics').getByText('No problems found.').waitFor();
  await page.getByLabel('From (UTC)').fill(backtest.from.slice(0, 16));
  await page.getByLabel('To (UTC)').fill(backtest.to.slice(0, 16));
  await page.getByRole('button', { name: 'Run backtest' }).click();
  await page.getByTestId('backtest-chart').locator('canvas').waitFor({ timeout: 60_000 });
  const summary = (await page.getByTestId('backtest-summary').textContent())!;
  expect(Number(/^(\d+) incident/.exec(summary)![1])).toBeGreaterThanOrEqual(1);
  expect(
    await page.locator('table[aria-label="Incidents the rule would open"] tbody tr').count(),
  ).toBeGreaterThanOrEqual(1);
  await shoot(page, target, 'rule-backtest');
  await page.context().close();
}

const SPEC = JSON.stringify({
  openapi: '3.0.3',
  info: { title: 'Shop API', version: '1.0.0' },
  servers: [{ url: 'https://api.shop.example' }],
  paths: {
    '/api/v1/checkout': { post: { responses: { '201': { description: 'Order placed' } } } },
    '/api/v1/products': { get: { responses: { '200': { description: 'Products' } } } },
  },
});

/**
 * The admin uploads a spec: the endpoints it documents are compared with what traffic shows,
 * and the differences become findings (checkout answers 502–504, which the spec does not say).
 */
export async function specUploadFlow(b: ConsoleBrowser, target: ConsoleTarget): Promise<void> {
  const page = await signIn(b, target, 'admin');
  await visit(page, '/inventory', 'table[aria-label="Endpoints"]');
  const finding = 'Undocumented status codes on POST api.shop.example/api/v1/checkout';
  const shadow = 'Shadow API: POST api.shop.example/api/v1/checkout';
  const rows = (text: string) => page.locator('[data-testid="findings"] tbody tr', { hasText: text }).count();
  const kind = async (k: string) => {
    await page.getByLabel('Kind', { exact: true }).selectOption(k);
    await page.locator('[data-testid="findings"], main .panel .muted').first().waitFor();
  };
  await kind('shadow');
  await poll(() => rows(shadow)).toBe(1);
  await kind('undocumented_status');
  expect(await rows(finding)).toBe(0);
  await page.getByLabel('or paste it').fill(SPEC);
  await page.getByRole('button', { name: 'Upload' }).click();
  await page.getByText('Imported: Shop API').waitFor();
  await poll(() => rows(finding)).toBe(1);
  await kind('shadow');
  await poll(() => rows(shadow)).toBe(0);
  await kind('undocumented_status');
  await page.getByTestId('specs').getByText('Shop API').waitFor();
  await checkAccessibility(page, 'inventory');
  await shoot(page, target, 'inventory');
  await page.context().close();
}

/** The remaining pages: rules list, events search with completion, health. */
export async function otherPagesFlow(
  b: ConsoleBrowser,
  target: ConsoleTarget,
  ip: string,
  range: { from: string; to: string },
): Promise<void> {
  const page = await signIn(b, target, 'admin');
  await visit(page, '/rules', 'table[aria-label="Rules"]');
  await checkAccessibility(page, 'rules');
  await shoot(page, target, 'rules');

  await visit(
    page,
    `/events?${new URLSearchParams({ from: range.from, to: range.to })}`,
    '[data-testid="filter-input"] .cm-content',
  );
  const input = page.getByTestId('filter-input').locator('.cm-content');
  await input.click();
  await page.keyboard.type('source.i');
  const option = page.locator('.cm-tooltip-autocomplete li', { hasText: 'source.ip' }).first();
  await option.waitFor();
  // CodeMirror ignores an accept pressed within 75 ms of the list opening (a stray Enter).
  await page.waitForTimeout(200);
  await page.keyboard.press('Enter');
  await page.keyboard.type(` == "${ip}"`);
  expect(await input.textContent()).toBe(`source.ip == "${ip}"`);
  await page.keyboard.press('Enter');
  await page.getByTestId('events-count').waitFor();
  await checkAccessibility(page, 'events');
  await shoot(page, target, 'events');

  await visit(page, '/operations', '[data-testid="readiness"]');
  await page.getByRole('heading', { name: 'Ingest queue' }).waitFor();
  await page.locator('table[aria-label="Rule runs per rule"]').waitFor();
  await page.getByTestId('coverage').waitFor();
  expect(await page.getByTestId('coverage-summary').textContent()).toMatch(/rules/);
  await checkAccessibility(page, 'health');
  await shoot(page, target, 'health');
  await page.context().close();
}

/** A viewer sees no write controls, and the API refuses the writes anyway. */
export async function viewerFlow(
  b: ConsoleBrowser,
  target: ConsoleTarget,
  incidentId: string,
): Promise<void> {
  const page = await signIn(b, target, 'viewer');
  await page.locator('table[aria-label="Incidents"]').waitFor();
  expect(await page.locator('fieldset.bulk').count()).toBe(0);
  expect(await page.locator('table[aria-label="Incidents"] input[type="checkbox"]').count()).toBe(0);
  await visit(page, `/incidents/${encodeURIComponent(incidentId)}`, '[data-testid="timeline-chart"] canvas');
  for (const label of ['Triage', 'Add a comment', 'Add exception']) {
    expect(await page.getByText(label, { exact: true }).count(), label).toBe(0);
  }
  expect(await page.locator('main button').count()).toBe(0);
  await visit(page, `/rules/${RULE}`, '[data-testid="runs"]');
  expect(await page.getByRole('button').filter({ hasNotText: 'Sign out' }).count()).toBe(0);
  expect(await page.getByTestId('rule-editor').locator('.cm-content').getAttribute('contenteditable')).toBe(
    'false',
  );
  await visit(page, '/inventory', 'table[aria-label="Endpoints"]');
  expect(await page.getByText('Upload a specification').count()).toBe(0);

  const logged = b.problems.length;
  const refused = await page.evaluate(
    async ({ id, key }) => {
      const send = (method: string, url: string, body: unknown) =>
        fetch(url, {
          method,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        }).then((r) => r.status);
      return [
        await send('PATCH', `/api/v1/incidents/${id}`, { status: 'triaged' }),
        await send('POST', `/api/v1/incidents/${id}/comments`, { text: 'x' }),
        await send('POST', '/api/v1/incidents/bulk/status', { ids: [id], status: 'resolved' }),
        await send('POST', '/api/v1/exceptions', {
          rule_id: 'x',
          entity: { type: 'ip', value: '1' },
          reason: 'xyz',
        }),
        await send('POST', '/api/v1/rules/validate', { text: 'rule x {}' }),
        await send('POST', '/api/v1/rules/x/run', {}),
      ];
    },
    { id: incidentId, key: target.keys.viewer },
  );
  expect(refused).toEqual([403, 403, 403, 403, 403, 403]);
  // The browser logs each refused request; those six are this check's own.
  await poll(() => b.problems.length - logged).toBe(6);
  const own = b.problems.splice(logged, 6);
  expect(own.every((p) => p.includes('status of 403'))).toBe(true);
  await page.context().close();
}
