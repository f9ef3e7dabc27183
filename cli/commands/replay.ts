/**
 * `gatewatch replay <files|dirs>` — run logs through the whole pipeline in one process with no
 * servers (embedded SQLite store, in-process evaluator), or with `--to <url>` send them to a
 * running deployment's HTTP ingest endpoint.
 */

import { rmSync } from 'node:fs';
import cliProgress from 'cli-progress';
import Table from 'cli-table3';
import type { Command } from 'commander';
import { loadConfig } from '../../core/config/load.ts';
import type { Incident } from '../../core/schema/incident.ts';
import { formatCoverage } from '../../detections/coverage.ts';
import { embeddedCoverage } from '../../embedded/coverage.ts';
import { readLines, replay } from '../../embedded/replay.ts';
import { replayInputs } from '../../embedded/replay-sources.ts';
import { applyEmbeddedRetention, formatEmbeddedRetention } from '../../embedded/retention.ts';
import { EmbeddedStore } from '../../embedded/store.ts';
import { isRemoteInput } from '../../ingest/sources/remote-url.ts';
import { formatDiagnostic, loadRuleFiles } from '../../parser/index.ts';

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
  to?: string;
  source: string;
  token?: string;
}

function parseTime(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const t = Date.parse(text);
  if (Number.isNaN(t)) throw new Error(`${flag}: "${text}" is not an ISO-8601 time`);
  return t;
}

export function incidentTable(incidents: Incident[]): string {
  const table = new Table({
    head: ['severity', 'rule', 'entity', 'window start', 'events', 'title'],
    colWidths: [10, 40, 34, 14, 8, 64],
    // Plain text when piped (no colour codes in files or CI logs).
    ...(process.stdout.isTTY ? {} : { style: { head: [], border: [] } }),
  });
  const order = { critical: 0, high: 1, medium: 2, low: 3 } as const;
  for (const i of [...incidents].sort(
    (a, b) => order[a.severity] - order[b.severity] || a.window.start.localeCompare(b.window.start),
  )) {
    const entity = Object.values(i.group)
      .filter((v) => v !== null)
      .join(' / ');
    table.push([
      i.severity,
      i.rule.id,
      entity,
      `${i.window.start.slice(5, 16).replace('T', ' ')}`,
      i.event_count,
      i.title,
    ]);
  }
  return table.toString();
}

async function sendTo(url: string, files: string[], opts: ReplayCliOptions): Promise<void> {
  const endpoint = `${url.replace(/\/$/, '')}/ingest/${encodeURIComponent(opts.source)}`;
  const token = opts.token ?? process.env.GATEWATCH_INGEST_TOKEN;
  if (!token) throw new Error('--to needs a source token: --token or GATEWATCH_INGEST_TOKEN');
  const bar =
    process.stderr.isTTY && !opts.quiet && !opts.json
      ? new cliProgress.SingleBar(
          { format: 'sending |{bar}| {value} lines | {speed} lines/s', hideCursor: true },
          cliProgress.Presets.shades_classic,
        )
      : undefined;
  bar?.start(0, 0, { speed: 0 });
  const started = performance.now();
  let sent = 0;
  let chunk: string[] = [];
  const post = async () => {
    for (let attempt = 0; ; attempt++) {
      const response = await fetch(endpoint, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-ndjson' },
        body: chunk.join('\n'),
      });
      if (response.status === 202) break;
      if ((response.status === 429 || response.status === 503) && attempt < 100) {
        const wait = Number(response.headers.get('retry-after') ?? '1') * 1000;
        await new Promise((r) => setTimeout(r, wait));
        continue;
      }
      throw new Error(`${endpoint} answered ${response.status}: ${await response.text()}`);
    }
    sent += chunk.length;
    chunk = [];
    bar?.setTotal(sent);
    bar?.update(sent, { speed: Math.round(sent / ((performance.now() - started) / 1000)) });
  };
  for (const file of files) {
    for await (const line of readLines(file)) {
      chunk.push(line);
      if (chunk.length >= 1000) await post();
    }
  }
  if (chunk.length > 0) await post();
  bar?.stop();
  const summary = { sent, seconds: (performance.now() - started) / 1000, endpoint };
  if (opts.json) console.log(JSON.stringify(summary));
  else if (!opts.quiet) console.log(`sent ${sent} lines to ${endpoint} in ${summary.seconds.toFixed(1)} s`);
}

export function register(program: Command): void {
  program
    .command('replay')
    .description(
      'Replay log files through the whole pipeline (embedded, no servers) and print the incidents.',
    )
    .argument(
      '<paths...>',
      'log files or directories, or s3://bucket/prefix, cloudwatch://log-group, kafka://brokers/topic, azblob://container/prefix',
    )
    .option('--db <file>', 'embedded store file (default: embedded.path from the configuration)')
    .option('--fresh', 'start from an empty embedded store')
    .option('--rules <paths...>', 'rule files or directories (default: detections.rulePaths)')
    .option('--since <time>', 'only events at or after this ISO-8601 time')
    .option('--until <time>', 'only events before this ISO-8601 time')
    .option('--shift-to-now', 'shift timestamps so the newest event is now (keeps the gaps)')
    .option('--speed <n>', 'max (as fast as possible) or N× real time', 'max')
    .option('--json', 'print a JSON summary and the incidents')
    .option('--quiet', 'print only the incident count')
    .option('--to <url>', 'send the files to a running deployment instead (HTTP ingest endpoint)')
    .option('--source <name>', 'source name events are attributed to', 'replay')
    .option('--token <token>', 'source token for --to (or GATEWATCH_INGEST_TOKEN)')
    .action(async (paths: string[], opts: ReplayCliOptions) => {
      const files = await replayInputs(paths, {
        since: parseTime(opts.since, '--since'),
        until: parseTime(opts.until, '--until'),
      });
      if (files.length === 0) throw new Error(`no log files under ${paths.join(', ')}`);
      if (opts.to) {
        if (files.some(isRemoteInput))
          throw new Error(
            '--to sends local files only: replay s3://, cloudwatch://, kafka:// and azblob:// URLs into the embedded store',
          );
        return sendTo(opts.to, files, opts);
      }

      const config = loadConfig({ file: program.opts().config });
      const loaded = await loadRuleFiles(opts.rules ?? config.detections.rulePaths, {
        lists: config.detections.lists,
      });
      const errors = loaded.diagnostics.filter((d) => d.severity === 'error');
      if (errors.length > 0) {
        for (const d of errors) console.error(formatDiagnostic(d));
        process.exitCode = 1;
        return;
      }
      const dbPath = opts.db ?? config.embedded.path;
      if (opts.fresh && dbPath !== ':memory:') {
        for (const suffix of ['', '-wal', '-shm']) rmSync(`${dbPath}${suffix}`, { force: true });
      }
      const store = new EmbeddedStore(dbPath);
      const interactive = process.stderr.isTTY && !opts.quiet && !opts.json;
      const bar = interactive
        ? new cliProgress.SingleBar(
            { format: 'replay |{bar}| {value} lines | {speed} lines/s | {events} events', hideCursor: true },
            cliProgress.Presets.shades_classic,
          )
        : undefined;
      const started = performance.now();
      bar?.start(0, 0, { speed: 0, events: 0 });
      try {
        const result = await replay(files, {
          config,
          store,
          rules: loaded.rules,
          source: opts.source,
          ...(opts.since ? { since: parseTime(opts.since, '--since')! } : {}),
          ...(opts.until ? { until: parseTime(opts.until, '--until')! } : {}),
          ...(opts.shiftToNow ? { shiftTo: Date.now() } : {}),
          speed: opts.speed === 'max' ? 0 : Number(opts.speed),
          onProgress: (p) => {
            bar?.setTotal(p.records);
            bar?.update(p.records, {
              speed: Math.round(p.records / ((performance.now() - started) / 1000)),
              events: p.events,
            });
          },
        });
        bar?.stop();
        const coverage = embeddedCoverage(store, loaded.rules, config);
        // The same retention as the distributed mode, measured back from the newest event.
        const retention = applyEmbeddedRetention(store, config.retention);
        const expired = Object.values(retention.deleted_documents).reduce((a, b) => a + b, 0);
        if (opts.json) {
          console.log(
            JSON.stringify({ ...result, incidents: result.incidents, coverage, retention }, null, 2),
          );
        } else if (opts.quiet) {
          console.log(String(result.incidents.length));
        } else {
          const secs = result.elapsedMs / 1000;
          console.log(
            `Replayed ${result.records} lines from ${files.length} file(s): ${result.events} events, ` +
              `${result.deadLetters} dead letters, ${result.endpoints} API endpoints discovered, ${loaded.rules.length} rules, ${secs.toFixed(1)} s ` +
              `(${Math.round(result.records / secs)} lines/s). Store: ${dbPath}`,
          );
          for (const r of result.rules) if (r.degraded) console.log(`  rule ${r.id} degraded: ${r.degraded}`);
          console.log(`\n${result.incidents.length} incident(s):`);
          if (result.incidents.length > 0) console.log(incidentTable(result.incidents));
          console.log(`\n${formatCoverage(coverage)}`);
          if (expired > 0) console.log(`\n${formatEmbeddedRetention(retention, config.retention)}`);
          const configFile = program.opts().config as string | undefined;
          console.log(
            `\nWork these incidents in the console (opens signed in with a new analyst key):\n  ${
              process.env.npm_lifecycle_event === 'demo'
                ? 'npm run demo:console'
                : `npm run gatewatch --${configFile ? ` --config ${configFile}` : ''} serve --embedded --db ${dbPath} --console-key analyst`
            }`,
          );
        }
      } finally {
        store.close();
      }
    });
}
