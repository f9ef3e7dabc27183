/**
 * Benign traffic for the whole run, from hundreds of loopback addresses: people browsing the
 * shop (some log in), partner API clients each with their own key, batch exporters paging
 * through the catalogue at a steady pace, an office behind one NAT address where many people log
 * in (with the odd typo), mobile app users whose address changes, OAuth service clients, and
 * staff reading basic-auth reports (a few mistype their password). Everything is seeded; every
 * loop ends at the run's deadline and has a count bound.
 *
 * The notable actors (the NAT office, each exporter, the mobile users, the staff) are recorded
 * as `benign` labels: an incident on them is a false positive. Partners that send their key in
 * the query string are recorded as `credential_in_url` (a posture finding, not an attacker).
 */
import type { Rng } from '../samples/generator/prng.ts';
import {
  activity,
  BROWSER_UAS,
  benignAccounts,
  exporterIp,
  type LoginStyle,
  MOBILE_UAS,
  mobileIp,
  NAT_IP,
  partnerIp,
  pause,
  pauseUntil,
  type RunContext,
  residentialIp,
  running,
  SDK_UAS,
  serviceIp,
  staffIp,
  tryLogin,
  typo,
} from './actors.ts';
import type { Lane } from './gateways.ts';
import type { Activity } from './traffic.ts';
import { type Account, PAGE_SIZE } from './world.ts';

const SEARCH_WORDS = [
  'lamp',
  'chair',
  'product 1',
  'desk',
  'kettle',
  'cable',
  'product 42',
  'mug',
  'sofa',
  'charger',
];

/** The lane if it runs, else the first lane that does. */
function laneOr(ctx: RunContext, lane: Lane): Lane {
  if (ctx.client.hasLane(lane)) return lane;
  for (const l of ['waf', 'haproxy', 'waf-detect'] as const) if (ctx.client.hasLane(l)) return l;
  return lane;
}

function bearer(token: string | undefined): Record<string, string> {
  return token === undefined ? {} : { Authorization: `Bearer ${token}` };
}

/** Start every benign actor; resolves when all have stopped (at the deadline). */
export async function runBenign(ctx: RunContext, rng: Rng): Promise<void> {
  await Promise.all([
    browsers(ctx, rng.fork('browsers')),
    partners(ctx, rng.fork('partners')),
    exporters(ctx, rng.fork('exporters')),
    natOffice(ctx, rng.fork('nat')),
    mobileUsers(ctx, rng.fork('mobile')),
    staffReports(ctx, rng.fork('staff')),
    services(ctx, rng.fork('services')),
  ]);
}

// ---- people browsing ----

async function browsers(ctx: RunContext, rng: Rng): Promise<void> {
  const accounts = benignAccounts(ctx.world);
  const visitors: { ip: string; ua: string }[] = [];
  const sessions: Promise<void>[] = [];
  for (let n = 0; n < 5000 && running(ctx); n++) {
    await pause(ctx, rng.exp(60_000 / 14));
    if (!running(ctx)) break;
    const returning = visitors.length > 10 && rng.chance(0.3);
    const v = returning ? rng.pick(visitors) : { ip: residentialIp(rng), ua: rng.pick(BROWSER_UAS) };
    if (!returning) visitors.push(v);
    sessions.push(browseSession(ctx, rng.fork(`session-${n}`), v.ip, v.ua, accounts));
  }
  await Promise.all(sessions);
}

async function browseSession(
  ctx: RunContext,
  rng: Rng,
  ip: string,
  ua: string,
  accounts: Account[],
): Promise<void> {
  const lane = laneOr(ctx, rng.chance(0.88) ? 'waf' : 'haproxy');
  const agent = ctx.client.agent(4);
  const page = (path: string, referer?: string, extra: Record<string, string> = {}) =>
    ctx.client.send({
      lane,
      from: ip,
      path,
      agent,
      headers: {
        'User-Agent': ua,
        Accept: path.startsWith('/api') ? 'application/json' : 'text/html,*/*;q=0.8',
        ...(referer ? { Referer: referer } : {}),
        ...extra,
      },
    });
  await page('/');
  await Promise.all([page('/static/app.css', '/'), page('/static/app.js', '/'), page('/favicon.ico', '/')]);
  let last = '/';
  const views = 1 + rng.poisson(3);
  for (let i = 0; i < views && running(ctx); i++) {
    await pause(ctx, rng.logNormal(5000, 0.8));
    if (!running(ctx)) return;
    const r = rng.next();
    if (r < 0.7) {
      const p = `/products/${rng.int(1, ctx.world.productCount)}`;
      await page(p, last);
      last = p;
    } else if (r < 0.9) {
      await page(`/api/search?q=${encodeURIComponent(rng.pick(SEARCH_WORDS))}`, last);
    } else {
      await ctx.client.send({
        lane,
        from: ip,
        method: 'POST',
        path: '/graphql',
        agent,
        headers: { 'User-Agent': ua, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({
          query: 'query Products($first: Int) { products(first: $first) { id name price } }',
          variables: { first: 12 },
        }),
      });
    }
  }
  if (!rng.chance(0.35) || !running(ctx)) return;
  const account = rng.pick(accounts);
  const style = rng.weighted<LoginStyle>([
    ['json', 6],
    ['form', 2.5],
    ['graphql', 1.5],
  ]);
  const who = { lane, from: ip, ua, agent };
  if (rng.chance(0.06)) {
    await tryLogin(ctx, who, style, account.username, typo(rng, account.password));
    await pause(ctx, rng.logNormal(4000, 0.4));
  }
  const token = await tryLogin(ctx, who, style, account.username, account.password);
  if (token === undefined) return;
  const auth = bearer(token);
  for (const path of [
    `/api/users/${account.id}/addresses`,
    `/api/users/${account.id}/orders`,
    `/api/products?page=${rng.int(1, 3)}`,
  ]) {
    await pause(ctx, rng.logNormal(3000, 0.7));
    if (!running(ctx)) return;
    await page(path, last, auth);
  }
  if (rng.chance(0.3))
    await ctx.client.send({
      lane,
      from: ip,
      method: 'POST',
      path: '/api/logout',
      agent,
      headers: { 'User-Agent': ua, ...auth },
    });
}

// ---- partner API clients, one key each ----

async function partners(ctx: RunContext, rng: Rng): Promise<void> {
  const clients = ctx.world.apiClients.filter((c) => c.kind === 'partner');
  await Promise.all(
    clients.map(async (c, i) => {
      const r = rng.fork(c.name);
      // partners reach the API through the public WAF, the partner entry (WAF detect-only) or HAProxy
      const lane = laneOr(ctx, i % 10 < 4 ? 'waf' : i % 10 < 7 ? 'waf-detect' : 'haproxy');
      const ua = SDK_UAS[i % SDK_UAS.length]!;
      const twoEgress = i % 4 === 1;
      const agent = ctx.client.agent(2);
      const acts: Activity[] = c.keyInQuery ? [activity(ctx, `benign-key-in-query-${c.name}`)] : [];
      const meanGap = r.logNormal(45_000, 0.4);
      await pause(ctx, r.next() * Math.min(60_000, meanGap));
      for (let n = 0; n < 400 && running(ctx); n++) {
        const from = partnerIp(i, twoEgress && r.chance(0.5));
        const calls = r.int(1, 3);
        for (let k = 0; k < calls && running(ctx); k++) {
          const x = r.next();
          const path =
            x < 0.5
              ? `/api/products?page=${r.int(1, 6)}`
              : x < 0.85
                ? `/api/products/${r.int(1, ctx.world.productCount)}`
                : `/api/users/${c.ownerId}/orders`;
          const withKey = c.keyInQuery ? `${path}${path.includes('?') ? '&' : '?'}api_key=${c.key}` : path;
          await ctx.client.send({
            lane,
            from,
            path: withKey,
            agent,
            activity: acts,
            route: path.startsWith('/api/users/')
              ? '/api/users/{id}/orders'
              : path.startsWith('/api/products/')
                ? '/api/products/{id}'
                : '/api/products',
            headers: {
              'User-Agent': ua,
              Accept: 'application/json',
              ...(c.keyInQuery ? {} : { 'X-API-Key': c.key }),
            },
          });
          await pause(ctx, r.logNormal(300, 0.5));
        }
        for (const a of acts) a.apiKeys.add(c.key);
        await pause(ctx, r.exp(meanGap));
      }
    }),
  );
}

// ---- batch exporters: the whole catalogue, page by page, at a steady pace ----

async function exporters(ctx: RunContext, rng: Rng): Promise<void> {
  const list = ctx.world.apiClients.filter((c) => c.kind === 'exporter');
  const duration = ctx.deadline - ctx.t0;
  const every = Math.min(5 * 60_000, Math.max(60_000, duration / 2.2));
  const variants = ['page', 'offset', 'cursor'] as const;
  await Promise.all(
    list.map(async (c, i) => {
      const r = rng.fork(c.name);
      const lane = laneOr(ctx, i === 2 ? 'waf' : 'haproxy');
      const ip = exporterIp(i);
      const ua = `catalog-export/3.1.${i} (+https://partners.example/exporter)`;
      const act = activity(ctx, `benign-exporter-${i + 1}`);
      act.apiKeys.add(c.key);
      const agent = ctx.client.agent(1);
      const variant = variants[i % variants.length]!;
      const pages = Math.ceil(ctx.world.productCount / PAGE_SIZE);
      let next = ctx.t0 + r.next() * Math.min(every, duration * 0.2);
      for (let run = 0; run < 50 && running(ctx); run++) {
        await pauseUntil(ctx, next);
        let cursor: string | null = '';
        for (let p = 1; p <= pages && running(ctx); p++) {
          const path =
            variant === 'page'
              ? `/api/products?page=${p}&per_page=${PAGE_SIZE}`
              : variant === 'offset'
                ? `/api/products?offset=${(p - 1) * PAGE_SIZE}&limit=${PAGE_SIZE}`
                : cursor === ''
                  ? `/api/products?limit=${PAGE_SIZE}`
                  : `/api/products?limit=${PAGE_SIZE}&cursor=${cursor}`;
          const res = await ctx.client.send({
            lane,
            from: ip,
            path,
            agent,
            activity: act,
            route: '/api/products',
            headers: { 'User-Agent': ua, 'X-API-Key': c.key, Accept: 'application/json' },
          });
          if (variant === 'cursor') {
            try {
              cursor = (JSON.parse(res.body) as { next_cursor?: string | null }).next_cursor ?? null;
            } catch {
              cursor = null;
            }
            if (cursor === null) break;
          }
          await pause(ctx, 1500 + r.int(-100, 100));
        }
        next += every;
      }
    }),
  );
}

// ---- an office behind one NAT address: many people log in, a few mistype ----

async function natOffice(ctx: RunContext, rng: Rng): Promise<void> {
  const act = activity(ctx, 'benign-nat-office');
  const people = rng.shuffle(benignAccounts(ctx.world).slice()).slice(0, 50);
  const duration = ctx.deadline - ctx.t0;
  const lane = laneOr(ctx, 'waf');
  await Promise.all(
    people.map(async (a, i) => {
      const r = rng.fork(`person-${i}`);
      await pause(ctx, r.next() * duration * 0.9);
      if (!running(ctx)) return;
      const ua = r.pick(BROWSER_UAS.slice(0, 6));
      const agent = ctx.client.agent(2);
      const who = { lane, from: NAT_IP, ua, agent, activity: act };
      act.users.add(a.username);
      await ctx.client.send({
        lane,
        from: NAT_IP,
        path: '/',
        agent,
        activity: act,
        headers: { 'User-Agent': ua },
      });
      const typos = r.chance(0.12) ? (r.chance(0.25) ? 2 : 1) : 0;
      for (let t = 0; t < typos; t++) {
        await pause(ctx, r.logNormal(3500, 0.4));
        await tryLogin(ctx, who, 'form', a.username, typo(r, a.password));
      }
      await pause(ctx, r.logNormal(3000, 0.4));
      const token = await tryLogin(ctx, who, 'form', a.username, a.password);
      if (token === undefined) return;
      const calls = r.int(2, 5);
      for (let k = 0; k < calls && running(ctx); k++) {
        await pause(ctx, r.logNormal(6000, 0.6));
        const path = r.chance(0.5) ? `/api/users/${a.id}/orders` : `/api/products?page=${r.int(1, 4)}`;
        await ctx.client.send({
          lane,
          from: NAT_IP,
          path,
          agent,
          activity: act,
          route: path.startsWith('/api/users/') ? '/api/users/{id}/orders' : '/api/products',
          headers: { 'User-Agent': ua, ...bearer(token), Accept: 'application/json' },
        });
      }
    }),
  );
}

// ---- mobile app users on carrier NAT: the address changes between requests ----

async function mobileUsers(ctx: RunContext, rng: Rng): Promise<void> {
  const act = activity(ctx, 'benign-mobile');
  const users = rng.shuffle(benignAccounts(ctx.world).slice(50)).slice(0, 20);
  const duration = ctx.deadline - ctx.t0;
  const lane = laneOr(ctx, 'waf');
  await Promise.all(
    users.map(async (a, i) => {
      const r = rng.fork(`mobile-${i}`);
      await pause(ctx, r.next() * duration * 0.3);
      if (!running(ctx)) return;
      const ua = MOBILE_UAS[i % MOBILE_UAS.length]!;
      let ip = mobileIp(r);
      act.users.add(a.username);
      const token = await tryLogin(
        ctx,
        { lane, from: ip, ua, activity: act },
        r.chance(0.6) ? 'oauth-password' : 'json',
        a.username,
        a.password,
      );
      if (token === undefined) return;
      for (let n = 0; n < 300 && running(ctx); n++) {
        await pause(ctx, r.logNormal(20_000, 0.7));
        if (r.chance(0.35)) ip = mobileIp(r);
        const calls = r.int(1, 3);
        for (let k = 0; k < calls && running(ctx); k++) {
          const x = r.next();
          const path =
            x < 0.4
              ? `/api/products?page=${r.int(1, 5)}`
              : x < 0.7
                ? `/api/products/${r.int(1, ctx.world.productCount)}`
                : x < 0.85
                  ? `/api/users/${a.id}/orders`
                  : `/api/users/${a.id}/addresses`;
          const route = path.startsWith('/api/users/')
            ? `/api/users/{id}/${path.endsWith('orders') ? 'orders' : 'addresses'}`
            : path.startsWith('/api/products/')
              ? '/api/products/{id}'
              : '/api/products';
          await ctx.client.send({
            lane,
            from: ip,
            path,
            activity: act,
            route,
            headers: { 'User-Agent': ua, ...bearer(token), Accept: 'application/json' },
          });
          await pause(ctx, r.logNormal(400, 0.5));
        }
      }
    }),
  );
}

// ---- staff reading basic-auth reports; some mistype their password ----

async function staffReports(ctx: RunContext, rng: Rng): Promise<void> {
  const act = activity(ctx, 'benign-basic-auth-staff');
  const staff = ctx.world.staff.filter((s) => s !== ctx.world.basicBruteVictim).slice(0, 6);
  const duration = ctx.deadline - ctx.t0;
  await Promise.all(
    staff.map(async (s, i) => {
      const r = rng.fork(`staff-${i}`);
      const lane = laneOr(ctx, i % 2 === 0 ? 'waf-detect' : 'haproxy');
      const ua = BROWSER_UAS[i % 6]!;
      const ip = staffIp(i);
      act.users.add(s.username);
      const visits = r.int(2, 4);
      for (let v = 0; v < visits && running(ctx); v++) {
        await pause(ctx, r.next() * (duration / visits));
        if (!running(ctx)) return;
        const get = (auth?: string) =>
          ctx.client.send({
            lane,
            from: ip,
            path: '/basic/reports',
            activity: act,
            headers: {
              'User-Agent': ua,
              Accept: 'text/html,application/json',
              ...(auth === undefined
                ? {}
                : { Authorization: `Basic ${Buffer.from(auth).toString('base64')}` }),
            },
          });
        // a browser asks without credentials first, gets the 401 challenge, then sends them
        await get();
        if (v === 0 && i < 4) {
          const wrong = i === 3 ? 2 : 1;
          for (let t = 0; t < wrong; t++) {
            await pause(ctx, r.logNormal(4000, 0.4));
            await get(`${s.username}:${typo(r, s.password)}`);
          }
        }
        await pause(ctx, r.logNormal(3000, 0.4));
        await get(`${s.username}:${s.password}`);
      }
    }),
  );
}

// ---- OAuth service clients: client-credentials tokens, then catalogue reads ----

async function services(ctx: RunContext, rng: Rng): Promise<void> {
  const lane = laneOr(ctx, 'waf');
  await Promise.all(
    ctx.world.oauthClients.map(async (c, i) => {
      const r = rng.fork(c.clientId);
      const ip = serviceIp(i);
      const ua = `${c.clientId}/2.0 (Go-http-client/1.1)`;
      const agent = ctx.client.agent(1);
      await pause(ctx, r.next() * 30_000);
      let token: string | undefined;
      let tokenAt = 0;
      for (let n = 0; n < 300 && running(ctx); n++) {
        if (token === undefined || Date.now() - tokenAt > 10 * 60_000) {
          const res = await ctx.client.send({
            lane,
            from: ip,
            method: 'POST',
            path: '/oauth/token',
            agent,
            headers: {
              'User-Agent': ua,
              'Content-Type': 'application/x-www-form-urlencoded',
              Authorization: `Basic ${Buffer.from(`${c.clientId}:${c.secret}`).toString('base64')}`,
            },
            body: 'grant_type=client_credentials&scope=catalog',
          });
          try {
            token = (JSON.parse(res.body) as { access_token?: string }).access_token;
          } catch {
            token = undefined;
          }
          tokenAt = Date.now();
        }
        await ctx.client.send({
          lane,
          from: ip,
          path: `/api/products?page=${r.int(1, 8)}`,
          agent,
          headers: { 'User-Agent': ua, ...bearer(token) },
        });
        await pause(ctx, r.logNormal(40_000, 0.5));
      }
    }),
  );
}
