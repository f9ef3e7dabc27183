/**
 * Debian's Chromium driven by playwright-core (no browser download: `.ci/run` installs the
 * `chromium` package), each launch with a fresh profile of its own. One line saying what to
 * install when it is missing.
 */
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from 'playwright-core';

export const CHROMIUM = process.env.GATEWATCH_CHROMIUM ?? '/usr/bin/chromium';

export interface ConsoleBrowser {
  browser: Browser;
  /** A new page; its console errors and CSP violations are collected in `problems`. */
  page(): Promise<Page>;
  problems: string[];
  close(): Promise<void>;
}

export async function launchBrowser(): Promise<ConsoleBrowser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(
      `no Chromium at ${CHROMIUM}: install it with \`apt-get install chromium\` (or set GATEWATCH_CHROMIUM)`,
    );
  }
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  const problems: string[] = [];
  return {
    browser,
    problems,
    async page() {
      const context = await browser.newContext({ viewport: { width: 1360, height: 900 } });
      const page = await context.newPage();
      page.on('console', (m) => {
        if (m.type() === 'error') problems.push(`console: ${m.text()}`);
      });
      page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
      return page;
    },
    async close() {
      await browser.close();
    },
  };
}
