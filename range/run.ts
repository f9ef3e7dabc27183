/**
 * The live-fire range: `runRange({ seed, durationMs, outDir, lanes? })` and the CLI
 * `npm run range -- --seed N --minutes M --out DIR`.
 *
 * Starts the test API and the real gateways on free loopback ports, runs seeded benign traffic
 * for the whole duration with the attacks (real tools and scripted clients) interleaved at seeded
 * times, stops every process, and writes OUTDIR/: the gateways' logs, `labels.jsonl` (ground
 * truth from what was sent), `gatewatch.yaml` and `manifest.json`. Installs nothing: a missing
 * Debian package ends the run with one line naming it.
 */
import { randomBytes } from 'node:crypto';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { Rng } from '../samples/generator/prng.ts';
import { type RunContext, running } from './actors.ts';
import { SCRIPTED_ATTACKS } from './attacks/scripted.ts';
import { buildShim, TOOL_ATTACKS, type ToolEnv, type ToolRun, upstreamVersion } from './attacks/tools.ts';
import { runBenign } from './benign.ts';
import { formatScores, type ModeScore, scoreDistributed, scoreReplay } from './evaluate.ts';
import {
  choosePorts,
  LANES,
  type Lane,
  LOG_FILES,
  type Ports,
  startGateways,
  waitHealthy,
} from './gateways.ts';
import { type Label, type LabelClass, type LabelDraft, toLabel } from './labels.ts';
import { checkPrerequisites, ProcessRegistry, packageVersion, RangeSetupError, sleep } from './processes.ts';
import { type Activity, TrafficClient } from './traffic.ts';
import { buildWorld } from './world.ts';

const HERE = dirname(fileURLToPath(import.meta.url));

/** Shortest run: every tool attack needs its time slot. */
export const MIN_DURATION_MS = 100_000;
export const MAX_DURATION_MS = 4 * 60 * 60_000;

export interface RangeOptions {
  seed: number;
  /** Length of the traffic phase. */
  durationMs: number;
  outDir: string;
  /** Lanes to run (default all); attacks aimed at a lane that is off are skipped. */
  lanes?: readonly Lane[];
  /** Keep the scratch directory (configs, tool outputs, nginx error log) and print its path. */
  keepWork?: boolean;
  /** Progress lines (default: stderr). */
  log?: (line: string) => void;
}

export interface FileSummary {
  file: string;
  format: string;
  lines: number;
  bytes: number;
}

export interface Manifest {
  seed: number;
  durationMs: number;
  startedAt: string;
  endedAt: string;
  elapsedMs: number;
  lanes: Partial<Record<Lane, number>>;
  versions: Record<string, string>;
  files: FileSummary[];
  labels: Partial<Record<LabelClass, number>>;
  traffic: { requests: number; failed: number; byLane: Partial<Record<Lane, number>> };
  toolRuns: ToolRun[];
  skipped: string[];
}

export interface RangeResult {
  outDir: string;
  labels: Label[];
  manifest: Manifest;
  /** The scratch directory, when kept. */
  workDir?: string;
  /** Where the scratch directory was (removed unless kept): every gateway and tool names it in its arguments. */
  scratchDir: string;
  /** Every process the run started (all stopped by the time it returns). */
  processes: { name: string; pid: number; command: string }[];
}

/** Formats Gatewatch reads each log with. */
export const LOG_FORMATS: Record<keyof typeof LOG_FILES, string> = {
  nginxJson: 'nginx.json',
  nginxCombined: 'nginx.access',
  modsecAudit: 'modsecurity.audit',
  haproxy: 'haproxy.http',
};

function versions(): Record<string, string> {
  const pkgs = [
    'nginx',
    'libnginx-mod-http-modsecurity',
    'libmodsecurity3',
    'modsecurity-crs',
    'haproxy',
    'hydra',
    'ffuf',
    'wfuzz',
    'sqlmap',
    'siege',
  ];
  const out: Record<string, string> = {};
  for (const p of pkgs) out[p] = packageVersion(p);
  out.node = process.versions.node;
  return out;
}

/** Requests per source address within a time span, per lane, read back from the gateway logs. */
function logIndex(outDir: string, ports: Ports): Map<Lane, { ip: string; at: number }[]> {
  const byLane = new Map<Lane, { ip: string; at: number }[]>();
  const portLane = new Map<string, Lane>();
  for (const [lane, port] of Object.entries(ports.lanes)) portLane.set(String(port), lane as Lane);
  const json = join(outDir, LOG_FILES.nginxJson);
  if (existsSync(json)) {
    for (const line of readFileSync(json, 'utf8').split('\n')) {
      if (line === '') continue;
      const o = JSON.parse(line) as { remote_addr: string; msec: string; server_port: string };
      const lane = portLane.get(o.server_port);
      if (lane === undefined) continue;
      let l = byLane.get(lane);
      if (l === undefined) {
        l = [];
        byLane.set(lane, l);
      }
      l.push({ ip: o.remote_addr, at: Math.round(Number(o.msec) * 1000) });
    }
  }
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  // The detection-only lane logs in the combined format: whole seconds, taken as their end so
  // a span read from it is never shorter than the requests it holds.
  const combined = join(outDir, LOG_FILES.nginxCombined);
  if (existsSync(combined)) {
    const l: { ip: string; at: number }[] = [];
    for (const line of readFileSync(combined, 'utf8').split('\n')) {
      const m = /^(\S+) \S+ \S+ \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d) ([+-])(\d\d)(\d\d)\]/.exec(
        line,
      );
      if (!m) continue;
      const offset = (m[8] === '-' ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10])) * 60_000;
      const at =
        Date.UTC(
          Number(m[4]),
          months.indexOf(m[3]!),
          Number(m[2]),
          Number(m[5]),
          Number(m[6]),
          Number(m[7]),
        ) -
        offset +
        999;
      l.push({ ip: m[1]!, at });
    }
    byLane.set('waf-detect', l);
  }
  const hap = join(outDir, LOG_FILES.haproxy);
  if (existsSync(hap)) {
    const l: { ip: string; at: number }[] = [];
    for (const line of readFileSync(hap, 'utf8').split('\n')) {
      const m = /^(\d+\.\d+\.\d+\.\d+):\d+ \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d)\.(\d{3})\]/.exec(
        line,
      );
      if (!m) continue;
      l.push({
        ip: m[1]!,
        at: Date.UTC(
          Number(m[4]),
          months.indexOf(m[3]!),
          Number(m[2]),
          Number(m[5]),
          Number(m[6]),
          Number(m[7]),
          Number(m[8]),
        ),
      });
    }
    byLane.set('haproxy', l);
  }
  return byLane;
}

function countLines(path: string): number {
  if (!existsSync(path)) return 0;
  let n = 0;
  for (const line of readFileSync(path, 'utf8').split('\n')) if (line !== '') n++;
  return n;
}

export function gatewatchConfig(outDir: string): string {
  const src = (name: string, format: string, file: string, extra = '') =>
    `    - name: ${name}\n      type: file\n      format: ${format}\n      paths:\n        - ${JSON.stringify(join(outDir, file))}\n${extra}`;
  // HAProxy captures are positional: name them as haproxy.cfg declares them
  const captures =
    '      fieldMap:\n' +
    '        capture.request.0: "@header:host"\n' +
    '        capture.request.1: user_agent.original\n' +
    '        capture.request.2: "@header:x-api-key"\n' +
    '        capture.request.3: "@header:authorization"\n';
  return `# Gatewatch configuration for this live-fire range output (written by range/run.ts).
# Replay:  node cli/gatewatch.ts --config ${join(outDir, 'gatewatch.yaml')} replay ${outDir} --fresh --db .cache/range.sqlite
# Score:   node cli/gatewatch.ts --config ${join(outDir, 'gatewatch.yaml')} eval ${outDir}
# Ingest:  the four file sources below, each with its fixed format.
#
# Every client address is in 127.0.0.0/8 and there is no GeoIP/ASN database: networks are
# /24 prefixes. nginx already resolved X-Forwarded-For (realip module, trusted 127.0.0.0/8) into
# remote_addr, so no trusted proxies are configured here: the logged client is the client.
# The range's clients are outside the API's own network: only the gateways' own address
# (127.0.0.1, the hop to the API) is internal, instead of the rule pack's default 127.0.0.0/8.
detections:
  lists:
    internal_networks: ["127.0.0.1/32", "::1/128"]
ingest:
  # this output's own key: the distributed processes refuse the public example values
  fingerprintSecret: ${randomBytes(24).toString('base64url')}
  trustedProxies: []
  sources:
${src('range-nginx-json', LOG_FORMATS.nginxJson, LOG_FILES.nginxJson)}${src('range-nginx-combined', LOG_FORMATS.nginxCombined, LOG_FILES.nginxCombined)}${src('range-modsecurity', LOG_FORMATS.modsecAudit, LOG_FILES.modsecAudit)}${src('range-haproxy', LOG_FORMATS.haproxy, LOG_FILES.haproxy, captures)}`;
}

/** Benign activities become labels: notable benign actors, and partners sending keys in URLs. */
function activityDraft(a: Activity): LabelDraft | undefined {
  if (a.requests === 0) return undefined;
  const base = {
    ips: a.ips,
    first: a.first,
    last: a.last,
    requests: a.requests,
    users: a.users,
    apiKeys: a.apiKeys,
    routes: a.routes,
    userAgents: a.userAgents,
    tool: 'range benign traffic',
  };
  if (a.id.startsWith('benign-key-in-query-')) {
    const name = a.id.slice('benign-key-in-query-'.length);
    return {
      ...base,
      id: a.id,
      class: 'credential_in_url',
      description: `Benign API client ${name} sends its own key as ?api_key= on every call, as the API allows: not an attacker, but the key is exposed in every log and proxy on the way (a posture finding).`,
    };
  }
  const descriptions: Record<string, string> = {
    'benign-nat-office':
      'An office behind one NAT address: many different people log in (form body) over the run, mostly at the first try, a few after one or two typos.',
    'benign-mobile':
      'Mobile app users on carrier-grade NAT: their address changes between requests; they log in (OAuth password grant or JSON) and use the API with their token.',
    'benign-basic-auth-staff':
      'Staff reading the basic-auth reports: the browser asks without credentials first (401), some people mistype their password once or twice, then succeed.',
  };
  const exporter = /^benign-exporter-(\d+)$/.exec(a.id);
  const description = exporter
    ? `Batch exporter ${exporter[1]}: pages through the whole product listing with its own key at a steady pace (one page every ~1.5 s), on a schedule.`
    : descriptions[a.id];
  if (description === undefined) return undefined;
  return { ...base, id: a.id, class: 'benign', description };
}

export async function runRange(opts: RangeOptions): Promise<RangeResult> {
  const log = opts.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  if (!Number.isSafeInteger(opts.seed)) throw new RangeSetupError('range: --seed must be an integer');
  if (!(opts.durationMs >= MIN_DURATION_MS && opts.durationMs <= MAX_DURATION_MS)) {
    throw new RangeSetupError(
      `range: the traffic must last between ${MIN_DURATION_MS / 1000} s and ${MAX_DURATION_MS / 3_600_000} h (got ${Math.round(opts.durationMs / 1000)} s)`,
    );
  }
  const lanes = opts.lanes ?? LANES;
  for (const l of lanes)
    if (!LANES.includes(l))
      throw new RangeSetupError(`range: unknown lane "${l}"; lanes: ${LANES.join(', ')}`);
  const outDir = resolve(opts.outDir);
  if (existsSync(outDir) && readdirSync(outDir).length > 0)
    throw new RangeSetupError(`range: output directory ${outDir} is not empty; choose a new or empty one`);
  checkPrerequisites();
  mkdirSync(outDir, { recursive: true });

  const startedAt = Date.now();
  const work = mkdtempSync(join(tmpdir(), 'gatewatch-range-'));
  chmodSync(work, 0o755);
  const reg = new ProcessRegistry();
  // interrupted (Ctrl-C, SIGTERM): the gateways' logs so far stay in OUTDIR, the scratch goes
  if (!opts.keepWork) reg.atExit(() => rmSync(work, { recursive: true, force: true }));
  const world = buildWorld(opts.seed);
  const rng = new Rng(opts.seed).fork('range');
  let client: TrafficClient | undefined;
  const toolRuns: ToolRun[] = [];
  const skipped: string[] = [];
  try {
    const vers = versions();
    const shim = buildShim(work, join(HERE, 'shim/srcbind.c'));
    const ports = await choosePorts(lanes);
    const api = reg.spawn(
      'api',
      process.execPath,
      [join(HERE, 'api/main.ts'), '--seed', String(opts.seed), '--port', String(ports.api)],
      {
        stdout: join(work, 'api.stdout.txt'),
        stderr: join(work, 'api.stderr.txt'),
      },
    );
    await waitHealthy(ports.api, 'the test API');
    const gateways = await startGateways(reg, work, outDir, ports);
    log(
      `range: API 127.0.0.1:${ports.api}; ${Object.entries(ports.lanes)
        .map(([l, p]) => `${l} 127.0.0.1:${p}`)
        .join(', ')}; traffic for ${Math.round(opts.durationMs / 1000)} s (seed ${opts.seed})`,
    );

    client = new TrafficClient(ports);
    const abort = new AbortController();
    const t0 = Date.now();
    const ctx: RunContext = {
      world,
      client,
      t0,
      deadline: t0 + opts.durationMs,
      signal: abort.signal,
      activities: new Map(),
    };
    // a hard stop for anything still running well after the traffic ends (a hung tool)
    const hardStop = setTimeout(() => abort.abort(), opts.durationMs + 20_000);
    const env: ToolEnv = {
      reg,
      work,
      shim,
      ports,
      versions: Object.fromEntries(
        ['hydra', 'ffuf', 'wfuzz', 'sqlmap', 'siege'].map((t) => [t, upstreamVersion(vers[t]!)]),
      ),
      runs: toolRuns,
      durationMs: opts.durationMs,
    };
    const drafts: LabelDraft[] = [];
    const fromTools = new Set<string>();

    // tool attacks: one at a time (2 shared cores), in a seeded order, spread over 6 %–88 % of the run
    const laneOn = (a: { id: string; lane: Lane }) => {
      if (ports.lanes[a.lane] !== undefined) return true;
      skipped.push(`${a.id} (lane ${a.lane} off)`);
      return false;
    };
    const toolPlan = rng.fork('tools').shuffle(TOOL_ATTACKS.filter(laneOn));
    const windowEnd = t0 + opts.durationMs * 0.88;
    const gaps = toolPlan.map(() => 0.2 + rng.next());
    const toolsDone = (async () => {
      for (const [i, attack] of toolPlan.entries()) {
        // spread what is left of the window over the attacks still to run, by seeded shares
        const base = Math.max(Date.now(), t0 + opts.durationMs * 0.06);
        const rest = toolPlan.slice(i);
        const restEstimate = rest.reduce((s, a) => s + a.estimateMs(opts.durationMs), 0);
        const restGaps = gaps.slice(i).reduce((s, g) => s + g, 0);
        const slack = Math.max(0, windowEnd - base - restEstimate);
        await sleep(base + (slack * gaps[i]!) / restGaps - Date.now(), abort.signal);
        if (!running(ctx)) {
          skipped.push(`${attack.id} (no time left)`);
          continue;
        }
        log(`range: ${attack.id} on ${attack.lane} at +${Math.round((Date.now() - t0) / 1000)} s`);
        const got = await attack.run(ctx, env, rng.fork(attack.id));
        for (const d of got) {
          drafts.push(d);
          fromTools.add(d.id);
        }
      }
    })();
    const scriptedDone = Promise.all(
      SCRIPTED_ATTACKS.filter(laneOn).map(async (a) => {
        const r = rng.fork(a.id);
        const { startAt, spanMs } = a.plan(opts.durationMs, r);
        const got = await a.run(ctx, r, startAt, spanMs);
        drafts.push(...got);
      }),
    );
    await Promise.all([runBenign(ctx, rng.fork('benign')), toolsDone, scriptedDone]);
    clearTimeout(hardStop);
    const trafficEnd = Date.now();
    log(
      `range: traffic done after ${Math.round((trafficEnd - t0) / 1000)} s, ${client.sent} requests from the range's clients; stopping gateways`,
    );
    client.close();

    // stop the gateways first (their logs are complete once they exit), then the API
    for (const g of gateways) await reg.stop(g, 'SIGTERM', 10_000);
    await reg.stop(api);

    // benign activities → labels
    for (const a of ctx.activities.values()) {
      const d = activityDraft(a);
      if (d !== undefined) drafts.push(d);
    }
    // tool runs: their requests are the lines of their addresses (theirs alone) the gateway of
    // their lane logged while they ran; the last of them ends the label
    const index = logIndex(outDir, ports);
    const labels: Label[] = [];
    for (const d of drafts) {
      let requests = d.requests ?? 0;
      if (fromTools.has(d.id) && d.window !== undefined) {
        const lane = toolPlan.find((t) => t.id === d.id)!.lane;
        const { from, to } = d.window;
        const seen = (index.get(lane) ?? []).filter(
          (e) => d.ips.has(e.ip) && e.at >= from - 1000 && e.at <= to + 1000,
        );
        requests = seen.length;
        for (const e of seen) {
          d.first = Math.min(d.first, e.at);
          d.last = Math.max(d.last, e.at);
        }
      }
      if (d.ips.size === 0) {
        skipped.push(`${d.id} (no request was sent)`);
        continue;
      }
      labels.push(toLabel(d, requests));
    }
    labels.sort((a, b) => a.start.localeCompare(b.start) || a.id.localeCompare(b.id));
    writeFileSync(join(outDir, 'labels.jsonl'), labels.map((l) => JSON.stringify(l)).join('\n') + '\n');
    writeFileSync(join(outDir, 'gatewatch.yaml'), gatewatchConfig(outDir));

    const files: FileSummary[] = [];
    for (const [k, f] of Object.entries(LOG_FILES) as [keyof typeof LOG_FILES, string][]) {
      const path = join(outDir, f);
      if (!existsSync(path)) continue;
      files.push({ file: f, format: LOG_FORMATS[k], lines: countLines(path), bytes: statSync(path).size });
    }
    const byClass: Partial<Record<LabelClass, number>> = {};
    for (const l of labels) byClass[l.class] = (byClass[l.class] ?? 0) + 1;
    const endedAt = Date.now();
    const manifest: Manifest = {
      seed: opts.seed,
      durationMs: opts.durationMs,
      startedAt: new Date(startedAt).toISOString(),
      endedAt: new Date(endedAt).toISOString(),
      elapsedMs: endedAt - startedAt,
      lanes: ports.lanes,
      versions: {
        nginx: vers.nginx!,
        modsecurity: vers.libmodsecurity3!,
        'modsecurity-nginx': vers['libnginx-mod-http-modsecurity']!,
        crs: vers['modsecurity-crs']!,
        haproxy: vers.haproxy!,
        hydra: vers.hydra!,
        ffuf: vers.ffuf!,
        wfuzz: vers.wfuzz!,
        sqlmap: vers.sqlmap!,
        siege: vers.siege!,
        node: vers.node!,
      },
      files,
      labels: byClass,
      traffic: { requests: client.sent, failed: client.failed, byLane: Object.fromEntries(client.byLane) },
      toolRuns,
      skipped,
    };
    writeFileSync(join(outDir, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
    log(
      `range: wrote ${outDir} (${files.map((f) => `${f.file} ${f.lines}`).join(', ')}; ${labels.length} labels) in ${Math.round((endedAt - startedAt) / 1000)} s`,
    );
    return {
      outDir,
      labels,
      manifest,
      processes: reg.history,
      scratchDir: work,
      ...(opts.keepWork ? { workDir: work } : {}),
    };
  } finally {
    client?.close();
    await reg.stopAll();
    reg.dispose();
    if (opts.keepWork) log(`range: work directory kept: ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

function intArg(name: string) {
  return (v: string) => {
    if (!/^-?\d+$/.test(v)) throw new InvalidArgumentError(`${name} must be an integer`);
    return Number(v);
  };
}

export async function main(argv: string[]): Promise<number> {
  const program = new Command()
    .name('npm run range --')
    .description(
      'Live-fire range: real gateways (nginx + ModSecurity CRS, HAProxy) and real attack tools on loopback; writes logs and ground-truth labels, then scores Gatewatch on them (replay, and the distributed pipeline on Elasticsearch and Redis).',
    )
    .requiredOption(
      '--out <dir>',
      'output directory (new or empty); with several seeds, one seed-N directory each',
    )
    .option('--seed <n>', 'seed of the traffic plan', intArg('--seed'), 1)
    .option('--seeds <list>', 'several seeds, comma-separated (e.g. 1,2,3): one range each, one table')
    .option(
      '--minutes <m>',
      'minutes of traffic',
      (v) => {
        const n = Number(v);
        if (!Number.isFinite(n) || n <= 0)
          throw new InvalidArgumentError('--minutes must be a positive number');
        return n;
      },
      15,
    )
    .option('--lanes <list>', `comma-separated lanes to run (${LANES.join(', ')})`)
    .option('--keep-work', 'keep the scratch directory (configs, tool outputs, nginx error log)')
    .option('--no-score', 'only write the logs and labels')
    .option(
      '--modes <list>',
      'how to score: replay (embedded), distributed (file sources → Redis → Elasticsearch; ELASTICSEARCH_URL and REDIS_URL, else started locally like the tests do)',
      'replay,distributed',
    )
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  try {
    program.parse(argv, { from: 'user' });
  } catch (e) {
    const code = (e as { exitCode?: number }).exitCode;
    return code === 0 ? 0 : 2;
  }
  const o = program.opts<{
    out: string;
    seed: number;
    seeds?: string;
    minutes: number;
    lanes?: string;
    keepWork?: boolean;
    score: boolean;
    modes: string;
  }>();
  const seeds = o.seeds ? o.seeds.split(',').map((x) => intArg('--seeds')(x.trim())) : [o.seed];
  const modes = o.modes.split(',').map((m) => m.trim());
  for (const m of modes)
    if (m !== 'replay' && m !== 'distributed') {
      process.stderr.write(`range: unknown mode ${m}: use replay, distributed or both\n`);
      return 2;
    }
  const stop: (() => Promise<void>)[] = [];
  try {
    const runs: { seed: number; scores: ModeScore[] }[] = [];
    let servers: { elasticsearchUrl: string; redisUrl: string } | undefined;
    for (const seed of seeds) {
      const outDir = seeds.length > 1 ? join(o.out, `seed-${seed}`) : o.out;
      await runRange({
        seed,
        durationMs: Math.round(o.minutes * 60_000),
        outDir,
        ...(o.lanes ? { lanes: o.lanes.split(',').map((s) => s.trim()) as Lane[] } : {}),
        ...(o.keepWork ? { keepWork: true } : {}),
      });
      if (!o.score) continue;
      const scores: ModeScore[] = [];
      if (modes.includes('replay')) scores.push(await scoreReplay(outDir));
      if (modes.includes('distributed')) {
        servers ??= await rangeServers(stop);
        scores.push(await scoreDistributed(outDir, { ...servers, prefix: `range-${seed}-${Date.now()}` }));
      }
      runs.push({ seed, scores });
    }
    if (runs.length > 0) {
      process.stdout.write(`${formatScores(runs)}\n`);
      const all = runs.flatMap((r) => r.scores);
      const minRecall = Math.min(...all.map((s) => s.classes.minClassRecall));
      const minPrecision = Math.min(...all.map((s) => s.classes.precision));
      process.stdout.write(
        `\nTargets (recall >= 0.9 per attack class, precision >= 0.9): lowest class recall ${minRecall.toFixed(3)}, lowest precision ${minPrecision.toFixed(3)} — ${minRecall >= 0.9 && minPrecision >= 0.9 ? 'met' : 'NOT met'}\n`,
      );
    }
    return 0;
  } catch (e) {
    if (e instanceof RangeSetupError) {
      process.stderr.write(`${e.message}\n`);
      return 1;
    }
    process.stderr.write(`range: failed: ${(e as Error).message.split('\n')[0]}\n`);
    return 1;
  } finally {
    for (const s of stop) await s().catch(() => undefined);
  }
}

/** Elasticsearch and Redis for scoring: from the environment, else started as the tests start them. */
async function rangeServers(
  stop: (() => Promise<void>)[],
): Promise<{ elasticsearchUrl: string; redisUrl: string }> {
  let elasticsearchUrl = process.env.ELASTICSEARCH_URL;
  let redisUrl = process.env.REDIS_URL;
  if (!redisUrl) {
    const { startRedisServer } = await import('../test/harness/redis.ts');
    const redis = await startRedisServer();
    stop.push(() => redis.dispose());
    redisUrl = redis.url;
  }
  if (!elasticsearchUrl) {
    const { startElasticsearch } = await import('../test/harness/elasticsearch.ts');
    process.stderr.write(
      'range: starting Elasticsearch for the distributed scoring (ELASTICSEARCH_URL to use your own)\n',
    );
    const es = await startElasticsearch();
    stop.push(() => es.dispose());
    elasticsearchUrl = es.url;
  }
  return { elasticsearchUrl, redisUrl };
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then((code) => process.exit(code));
}
