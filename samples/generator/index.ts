/**
 * Seeded, deterministic scenario generator: benign API and storefront traffic with injected,
 * labelled attacks for every built-in rule, written as real Kong, AWS ALB and AWS WAF logs,
 * with ground-truth labels and a GeoIP/ASN database for the scenario's address space.
 *
 *   const s = generateScenario({ seed: 42, start: '2024-05-14T13:00:00Z', durationMs: 2 * HOUR, eventsPerMinute: 30 });
 *   await writeScenario('samples/scenarios/demo', s);
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { createIdentityResolver, keyIdentityString } from '../../ingest/transforms/identity.ts';
import { ATTACKS, type AttackSpec } from './attacks.ts';
import { scenarioDatabases } from './mmdb.ts';
import {
  API_HOST,
  buildWorld,
  DAY,
  diurnal,
  HOUR,
  kongReq,
  loginReq,
  MIN,
  oauthCall,
  partnerCall,
  session,
  visitorNet,
  WWW_HOST,
  webVisit,
} from './model.ts';
import { distinctIps, network, randomIp } from './network.ts';
import { Rng } from './prng.ts';
import {
  FORMAT_FILES,
  type FormatId,
  type Label,
  type Req,
  type Scenario,
  type ScenarioLine,
} from './types.ts';
import { kongCredentialId, render } from './writers.ts';

export { matchIncidents } from './labels.ts';
export type { Label, Scenario, ScenarioLine } from './types.ts';

/**
 * A generated scenario's fingerprint secret (unless one is given), written into its
 * gatewatch.yaml: its labels carry fingerprints computed with it. Scenarios are synthetic, so the
 * key is public; a distributed deployment refuses it (ingest/fingerprint-secret.ts).
 */
export const SCENARIO_FINGERPRINT_SECRET = 'gatewatch-dev-fingerprint-secret-change-me';
export const ATTACK_IDS: string[] = ATTACKS.map((a) => a.id);

export interface ScenarioOptions {
  seed: number;
  /** Start of the scenario (ms or ISO-8601). */
  start: number | string;
  durationMs: number;
  /** Mean benign requests per minute (the diurnal curve moves it between ~0.35x and ~1.65x). */
  eventsPerMinute: number;
  /** Rule ids of the attacks to inject (default: all). */
  attacks?: string[];
  /** Include benign near-threshold cases (default true). */
  nearMisses?: boolean;
  /** Days of sparse history before the start (default 31; first-seen rules need 30). */
  historyDays?: number;
  fingerprintSecret?: string;
}

const SLOT = 15 * MIN;

export function generateScenario(opts: ScenarioOptions): Scenario {
  const start = typeof opts.start === 'number' ? opts.start : Date.parse(opts.start);
  if (!Number.isFinite(start)) throw new Error(`invalid start ${String(opts.start)}`);
  const end = start + opts.durationMs;
  const secret = opts.fingerprintSecret ?? SCENARIO_FINGERPRINT_SECRET;
  const identity = createIdentityResolver({ fingerprintSecret: secret });
  const fingerprint = (key: { id: string }) =>
    identity.fingerprint(keyIdentityString('gateway', kongCredentialId(key.id))) ?? '';
  const root = new Rng(opts.seed >>> 0);
  const world = buildWorld(root.fork('world'), 400);
  const taken = new Set<string>([
    world.natIp,
    ...world.users.map((u) => u.ip),
    ...world.partners.flatMap((p) => p.egress.flatMap((e) => e.ips)),
  ]);
  const reqs: Req[] = [];
  const labels: Label[] = [];
  const epm = opts.eventsPerMinute;
  const historyDays = opts.historyDays ?? 31;
  const historyStart = start - historyDays * DAY;

  // --- benign traffic ---------------------------------------------------------------------
  const rng = root.fork('benign');
  const sessionUsers = world.users.slice(0, world.users.length - 24); // the last 24 are spray targets only
  for (let m = start; m < end; m += MIN) {
    const f = diurnal(m);
    for (let i = rng.poisson((0.45 * epm * f) / 10); i > 0; i--) {
      const u = rng.pick(sessionUsers);
      session(rng, u, m + rng.int(0, MIN - 1), 'benign:session', reqs);
    }
    for (let i = rng.poisson((0.25 * epm * f) / 9); i > 0; i--) {
      const net = visitorNet(rng);
      webVisit(
        rng,
        m + rng.int(0, MIN - 1),
        randomIp(rng, net),
        rng.pick(world.users).ua,
        'benign:web',
        reqs,
      );
    }
    if ((m / MIN) % 60 >= 8 && (m / MIN) % 60 < 50 && rng.chance(0.5 * f)) {
      session(rng, rng.pick(world.natUsers), m + rng.int(0, MIN - 1), 'benign:corporate-nat', reqs);
    }
    for (const p of world.partners) {
      for (let i = rng.poisson(p.rpm * 0.3 * (epm / 30)); i > 0; i--)
        reqs.push(partnerCall(rng, p, m + rng.int(0, MIN - 1), 'benign:partner'));
      if (p.oauth && (m / MIN) % 30 === 0)
        for (const eg of p.egress)
          reqs.push(oauthCall(rng, p, m + rng.int(0, MIN - 1), 'benign:partner-oauth', eg));
    }
    // Internet noise the API's AWS WAF blocks (its logging filter keeps BLOCK and COUNT only).
    if (rng.chance(0.02 * epm * 0.1)) reqs.push(wafNoise(rng, m + rng.int(0, MIN - 1)));
  }
  // catalog-sync polls page 1 every 10 minutes, from 26 hours before the start to the end.
  const sync = world.byName.get('catalog-sync')!;
  for (let t = Math.floor((start - 26 * HOUR) / (10 * MIN)) * 10 * MIN + 3 * MIN; t < end; t += 10 * MIN) {
    reqs.push({
      ...partnerCall(
        rng,
        sync,
        t + rng.int(0, 20_000),
        t < start ? 'history:catalog-sync' : 'benign:catalog-sync',
      ),
      query: 'page=1&per_page=50',
    });
  }

  // --- history: 30+ days of each key from its own networks; 14 h of checkout errors ------------
  const hist = root.fork('history');
  for (let d = historyDays; d >= 1; d--) {
    const day = start - d * DAY;
    for (const p of world.partners) {
      for (const eg of p.egress) {
        reqs.push(partnerCall(hist, p, day + hist.int(0, DAY - 1), 'history:partner', eg));
        if (p.oauth) reqs.push(oauthCall(hist, p, day + hist.int(0, DAY - 1), 'history:partner-oauth', eg));
      }
    }
  }
  for (let t = Math.floor((start - 14 * HOUR) / (10 * MIN)) * 10 * MIN; t < start; t += 10 * MIN) {
    for (const status of [201, hist.pick([502, 503, 504])]) {
      const u = hist.pick(sessionUsers);
      reqs.push(
        kongReq(hist, {
          t: t + hist.int(0, 10 * MIN - 1),
          ip: u.ip,
          ua: u.ua,
          method: 'POST',
          path: '/api/v1/checkout',
          status,
          consumer: u.consumer,
          session: hist.base62(24),
          tag: 'history:checkout',
        }),
      );
    }
  }

  // --- attacks, in aligned 15-minute slots --------------------------------------------------
  const s0 = Math.ceil(start / SLOT) * SLOT;
  const nSlots = Math.floor((end - s0) / SLOT);
  const wanted = opts.attacks === undefined ? ATTACKS : ATTACKS.filter((a) => opts.attacks!.includes(a.id));
  const arng = root.fork('attacks');
  for (const spec of wanted) {
    const at = place(spec, s0, nSlots);
    if (at === undefined) continue;
    const res = spec.inject({ rng: arng.fork(spec.id), world, at, fingerprint, taken });
    const inRange = res.reqs.filter((r) => r.t < end);
    reqs.push(...inRange);
    labels.push(finishLabel({ ...res.label, kind: 'attack' }, inRange));
  }

  // --- benign near-threshold cases ----------------------------------------------------------
  if (opts.nearMisses ?? true) {
    const brng = root.fork('near-misses');
    for (const nm of NEAR_MISSES) {
      const at = place({ slots: 1, position: nm.position }, s0, nSlots);
      if (at === undefined) continue;
      const out: Req[] = [];
      const label = nm.make(brng.fork(nm.id), at, out, world, taken);
      const inRange = out.filter((r) => r.t < end);
      reqs.push(...inRange);
      labels.push(finishLabel({ ...label, id: nm.id, kind: 'benign' }, inRange));
    }
  }

  // --- render -------------------------------------------------------------------------------
  const ordered = reqs.filter((r) => r.t >= historyStart && r.t < end);
  ordered.sort((a, b) => a.t - b.t);
  const wrng = root.fork('render');
  const lines: ScenarioLine[] = ordered.map((r) => ({ format: r.fmt, line: render(r, wrng), t: r.t }));
  return {
    seed: opts.seed,
    start: new Date(start).toISOString(),
    end: new Date(end).toISOString(),
    historyStart: new Date(historyStart).toISOString(),
    lines,
    labels,
    databases: scenarioDatabases(Math.floor(start / 1000)),
    fingerprintSecret: secret,
  };
}

function place(spec: Pick<AttackSpec, 'slots' | 'position'>, s0: number, nSlots: number): number | undefined {
  if (nSlots < spec.slots) return undefined;
  const first = nSlots > spec.slots ? 1 : 0;
  const k = first + Math.round(spec.position * Math.max(0, nSlots - spec.slots - first));
  return s0 + k * SLOT;
}

function finishLabel(l: Omit<Label, 'start' | 'end' | 'requests'>, reqs: Req[]): Label {
  let lo = Number.POSITIVE_INFINITY;
  let hi = Number.NEGATIVE_INFINITY;
  for (const r of reqs) {
    lo = Math.min(lo, r.t);
    hi = Math.max(hi, r.t);
  }
  const {
    id,
    kind,
    rules,
    optionalRules,
    title,
    description,
    entity,
    group,
    ruleEntities,
    expectedIncidents,
    thresholds,
  } = l;
  return {
    id,
    kind,
    rules,
    ...(optionalRules ? { optionalRules } : {}),
    title,
    description,
    entity,
    ...(group ? { group } : {}),
    ...(ruleEntities ? { ruleEntities } : {}),
    start: new Date(Number.isFinite(lo) ? lo : 0).toISOString(),
    end: new Date(Number.isFinite(hi) ? hi + 1 : 0).toISOString(),
    ...(expectedIncidents ? { expectedIncidents } : {}),
    requests: reqs.length,
    ...(thresholds ? { thresholds } : {}),
  };
}

function wafNoise(rng: Rng, t: number): Req {
  const net = rng.pick([network(14061), network(24940), network(4134), network(12389), network(16276)]);
  const kind = rng.weighted([
    ['sqli', 3],
    ['lfi', 2],
    ['bot', 3],
  ] as const);
  const base = {
    t,
    fmt: 'aws.waf' as const,
    ip: randomIp(rng, net),
    host: API_HOST,
    status: 0,
    bytesIn: 0,
    bytesOut: 0,
    latencyMs: 0,
    tag: 'benign:waf-noise',
  };
  if (kind === 'sqli') {
    return {
      ...base,
      method: 'GET',
      path: '/api/v1/products',
      query: `page=1%27%20OR%201%3D1--`,
      ua: 'Mozilla/5.0 (compatible; sqlmap/1.7.2#stable; +https://sqlmap.org)',
      waf: {
        action: 'BLOCK',
        ruleId: 'AWS-AWSManagedRulesSQLiRuleSet',
        ruleType: 'MANAGED_RULE_GROUP',
        labels: ['awswaf:managed:aws:sql-database:SQLi_QueryArguments'],
        country: net.country,
        conditionType: 'SQL_INJECTION',
      },
    };
  }
  if (kind === 'lfi') {
    return {
      ...base,
      method: 'GET',
      path: `/api/v1/${rng.pick(['files', 'export', 'download'])}`,
      query: 'path=..%2F..%2F..%2Fetc%2Fpasswd',
      ua: 'Mozilla/5.0 (X11; Linux x86_64)',
      waf: {
        action: 'BLOCK',
        ruleId: 'AWS-AWSManagedRulesKnownBadInputsRuleSet',
        ruleType: 'MANAGED_RULE_GROUP',
        labels: ['awswaf:managed:aws:known-bad-inputs:LFI_QueryArguments'],
        country: net.country,
      },
    };
  }
  return {
    ...base,
    method: 'GET',
    path: '/api/v1/products',
    query: `page=${rng.int(1, 90)}`,
    ua: 'Mozilla/5.0 (compatible; Bytespider; spider-feedback@bytedance.com)',
    waf: {
      action: 'BLOCK',
      ruleId: 'AWS-AWSManagedRulesBotControlRuleSet',
      ruleType: 'MANAGED_RULE_GROUP',
      labels: ['awswaf:managed:aws:bot-control:bot:category:scraping_framework'],
      country: net.country,
    },
  };
}

type NearMissLabel = Omit<Label, 'start' | 'end' | 'requests' | 'kind' | 'id'>;
interface NearMiss {
  id: string;
  position: number;
  make: (
    rng: Rng,
    at: number,
    out: Req[],
    world: ReturnType<typeof buildWorld>,
    taken: Set<string>,
  ) => NearMissLabel;
}

const ent = (field: string, value: string, kind: Label['entity']['kind']) => ({ field, value, kind });

const NEAR_MISSES: NearMiss[] = [
  {
    id: 'benign-corporate-nat-logins',
    position: 0.3,
    make(rng, at, out, world) {
      world.natUsers.slice(0, 45).forEach((u, i) => {
        session(rng, u, at + 1 * MIN + Math.floor((i / 45) * 11 * MIN), 'benign-corporate-nat-logins', out, {
          mistypes: i % 5 === 0 ? 1 + (i % 2) : 0,
        });
      });
      return {
        rules: ['credential-stuffing-single-source', 'password-spraying'],
        title: 'Morning logins through a corporate NAT address',
        description:
          '45 employees sign in through one NAT address within 11 minutes; 9 mistype once or twice.',
        entity: ent('source.ip', world.natIp, 'ip'),
        thresholds: 'users 45 >= 15 but failures about 14 (< 25) and failure ratio about 0.2 (< 0.9).',
      };
    },
  },
  {
    id: 'benign-mistype-three-times',
    position: 0.5,
    make(rng, at, out, world) {
      const u = world.users[3]!;
      session(rng, u, at + 2 * MIN, 'benign-mistype-three-times', out, { mistypes: 3 });
      return {
        rules: ['account-takeover-failures-then-success', 'brute-force-one-account-many-ips'],
        title: 'A user mistypes the password three times, then succeeds',
        description: 'Three 401s then a 200 for the same account from its usual address.',
        entity: ent('user.name', u.email, 'user'),
        thresholds: '3 failures (< 10) before the success; one IP (< 5).',
      };
    },
  },
  {
    id: 'benign-power-user-own-orders',
    position: 0.6,
    make(rng, at, out, world) {
      const u = world.users.find((x) => x.orders.length >= 20 && x !== world.users[7]) ?? world.users[0]!;
      const a = Math.floor(at / (5 * MIN)) * 5 * MIN + 5 * MIN;
      for (let i = 0; i < 40; i++) {
        out.push(
          kongReq(rng, {
            t: a + 10_000 + i * 6000,
            ip: u.ip,
            ua: u.ua,
            method: 'GET',
            path: `/api/v1/orders/${u.orders[i % u.orders.length]! + (i >= u.orders.length ? 0 : 0)}`,
            status: 200,
            consumer: u.consumer,
            session: 'power-user-session',
            tag: 'benign-power-user-own-orders',
          }),
        );
      }
      return {
        rules: ['bola-object-id-enumeration'],
        title: 'A customer opens all of their own orders',
        description: 'Up to 25 distinct own orders, 40 requests in 4 minutes, all 200.',
        entity: ent('user.id', u.id, 'user'),
        thresholds: 'objects <= 25 (< 50) and denied share 0 (< 0.3).',
      };
    },
  },
  {
    id: 'benign-internal-scanner',
    position: 0.4,
    make(rng, at, out) {
      const ua =
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/105.0.0.0 Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)';
      for (let i = 0; i < 120; i++) {
        out.push({
          t: at + 1 * MIN + i * 3000,
          fmt: 'aws.alb',
          ip: '10.20.0.15',
          method: 'GET',
          host: WWW_HOST,
          path: `/${['.env', 'server-status', 'actuator/health', 'admin', 'debug', '.git/HEAD', 'metrics', 'status', 'swagger.json', 'graphql', 'console', 'config.js', 'backup.zip', 'login'][i % 14]}`,
          status: 404,
          ua,
          bytesIn: 240,
          bytesOut: rng.int(150, 400),
          latencyMs: rng.int(1, 9),
          tag: 'benign-internal-scanner',
        });
      }
      return {
        rules: ['scanner-user-agent'],
        title: 'The security team scans the storefront from an internal host',
        description: '120 Nuclei requests to 14 paths from 10.20.0.15 (internal network list).',
        entity: ent('source.ip', '10.20.0.15', 'ip'),
        thresholds: 'above the counts, but source.ip is internal, so external_client is false.',
      };
    },
  },
  {
    id: 'benign-waf-blocked-twice',
    position: 0.7,
    make(rng, at, out, _world, taken) {
      const [ip] = distinctIps(rng, network(3215), 1, taken);
      const ua = 'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0';
      const qs = ["q=o'neill+jacket", "q=o'neill+jacket+size+m", 'q=oneill+jacket'];
      qs.forEach((q, i) => {
        const pass = i === 2;
        out.push({
          t: at + 2 * MIN + i * 40_000,
          fmt: 'aws.alb',
          ip: ip!,
          method: 'GET',
          host: WWW_HOST,
          path: '/search',
          query: q,
          status: pass ? 200 : 403,
          ua,
          bytesIn: 480,
          bytesOut: pass ? 21000 : 118,
          latencyMs: pass ? 120 : 0,
          albWaf: pass ? 'allow' : 'block',
          tag: 'benign-waf-blocked-twice',
        });
      });
      return {
        rules: ['waf-block-then-bypass'],
        title: "A shopper's apostrophe trips the SQL injection rule twice",
        description: 'Two blocked searches, then the shopper drops the apostrophe and gets results.',
        entity: ent('source.ip', ip!, 'ip'),
        group: { 'gatewatch.route': '/search' },
        thresholds: '2 blocks (< 3) before the 2xx.',
      };
    },
  },
  {
    id: 'benign-crawler-404s',
    position: 0.2,
    make(rng, at, out) {
      const ip = '40.77.167.12'; // outside the scenario's networks: no geo, no ASN
      const ua = 'Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)';
      for (let i = 0; i < 160; i++) {
        out.push({
          t: at + 30_000 + i * 3500,
          fmt: 'aws.alb',
          ip,
          method: 'GET',
          host: WWW_HOST,
          path: `/products/discontinued-item-${1000 + (i % 130)}`,
          status: 404,
          ua,
          bytesIn: 300,
          bytesOut: rng.int(900, 1400),
          latencyMs: rng.int(5, 30),
          albWaf: 'allow',
          tag: 'benign-crawler-404s',
        });
      }
      return {
        rules: ['forced-browsing-enumeration'],
        title: 'A search engine recrawls discontinued product pages',
        description: '160 requests for 130 removed product pages in 10 minutes, all 404.',
        entity: ent('source.ip', ip, 'ip'),
        thresholds: 'requests 160 (<= 500) and paths 130 (<= 250).',
      };
    },
  },
];

/** Write one log file per format, labels.json, the GeoIP/ASN databases and a config. */
export function writeScenario(dir: string, scenario: Scenario, options: { gzip?: boolean } = {}): string[] {
  mkdirSync(dir, { recursive: true });
  const byFormat = new Map<FormatId, string[]>();
  for (const l of scenario.lines) {
    let list = byFormat.get(l.format);
    if (!list) {
      list = [];
      byFormat.set(l.format, list);
    }
    list.push(l.line);
  }
  const written: string[] = [];
  for (const [fmt, lines] of [...byFormat].sort(([a], [b]) => a.localeCompare(b))) {
    const name = FORMAT_FILES[fmt] + (options.gzip ? '.gz' : '');
    // Large scenarios exceed the longest string V8 allows: write plain files in chunks.
    const chunks: Buffer[] = [];
    for (let i = 0; i < lines.length; i += 50_000)
      chunks.push(Buffer.from(`${lines.slice(i, i + 50_000).join('\n')}\n`));
    const bytes = Buffer.concat(chunks);
    writeFileSync(join(dir, name), options.gzip ? gzipSync(bytes, { level: 9 }) : bytes);
    written.push(name);
  }
  writeFileSync(join(dir, 'geoip-city.mmdb'), scenario.databases.city);
  writeFileSync(join(dir, 'geoip-asn.mmdb'), scenario.databases.asn);
  const manifest = {
    seed: scenario.seed,
    start: scenario.start,
    end: scenario.end,
    historyStart: scenario.historyStart,
    fingerprintSecret: scenario.fingerprintSecret,
    files: written,
    lines: scenario.lines.length,
    labels: scenario.labels,
  };
  writeFileSync(join(dir, 'labels.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  writeFileSync(
    join(dir, 'gatewatch.yaml'),
    `# Replay this scenario with its GeoIP/ASN databases (paths relative to the repository root):\n#   node cli/gatewatch.ts --config ${dir}/gatewatch.yaml replay ${dir} --fresh --db .cache/scenario.sqlite\ningest:\n  geoipDatabase: ${dir}/geoip-city.mmdb\n  asnDatabase: ${dir}/geoip-asn.mmdb\n  fingerprintSecret: ${scenario.fingerprintSecret}\n`,
  );
  return [...written, 'geoip-city.mmdb', 'geoip-asn.mmdb', 'labels.json', 'gatewatch.yaml'];
}

export { HOUR, loginReq, MIN };
