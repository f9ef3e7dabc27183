/**
 * A short live-fire range (2.5 minutes of traffic, seeded) end to end: real nginx + ModSecurity
 * + CRS and HAProxy, the real attack tools, then the output checked against itself — every log
 * parsed by Gatewatch without a dead letter, every label's addresses in the logs inside its span,
 * the WAF's blocks and the tamper's bypass, the takeover's success — and nothing left running.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../core/config/load.ts';
import type { GatewatchEvent } from '../core/schema/event.ts';
import { createNormalizeContext, normalizeLines } from '../ingest/transforms/normalize.ts';
import { integrationContext } from '../test/harness/context.ts';
import { formatScores, type ModeScore, scoreDistributed, scoreReplay } from './evaluate.ts';
import { LOG_FILES } from './gateways.ts';
import { LABEL_CLASSES, type Label, labelProblems, readLabels } from './labels.ts';
import { LOG_FORMATS, type RangeResult, runRange } from './run.ts';
import { buildWorld } from './world.ts';

const SEED = 7;
const DURATION_MS = 150_000;
const world = buildWorld(SEED);
const out = join(mkdtempSync(join(tmpdir(), 'range-int-')), 'out');
let result: RangeResult;
let labels: Label[];

interface NginxLine {
  msec: string;
  remote_addr: string;
  remote_user: string;
  request_method: string;
  request_uri: string;
  status: number;
  upstream_status: string;
  server_port: string;
  http_user_agent: string;
}
let nginx: NginxLine[] = [];
let haproxy: { ip: string; at: number; line: string }[] = [];
let audit: {
  transaction: {
    client_ip: string;
    host_port: number;
    response: { http_code: number };
    messages: { details: { ruleId: string } }[];
    request: { uri: string };
  };
}[] = [];
/** Normalised events of every log file, by file name. */
const events = new Map<string, GatewatchEvent[]>();
const deadLetters = new Map<string, string[]>();

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
/** A combined line in the JSON lines' shape: whole seconds, no upstream status or port. */
function combinedLine(line: string): NginxLine {
  const m =
    /^(\S+) \S+ (\S+) \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d) \+0000\] "(\S+) (\S+) [^"]*" (\d{3}) \S+ "[^"]*" "([^"]*)"/.exec(
      line,
    )!;
  const at = Date.UTC(+m[5]!, MONTHS.indexOf(m[4]!), +m[3]!, +m[6]!, +m[7]!, +m[8]!);
  return {
    msec: String(at / 1000 + 0.999),
    remote_addr: m[1]!,
    remote_user: m[2] === '-' ? '' : m[2]!,
    request_method: m[9]!,
    request_uri: m[10]!,
    status: Number(m[11]),
    upstream_status: 'not logged',
    server_port: 'waf-detect',
    http_user_agent: m[12]!,
  };
}

const lines = (f: string) =>
  readFileSync(join(out, f), 'utf8')
    .split('\n')
    .filter((l) => l !== '');

beforeAll(async () => {
  result = await runRange({ seed: SEED, durationMs: DURATION_MS, outDir: out, log: () => {} });
  labels = readLabels(join(out, 'labels.jsonl'));
  // The blocking lane's JSON lines first (the events of that file are read in the same order),
  // then the detection-only lane's combined lines in the same shape (no upstream status there).
  nginx = [
    ...lines(LOG_FILES.nginxJson).map((l) => JSON.parse(l) as NginxLine),
    ...lines(LOG_FILES.nginxCombined).map(combinedLine),
  ];
  audit = lines(LOG_FILES.modsecAudit).map((l) => JSON.parse(l));
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  haproxy = lines(LOG_FILES.haproxy).map((line) => {
    const m = /^([\d.]+):\d+ \[(\d\d)\/(\w{3})\/(\d{4}):(\d\d):(\d\d):(\d\d)\.(\d{3})\]/.exec(line)!;
    return {
      ip: m[1]!,
      at: Date.UTC(+m[4]!, months.indexOf(m[3]!), +m[2]!, +m[5]!, +m[6]!, +m[7]!, +m[8]!),
      line,
    };
  });
  // Gatewatch reads every file as configured by the run's gatewatch.yaml (fixed formats, named captures)
  const config = loadConfig({ file: join(out, 'gatewatch.yaml'), env: {} });
  for (const source of config.ingest.sources) {
    const ctx = createNormalizeContext({
      name: source.name,
      ...(source.format ? { format: source.format } : {}),
      ...(source.fieldMap ? { fieldMap: source.fieldMap } : {}),
      identity: { fingerprintSecret: config.ingest.fingerprintSecret },
    });
    const file = source.paths[0]!.slice(out.length + 1);
    const evs: GatewatchEvent[] = [];
    const dead: string[] = [];
    for (const r of normalizeLines(lines(file), ctx)) {
      if (r.ok) evs.push(...r.events);
      else dead.push(r.reason);
    }
    events.set(file, evs);
    deadLetters.set(file, dead);
  }
}, 600_000);

// A failing run keeps its output, since a fresh range differs run to run: rescore it with
// `npm run range -- --rescore --out <dir>` to see what each mode made of the same logs.
let failed = false;
beforeEach(({ onTestFailed }) =>
  onTestFailed(() => {
    failed = true;
  }),
);
afterAll(() => {
  if (failed) console.error(`range: a test failed; the range output is kept in ${out}`);
  else rmSync(join(out, '..'), { recursive: true, force: true });
});

const byId = (id: string) => {
  const l = labels.find((x) => x.id === id);
  if (l === undefined) throw new Error(`no label ${id} in ${labels.map((x) => x.id).join(', ')}`);
  return l;
};
const wafPort = () => String(result.manifest.lanes.waf);
const nginxFrom = (ips: readonly string[]) => nginx.filter((n) => ips.includes(n.remote_addr));

describe('live-fire range (2.5 min, seed 7)', () => {
  it('writes every log non-empty, the labels, the config and a manifest with versions', () => {
    for (const f of Object.values(LOG_FILES)) expect(lines(f).length, f).toBeGreaterThan(100);
    expect(existsSync(join(out, 'gatewatch.yaml'))).toBe(true);
    const m = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
    for (const k of ['nginx', 'modsecurity', 'crs', 'haproxy', 'hydra', 'ffuf', 'wfuzz', 'sqlmap', 'siege']) {
      expect(m.versions[k], k).toMatch(/^\d/);
    }
    expect(m.seed).toBe(SEED);
    expect(m.files.map((f: { file: string }) => f.file).sort()).toEqual(Object.values(LOG_FILES).sort());
    expect(m.skipped).toEqual([]);
  });

  it('Gatewatch parses every line of every log, with the format the config names', () => {
    for (const [k, f] of Object.entries(LOG_FILES) as [keyof typeof LOG_FILES, string][]) {
      expect(deadLetters.get(f), f).toEqual([]);
      const evs = events.get(f)!;
      expect(evs.length).toBe(lines(f).length);
      expect(new Set(evs.map((e) => e.event?.dataset))).toEqual(new Set([LOG_FORMATS[k]]));
    }
  });

  it('the events carry the fields that matter', () => {
    const share = (f: string, pred: (e: GatewatchEvent) => boolean) =>
      events.get(f)!.filter(pred).length / events.get(f)!.length;
    for (const f of Object.values(LOG_FILES)) {
      expect(
        share(
          f,
          (e) =>
            e.source?.ip !== undefined && e.http?.request?.method !== undefined && e.url?.path !== undefined,
        ),
        f,
      ).toBe(1);
      expect(
        share(f, (e) => (e.http?.response?.status_code ?? 0) >= 100),
        f,
      ).toBe(1);
      expect(
        share(f, (e) => e.user_agent?.original !== undefined),
        f,
      ).toBeGreaterThan(0.99);
    }
    const json = events.get(LOG_FILES.nginxJson)!;
    expect(
      share(
        LOG_FILES.nginxJson,
        (e) => e.http?.request?.id !== undefined && e.http?.response?.bytes !== undefined,
      ),
    ).toBe(1);
    // WAF blocks answer without the upstream; everything else carries its status
    for (const [i, e] of json.entries()) {
      // "" when nginx answered itself, "-" when the client left first (499), "502, 200" after a retry
      const last = nginx[i]!.upstream_status.split(/[,:]/).pop()!.trim();
      expect(e.gatewatch?.upstream?.status_code, nginx[i]!.request_uri).toBe(
        /^\d{3}$/.test(last) ? Number(last) : undefined,
      );
    }
    expect(json.filter((e) => e.gatewatch?.api_key?.location === 'header').length).toBeGreaterThan(50);
    expect(share(LOG_FILES.modsecAudit, (e) => e.http?.request?.id !== undefined)).toBe(1);
    // basic-auth users: nginx $remote_user (both logs), the HAProxy Authorization capture
    for (const f of [LOG_FILES.nginxJson, LOG_FILES.nginxCombined, LOG_FILES.haproxy]) {
      expect(
        events.get(f)!.some((e) => e.user?.name !== undefined),
        f,
      ).toBe(true);
    }
    // login bodies in the audit log name the account
    const spray = byId('scripted-distributed-stuffing');
    expect(
      events
        .get(LOG_FILES.modsecAudit)!
        .filter((e) => spray.entities.ip!.includes(e.source!.ip!) && e.user?.name !== undefined).length,
    ).toBeGreaterThan(50);
  });

  it('stores no API key and no password in clear', () => {
    const secrets = [
      ...world.apiClients.map((c) => c.key),
      ...world.accounts.map((a) => a.password),
      ...world.staff.map((s) => s.password),
    ].filter((s) => s.length >= 8);
    for (const [f, evs] of events) {
      const text = JSON.stringify(evs);
      for (const s of secrets) expect(text.includes(s), `${f} holds ${s.slice(0, 6)}…`).toBe(false);
    }
  });

  it('labels every attack class and the notable benign actors, in the documented format', () => {
    for (const line of lines('labels.jsonl')) expect(labelProblems(JSON.parse(line))).toEqual([]);
    expect(new Set(labels.map((l) => l.class))).toEqual(new Set(LABEL_CLASSES));
    for (const id of ['benign-nat-office', 'benign-mobile', 'benign-exporter-1', 'benign-basic-auth-staff'])
      expect(byId(id).class).toBe('benign');
    const t0 = Date.parse(result.manifest.startedAt);
    const t1 = Date.parse(result.manifest.endedAt);
    for (const l of labels) {
      expect(l.requests, l.id).toBeGreaterThan(0);
      expect(Date.parse(l.start)).toBeGreaterThanOrEqual(t0);
      expect(Date.parse(l.end)).toBeLessThanOrEqual(t1);
    }
  });

  it("every label's addresses appear in the logs inside its time span", () => {
    for (const l of labels) {
      const from = Date.parse(l.start) - 2000;
      const to = Date.parse(l.end) + 2000;
      const seen = new Set<string>();
      for (const n of nginx) {
        const at = Number(n.msec) * 1000;
        if (at >= from && at <= to) seen.add(n.remote_addr);
      }
      for (const h of haproxy) if (h.at >= from && h.at <= to) seen.add(h.ip);
      const missing = l.entities.ip!.filter((ip) => !seen.has(ip));
      expect(missing, l.id).toEqual([]);
    }
  });

  it('the CRS blocks sqlmap; with a tamper script and random agents some requests get through', () => {
    const blocked = nginxFrom(byId('sqlmap-blocked').entities.ip!);
    expect(blocked.length).toBeGreaterThan(20);
    expect(blocked.every((n) => n.status === 403 && n.upstream_status === '')).toBe(true);
    const blockedIps = byId('sqlmap-blocked').entities.ip!;
    expect(
      audit.some(
        (a) =>
          blockedIps.includes(a.transaction.client_ip) &&
          a.transaction.messages.some((m) => m.details.ruleId.startsWith('942')),
      ),
    ).toBe(true);
    const tamper = nginxFrom(byId('sqlmap-tamper').entities.ip!);
    expect(tamper.filter((n) => n.status === 403 && n.upstream_status === '').length).toBeGreaterThan(20);
    expect(tamper.filter((n) => n.upstream_status !== '').length).toBeGreaterThan(0);
  });

  it('hydra found the takeover password; the attacker then read the victim account', () => {
    const ato = byId('hydra-form-ato');
    expect(ato.entities.user).toEqual([world.atoVictim.username]);
    const from = nginxFrom(ato.entities.ip!);
    const failures = from.filter((n) => n.request_uri === '/api/login' && n.status === 401).length;
    expect(failures).toBeGreaterThan(20);
    expect(from.filter((n) => n.request_uri === '/api/login' && n.status === 200).length).toBe(2); // hydra's hit, the attacker's login
    expect(
      from.some((n) => n.request_uri === `/api/users/${world.atoVictim.id}/addresses` && n.status === 200),
    ).toBe(true);
    expect(result.manifest.toolRuns.find((r) => r.id === 'hydra-form-ato')?.exit).toBe(0);
  });

  it('the other attacks look like what they are in the logs', () => {
    // form stuffing: many different users, one request each, no success
    expect(byId('hydra-form-stuffing').entities.user!.length).toBeGreaterThanOrEqual(50);
    expect(nginxFrom(byId('hydra-form-stuffing').entities.ip!).every((n) => n.status === 401)).toBe(true);
    // distributed stuffing: >= 100 addresses, at most 3 tries each, one user agent
    const dist = byId('scripted-distributed-stuffing');
    expect(dist.entities.ip!.length).toBeGreaterThanOrEqual(100);
    expect(dist.entities.user_agent).toHaveLength(1);
    const perIp = new Map<string, number>();
    for (const n of nginxFrom(dist.entities.ip!))
      perIp.set(n.remote_addr, (perIp.get(n.remote_addr) ?? 0) + 1);
    expect(Math.max(...perIp.values())).toBeLessThanOrEqual(3);
    // spraying: few passwords over many basic-auth users, visible as $remote_user
    const spray = byId('hydra-basic-spray');
    const sprayed = new Set(nginxFrom(spray.entities.ip!).map((n) => n.remote_user));
    expect(sprayed.size).toBeGreaterThanOrEqual(20);
    // BOLA: one valid session, many ids, mostly 403 from the API itself
    const bola = nginxFrom(byId('ffuf-bola').entities.ip!).filter((n) =>
      n.request_uri.startsWith('/api/users/'),
    );
    expect(bola.length).toBeGreaterThan(200);
    expect(bola.filter((n) => n.status === 403 && n.upstream_status === '403').length).toBeGreaterThan(150);
    expect(bola.filter((n) => n.status === 404).length).toBeGreaterThan(10);
    // stolen key: one partner's key from four /24s
    const stolen = byId('scripted-stolen-key');
    expect(new Set(stolen.entities.ip!.map((ip) => ip.split('.').slice(0, 3).join('.'))).size).toBe(4);
    expect(world.apiClients.find((c) => c.key === stolen.entities.api_key![0])?.kind).toBe('partner');
    // the 5xx spike went through HAProxy
    const spike = byId('siege-5xx-spike');
    const spikeLines = haproxy.filter((h) => spike.entities.ip!.includes(h.ip));
    expect(spikeLines.length).toBe(spike.requests);
    expect(spikeLines.every((h) => / 50[03] /.test(h.line))).toBe(true);
    // forced browsing reached the detection-only lane, logged by the WAF without blocking
    const fb = byId('wfuzz-forced-browsing');
    const fbAudit = audit.filter((a) => fb.entities.ip!.includes(a.transaction.client_ip));
    expect(fbAudit.length).toBeGreaterThan(30);
    expect(fbAudit.every((a) => String(a.transaction.host_port) !== wafPort())).toBe(true);
  });

  it('leaves no process behind', () => {
    expect(result.processes.map((p) => p.name)).toEqual(
      expect.arrayContaining(['api', 'nginx', 'haproxy', 'hydra-form-ato', 'ffuf-bola']),
    );
    const alive = result.processes.filter((p) => {
      // gone, or a zombie (it runs nothing), or its pid reused by something else
      const stat = existsSync(`/proc/${p.pid}/stat`) ? readFileSync(`/proc/${p.pid}/stat`, 'utf8') : '';
      if (stat === '' || / Z /.test(stat.slice(stat.lastIndexOf(')')))) return false;
      return readFileSync(`/proc/${p.pid}/cmdline`, 'utf8').startsWith(p.command);
    });
    expect(alive).toEqual([]);
    // and nothing they forked (hydra's tasks, nginx's worker): all name the scratch directory
    const ps = execFileSync('ps', ['-eo', 'stat=,args='], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => !l.trim().startsWith('Z') && l.includes(result.scratchDir));
    expect(ps).toEqual([]);
  });
});

describe('Gatewatch on the range (both modes)', () => {
  const ctx = integrationContext('range-score');
  let replay: ModeScore;
  let distributed: ModeScore;
  let scoringStarted: number;
  beforeAll(async () => {
    scoringStarted = Date.now();
    replay = await scoreReplay(out);
    distributed = await scoreDistributed(out, {
      elasticsearchUrl: ctx.elasticsearchUrl,
      redisUrl: ctx.redisUrl,
      prefix: ctx.prefix,
    });
    // The table `npm run range` prints, for the test's log.
    console.log(formatScores([{ seed: SEED, scores: [replay, distributed] }]));
  }, 900_000);
  afterAll(() => ctx.cleanup());

  it('finds every attack class the range ran, with precision >= 0.9, in both modes', () => {
    for (const s of [replay, distributed]) {
      const missed = s.classes.classes.flatMap((c) => c.missed.map((m) => `${c.class}: ${m}`));
      expect(missed, s.mode).toEqual([]);
      expect(
        s.classes.precision,
        `${s.mode}: ${JSON.stringify(s.classes.falsePositiveIncidents)}`,
      ).toBeGreaterThanOrEqual(0.9);
    }
  });

  it('the replay and the distributed pipeline open the same incidents', () => {
    const key = (s: ModeScore) =>
      s.incidents.map((i) => `${i.rules.join('+')} ${i.entity_key} ${i.window.start}`).sort();
    expect(key(distributed)).toEqual(key(replay));
  });

  it('dates the distributed incidents when they were written (an old date is past retention)', () => {
    // Dated 1970, the ingest runtime's lifecycle pass deleted them as they were written.
    for (const i of distributed.incidents) {
      expect(Date.parse(i.created_at), i.id).toBeGreaterThanOrEqual(scoringStarted);
      expect(Date.parse(i.updated_at), i.id).toBeGreaterThanOrEqual(scoringStarted);
    }
    expect(distributed.incidents.length).toBeGreaterThan(0);
  });

  it('says which rules cannot fire on these logs, and why', () => {
    const verdict = (id: string) => replay.coverage.rules.find((r) => r.rule === id)!;
    // no GeoIP database, no TLS fingerprints, minutes of data
    expect(verdict('api-key-impossible-travel').verdict).toBe('cannot fire');
    expect(verdict('credential-stuffing-distributed-ja3').reasons.join()).toContain('no TLS fingerprint');
    expect(verdict('server-error-spike-per-route').reasons.join()).toContain('history longer than the data');
    expect(verdict('credential-stuffing-single-source').verdict).toBe('can fire');
  });
});
