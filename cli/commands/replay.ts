/**
 * `gatewatch replay <files|dirs>` — run logs through the whole pipeline in one process with no
 * servers (embedded SQLite store, in-process evaluator), or with `--to <url>` send them to a
 * running deployment's HTTP ingest endpoint.
 */
import { existsSync, rmSync, statSync } from 'node:fs';
import type { Command } from 'commander';
import { DEFAULT_EMBEDDED_PATH } from '../../core/config/schema.ts';
import { formatCoverage } from '../../detections/coverage.ts';
import { embeddedCoverage } from '../../embedded/coverage.ts';
import { type DeadLetterReason, replay } from '../../embedded/replay.ts';
import { findReplayFiles } from '../../embedded/replay-files.ts';
import { chunksOf } from '../../embedded/replay-input.ts';
import { replayInputs } from '../../embedded/replay-sources.ts';
import { applyEmbeddedRetention, formatEmbeddedRetention } from '../../embedded/retention.ts';
import { EmbeddedStore, type StoreContents } from '../../embedded/store.ts';
import { isRemoteInput } from '../../ingest/sources/remote-url.ts';
import { formatDiagnostic, loadRuleFiles } from '../../parser/index.ts';
import { configOf } from '../config.ts';
import { EXIT, UserError } from '../errors.ts';
import { incidentTable } from '../incident-table.ts';
import { startProgress } from '../progress.ts';

interface ReplayCliOptions {
  db?: string;
  fresh?: boolean;
  rules?: string[];
  since?: string;
  until?: string;
  shiftToNow?: boolean;
  speed: string;
  json?: boolean;
  quiet?: boolean;
  progress?: boolean;
  to?: string;
  source: string;
  token?: string;
}

function parseTime(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (Number.isNaN(t))
    throw new UserError(`${flag}: "${text}" is not an ISO-8601 time (e.g. 2024-05-14T13:00:00Z)`);
  return t;
}

/**
 * What to replay, in the order given: local files (every one left out reported on stderr, with
 * its reason) and the objects, log groups or topics remote URLs name (s3://, cloudwatch://,
 * kafka://, azblob://: embedded/replay-sources.ts).
 */
async function inputFiles(
  paths: string[],
  quiet: boolean,
  range: { since?: number | undefined; until?: number | undefined },
): Promise<string[]> {
  const local = findReplayFiles(paths.filter((p) => !isRemoteInput(p)));
  if (local.missing.length > 0)
    throw new UserError(
      `${local.missing.join(', ')}: no such file or directory (give log files or directories)`,
    );
  if (!quiet) for (const s of local.skipped) console.error(`skipped ${s.path}: ${s.reason}`);
  const taken = new Set(local.files.map((f) => f.path));
  const inputs: string[] = [];
  for (const p of paths) {
    if (!isRemoteInput(p)) {
      const found = findReplayFiles([p]).files.map((f) => f.path);
      inputs.push(...found.filter((f) => taken.delete(f)));
      continue;
    }
    try {
      inputs.push(...(await replayInputs([p], range)));
    } catch (err) {
      if ((err as Error).message.startsWith('nothing to read under'))
        throw new UserError(`${(err as Error).message}: check the URL (and --since/--until)`);
      throw err;
    }
  }
  if (inputs.length === 0) {
    const why =
      local.skipped.length > 0 ? ` (${local.skipped.length} file(s) skipped, reasons above)` : ' (empty)';
    throw new UserError(
      `no log files to replay in ${paths.join(', ')}${why}: give the log files or the directory that holds them`,
    );
  }
  return inputs;
}

/** "8952 events, 26 incidents (3 triaged or commented), 2 API keys" — what a store file holds. */
export function describeContents(c: StoreContents): string {
  const parts = [`${c.events} events`, `${c.incidents} incidents`];
  if (c.triagedIncidents > 0) parts[1] += ` (${c.triagedIncidents} triaged or commented)`;
  if (c.deadLetters > 0) parts.push(`${c.deadLetters} dead letters`);
  if (c.apiKeys > 0) parts.push(`${c.apiKeys} API key(s)`);
  if (c.apiRules > 0) parts.push(`${c.apiRules} rule(s) managed through the API`);
  return parts.join(', ');
}

/** `--fresh`: delete the store file, saying first what it held. */
function deleteStore(path: string, quiet: boolean): void {
  if (path === ':memory:' || !existsSync(path)) return;
  const store = new EmbeddedStore(path);
  let contents: StoreContents;
  try {
    contents = store.contents();
  } finally {
    store.close();
  }
  for (const suffix of ['', '-wal', '-shm']) rmSync(`${path}${suffix}`, { force: true });
  if (!quiet) console.error(`--fresh: deleted ${path}, which held ${describeContents(contents)}`);
}

/** The dead letters of a replay by reason, with a few examples each. */
export function deadLetterSummary(reasons: DeadLetterReason[], total: number, listCommand: string): string {
  const lines = [`${total} dead letter(s): records that did not become events, by reason:`];
  const shown = reasons.slice(0, 8);
  for (const r of shown) {
    lines.push(`  ${String(r.count).padStart(7)} × ${r.reason}`);
    for (const e of r.examples) lines.push(`            ${e.length > 140 ? `${e.slice(0, 139)}…` : e}`);
  }
  if (reasons.length > shown.length) lines.push(`  … and ${reasons.length - shown.length} more reason(s)`);
  lines.push(`  all of them: ${listCommand}`);
  return lines.join('\n');
}

/** What to run next against the file just written (no --db when it is the default file). */
export function nextSteps(dbPath: string): string {
  const db = dbPath === DEFAULT_EMBEDDED_PATH ? '' : ` --db ${dbPath}`;
  const browser =
    process.env.npm_lifecycle_event === 'demo'
      ? 'npm run demo:console'
      : `npx gatewatch serve --embedded${db} --console-key analyst`;
  const steps = [
    [
      `npx gatewatch incidents list --embedded${db}`,
      'the incidents (then incidents show <id>, triage, comment)',
    ],
    [`npx gatewatch serve --embedded${db}`, 'the REST API over the same file'],
    [browser, 'the console in a browser, signed in with a new analyst key'],
    [`npx gatewatch keys create --embedded${db} --role analyst`, 'an API key for it'],
  ];
  const width = Math.max(...steps.map(([c]) => c!.length));
  return [
    `Next, with the incidents in ${dbPath}:`,
    ...steps.map(([c, what]) => `  ${c!.padEnd(width)}   ${what}`),
  ].join('\n');
}

async function sendTo(url: string, files: string[], opts: ReplayCliOptions): Promise<void> {
  const endpoint = `${url.replace(/\/$/, '')}/ingest/${encodeURIComponent(opts.source)}`;
  const token = opts.token ?? process.env.GATEWATCH_INGEST_TOKEN;
  if (!token) throw new UserError('--to needs the source token: --token <token> or GATEWATCH_INGEST_TOKEN');
  const totalBytes = files.reduce((sum, f) => sum + statSync(f).size, 0);
  const progress = startProgress('sending', {
    bar: process.stderr.isTTY && !opts.quiet && !opts.json,
    lines: opts.progress === true && !process.stderr.isTTY,
  });
  const started = performance.now();
  let sent = 0;
  let bytes = 0;
  let chunk: string[] = [];
  const post = async () => {
    for (let attempt = 0; ; attempt++) {
      let response: Response;
      try {
        response = await fetch(endpoint, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
          body: chunk.join('\n'),
        });
      } catch (err) {
        throw new UserError(
          `cannot send to ${endpoint}: ${(err as Error & { cause?: Error }).cause?.message ?? (err as Error).message} (is the ingest endpoint running? check --to)`,
          EXIT.unavailable,
        );
      }
      if (response.status === 202) break;
      if ((response.status === 429 || response.status === 503) && attempt < 100) {
        const wait = Number(response.headers.get('retry-after') ?? '1') * 1000;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      const body = (await response.text()).slice(0, 300);
      if (response.status === 401 || response.status === 403)
        throw new UserError(`${endpoint} refused the token (${response.status}): check --token and --source`);
      throw new UserError(`${endpoint} answered ${response.status}: ${body}`, EXIT.unavailable);
    }
    sent += chunk.length;
    chunk = [];
    progress.update({ bytes, totalBytes, events: sent });
  };
  for await (const batch of chunksOf(files)) {
    bytes = batch.bytes;
    if ('unreadable' in batch) continue; // local files only (remote inputs are refused above)
    for (const line of batch.lines) {
      chunk.push(line);
      if (chunk.length >= 1000) await post();
    }
  }
  if (chunk.length > 0) await post();
  progress.stop();
  const summary = { sent, seconds: (performance.now() - started) / 1000, endpoint };
  if (opts.json) console.log(JSON.stringify(summary));
  else if (!opts.quiet) console.log(`sent ${sent} lines to ${endpoint} in ${summary.seconds.toFixed(1)} s`);
}

/** `replay <paths...>`: the whole pipeline in this process, or `--to` a running deployment. */
export async function replayCommand(paths: string[], opts: ReplayCliOptions, cmd: Command): Promise<void> {
  const speed = opts.speed === 'max' ? 0 : Number(opts.speed);
  if (Number.isNaN(speed) || speed < 0)
    throw new UserError(`--speed: "${opts.speed}" is neither max nor a positive number (N× real time)`);
  const since = parseTime(opts.since, '--since');
  const until = parseTime(opts.until, '--until');
  const files = await inputFiles(paths, opts.quiet === true, { since, until });
  if (opts.to) {
    if (files.some(isRemoteInput))
      throw new UserError(
        '--to sends local files only: replay s3://, cloudwatch://, kafka:// and azblob:// URLs into the embedded store',
      );
    return sendTo(opts.to, files, opts);
  }

  const config = configOf(cmd);
  const loaded = await loadRuleFiles(opts.rules ?? config.detections.rulePaths, {
    lists: config.detections.lists,
  });
  const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
  if (errors.length > 0) {
    for (const d of errors) console.error(formatDiagnostic(d));
    throw new UserError(
      `${errors.length} error(s) in the rule files (above): fix them, or choose rules with --rules`,
      EXIT.failure,
    );
  }
  const dbPath = opts.db ?? config.embedded.path;
  if (opts.fresh) deleteStore(dbPath, opts.quiet === true || opts.json === true);
  const store = new EmbeddedStore(dbPath);
  const before = store.contents();
  const progress = startProgress('replay', {
    bar: process.stderr.isTTY && !opts.quiet && !opts.json,
    lines: opts.progress === true && !process.stderr.isTTY,
  });
  try {
    const result = await replay(files, {
      config,
      store,
      rules: loaded.rules,
      source: opts.source,
      ...(since !== undefined ? { since } : {}),
      ...(until !== undefined ? { until } : {}),
      ...(opts.shiftToNow ? { shiftTo: Date.now() } : {}),
      speed,
      onProgress: (p) => progress.update(p),
    });
    progress.stop();
    const coverage = embeddedCoverage(store, loaded.rules, config);
    // The same retention as the distributed mode, measured back from the newest event.
    const retention = applyEmbeddedRetention(store, config.retention);
    const expired = Object.values(retention.deleted_documents).reduce((a, b) => a + b, 0);
    if (opts.json) {
      console.log(JSON.stringify({ ...result, coverage, retention, store: dbPath }, null, 2));
    } else if (opts.quiet) {
      console.log(String(result.incidents.length));
    } else {
      const secs = result.elapsedMs / 1000;
      console.log(
        `Replayed ${result.records} lines from ${files.length} file(s): ${result.events} events, ` +
          `${result.deadLetters} dead letters, ${result.endpoints} API endpoints discovered, ${loaded.rules.length} rules, ${secs.toFixed(1)} s ` +
          `(${Math.round(result.records / secs)} lines/s). Store: ${dbPath}`,
      );
      if (before.events > 0)
        console.log(
          `  the store already held ${describeContents(before)} from earlier replays: ${result.newEvents} events were new, and the rules ran over all of them (--fresh starts from an empty store)`,
        );
      if (result.deadLetters > 0) {
        const db = dbPath === DEFAULT_EMBEDDED_PATH ? '' : ` --db ${dbPath}`;
        console.log(
          deadLetterSummary(
            result.deadLetterReasons,
            result.deadLetters,
            `npx gatewatch ingest dead-letters list --embedded${db}`,
          ),
        );
      }
      for (const r of result.rules) if (r.degraded) console.log(`  rule ${r.id} degraded: ${r.degraded}`);
      console.log(`\n${result.incidents.length} incident(s):`);
      if (result.incidents.length > 0) console.log(incidentTable(result.incidents));
      console.log(`\n${formatCoverage(coverage)}`);
      if (expired > 0) console.log(`\n${formatEmbeddedRetention(retention, config.retention)}`);
      if (dbPath !== ':memory:') console.log(`\n${nextSteps(dbPath)}`);
    }
  } finally {
    progress.stop();
    store.close();
  }
}
