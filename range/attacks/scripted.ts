/**
 * Attacks no packaged tool performs, as scripted clients of the range: distributed low-and-slow
 * credential stuffing (>= 100 addresses, a few tries each, one shared user agent), scraping the
 * catalogue through cursor pagination with one key, a stolen partner key used from many
 * addresses in several /24s, and a key pasted into URLs. Each records exactly what it sent.
 */
import type { Rng } from '../../samples/generator/prng.ts';
import {
  activity,
  benignAccounts,
  pause,
  pauseUntil,
  type RunContext,
  running,
  tryLogin,
} from '../actors.ts';
import type { Lane } from '../gateways.ts';
import type { LabelDraft } from '../labels.ts';
import type { Activity } from '../traffic.ts';
import { PAGE_SIZE } from '../world.ts';
import { LEAKED_PASSWORDS } from './wordlists.ts';

const TOOL = 'range scripted client';

export interface ScriptedAttack {
  id: string;
  lane: Lane;
  /** Planned start, as a share of the run, and how long the attack may last (ms). */
  plan(durationMs: number, rng: Rng): { startAt: number; spanMs: number };
  run(ctx: RunContext, rng: Rng, startAt: number, spanMs: number): Promise<LabelDraft[]>;
}

function draft(a: Activity, d: Omit<LabelDraft, 'ips' | 'first' | 'last' | 'requests'>): LabelDraft[] {
  if (a.requests === 0) return [];
  return [
    {
      ...d,
      ips: a.ips,
      first: a.first,
      last: a.last,
      requests: a.requests,
      routes: d.routes ?? a.routes,
      userAgents: d.userAgents ?? a.userAgents,
    },
  ];
}

const STUFFING_UA =
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36';

/** Low and slow from a proxy pool: 2-3 login tries per address, 120 addresses in many /24s. */
const distributedStuffing: ScriptedAttack = {
  id: 'scripted-distributed-stuffing',
  lane: 'waf',
  plan(d, rng) {
    return { startAt: d * (0.08 + rng.next() * 0.1), spanMs: Math.min(8 * 60_000, d * 0.5) };
  },
  async run(ctx, rng, startAt, spanMs) {
    const act = activity(ctx, this.id);
    const ips = new Set<string>();
    while (ips.size < 120) ips.add(`127.${rng.int(90, 99)}.${rng.int(0, 255)}.${rng.int(1, 254)}`);
    const accounts = benignAccounts(ctx.world);
    const users: string[] = [];
    await pauseUntil(ctx, ctx.t0 + startAt);
    const end = Date.now() + spanMs;
    await Promise.all(
      [...ips].map(async (ip, i) => {
        const r = rng.fork(`proxy-${i}`);
        await pause(ctx, r.next() * spanMs * 0.8);
        const tries = r.int(2, 3);
        for (let t = 0; t < tries && running(ctx, end); t++) {
          const existing = r.chance(0.4);
          const user = existing
            ? r.pick(accounts).username
            : `${r.pick(['user', 'shop', 'mail', 'alex', 'sam', 'chris'])}${r.int(100, 99999)}@${r.pick(['example.com', 'mail.example', 'inbox.example'])}`;
          users.push(user);
          let pass = r.pick(LEAKED_PASSWORDS);
          const acc = existing ? accounts.find((a) => a.username === user) : undefined;
          if (acc !== undefined && acc.password === pass) pass += '1';
          await tryLogin(
            ctx,
            { lane: this.lane, from: ip, ua: STUFFING_UA, activity: act },
            'json',
            user,
            pass,
          );
          await pause(ctx, r.logNormal(15_000, 0.5));
        }
      }),
    );
    return draft(act, {
      id: this.id,
      class: 'credential_stuffing',
      tool: TOOL,
      description: `Distributed, low-and-slow credential stuffing: ${act.ips.size} proxy addresses across many /24s each try 2-3 leaked username:password pairs (JSON body) over several minutes, all with one user agent, through the blocking WAF.`,
      users,
      routes: ['/api/login'],
      userAgents: [STUFFING_UA],
    });
  },
};

/** One free-tier key walks the whole catalogue: cursor pages, then every product by id. */
const scraping: ScriptedAttack = {
  id: 'scripted-scraping',
  lane: 'waf',
  plan(d, rng) {
    return { startAt: d * (0.2 + rng.next() * 0.35), spanMs: Math.min(4 * 60_000, d * 0.3) };
  },
  async run(ctx, rng, startAt, spanMs) {
    const act = activity(ctx, this.id);
    const key = ctx.world.apiClients.find((c) => c.name === 'tenant-freetier')!.key;
    const ip = '127.67.3.21';
    const ua = 'python-requests/2.31.0';
    const agent = ctx.client.agent(1);
    await pauseUntil(ctx, ctx.t0 + startAt);
    const end = Date.now() + spanMs;
    const get = (path: string, route: string) =>
      ctx.client.send({
        lane: this.lane,
        from: ip,
        path,
        agent,
        activity: act,
        route,
        headers: { 'User-Agent': ua, 'X-API-Key': key, Accept: 'application/json' },
      });
    let cursor: string | null = '';
    for (let n = 0; n < 100 && cursor !== null && running(ctx, end); n++) {
      const res = await get(
        cursor === ''
          ? `/api/products?limit=${PAGE_SIZE}`
          : `/api/products?limit=${PAGE_SIZE}&cursor=${cursor}`,
        '/api/products',
      );
      try {
        cursor = (JSON.parse(res.body) as { next_cursor?: string | null }).next_cursor ?? null;
      } catch {
        cursor = null;
      }
      await pause(ctx, rng.int(150, 350));
    }
    for (let id = 1; id <= ctx.world.productCount && running(ctx, end); id++) {
      await get(`/api/products/${id}`, '/api/products/{id}');
      await pause(ctx, rng.int(150, 350));
    }
    return draft(act, {
      id: this.id,
      class: 'scraping',
      tool: TOOL,
      description: `One free-tier API key (header) pages through the whole catalogue by cursor and then fetches every product by id, 3-6 requests a second, from one address, through the blocking WAF.`,
      apiKeys: [key],
    });
  },
};

/** A partner's key, leaked, used from 32 addresses in four /24s while the partner keeps using it. */
const stolenKey: ScriptedAttack = {
  id: 'scripted-stolen-key',
  lane: 'waf',
  plan(d, rng) {
    return { startAt: d * (0.3 + rng.next() * 0.3), spanMs: Math.min(3 * 60_000, d * 0.3) };
  },
  async run(ctx, rng, startAt, spanMs) {
    const act = activity(ctx, this.id);
    const victim = ctx.world.apiClients.filter((c) => c.kind === 'partner' && !c.keyInQuery)[2]!;
    const ips: string[] = [];
    for (const net of [11, 12, 13, 14]) for (let h = 0; h < 8; h++) ips.push(`127.77.${net}.${20 + h * 7}`);
    const uas = ['curl/8.5.0', 'python-requests/2.31.0', 'Go-http-client/2.0'];
    await pauseUntil(ctx, ctx.t0 + startAt);
    const end = Date.now() + spanMs;
    await Promise.all(
      ips.map(async (ip, i) => {
        const r = rng.fork(`thief-${i}`);
        await pause(ctx, r.next() * spanMs * 0.7);
        const ua = r.pick(uas);
        const calls = r.int(2, 4);
        for (let k = 0; k < calls && running(ctx, end); k++) {
          const x = r.next();
          const [path, route] =
            x < 0.4
              ? [`/api/products?page=${r.int(1, 24)}`, '/api/products']
              : x < 0.7
                ? [`/api/users/${victim.ownerId}/addresses`, '/api/users/{id}/addresses']
                : [`/api/users/${victim.ownerId}/orders`, '/api/users/{id}/orders'];
          await ctx.client.send({
            lane: this.lane,
            from: ip,
            path,
            activity: act,
            route,
            headers: { 'User-Agent': ua, 'X-API-Key': victim.key, Accept: '*/*' },
          });
          await pause(ctx, r.logNormal(4000, 0.6));
        }
      }),
    );
    return draft(act, {
      id: this.id,
      class: 'stolen_api_key',
      tool: TOOL,
      description: `The API key of ${victim.name} (sent in the X-API-Key header, as the partner does) is used from ${act.ips.size} addresses in four /24s within minutes, reading the catalogue and the owner's addresses and orders, while the partner keeps using it from its own addresses.`,
      apiKeys: [victim.key],
    });
  },
};

/** Someone pastes a partner's key into URLs in a browser. */
const keyInUrl: ScriptedAttack = {
  id: 'scripted-key-in-url',
  lane: 'haproxy',
  plan(d, rng) {
    return { startAt: d * (0.1 + rng.next() * 0.6), spanMs: 60_000 };
  },
  async run(ctx, rng, startAt) {
    const act = activity(ctx, this.id);
    const owner = ctx.world.apiClients.filter((c) => c.kind === 'partner' && !c.keyInQuery)[7]!;
    const ip = '127.41.7.23';
    const ua =
      'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15';
    await pauseUntil(ctx, ctx.t0 + startAt);
    for (const [path, route] of [
      [`/api/products?api_key=${owner.key}`, '/api/products'],
      [`/api/products?api_key=${owner.key}&page=2`, '/api/products'],
      [`/api/products/17?api_key=${owner.key}`, '/api/products/{id}'],
      [`/api/users/${owner.ownerId}/orders?api_key=${owner.key}`, '/api/users/{id}/orders'],
    ] as const) {
      if (!running(ctx)) break;
      await ctx.client.send({
        lane: this.lane,
        from: ip,
        path,
        activity: act,
        route,
        headers: { 'User-Agent': ua, Accept: 'text/html,application/json' },
      });
      await pause(ctx, rng.logNormal(6000, 0.5));
    }
    return draft(act, {
      id: this.id,
      class: 'credential_in_url',
      tool: TOOL,
      description: `The API key of ${owner.name}, which normally travels in the X-API-Key header, is pasted into the query string (?api_key=) of URLs opened in a browser.`,
      apiKeys: [owner.key],
    });
  },
};

export const SCRIPTED_ATTACKS: readonly ScriptedAttack[] = [
  distributedStuffing,
  scraping,
  stolenKey,
  keyInUrl,
];
