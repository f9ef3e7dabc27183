/**
 * The benign traffic model: the people and programs using the shop's API and storefront, and
 * the requests they make. Users browse in sessions (log in, sometimes mistype, look at their
 * orders and products, check out); partner integrations call with API keys from fixed cloud
 * egress addresses around the clock; anonymous visitors load the storefront behind an ALB with
 * AWS WAF. Rates follow a diurnal curve. A sparse history before the scenario gives the
 * first-seen (30 days) and baseline (7 days) rules what they need.
 */
import { type AsInfo, CONSUMER_NETWORKS, distinctIps, NETWORKS, network, randomIp } from './network.ts';
import type { Rng } from './prng.ts';
import type { Consumer, Req } from './types.ts';

export const API_HOST = 'api.shop.example';
export const WWW_HOST = 'www.shop.example';
export const MIN = 60_000;
export const HOUR = 60 * MIN;
export const DAY = 24 * HOUR;

export const BROWSER_UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.6367.82 Mobile Safari/537.36',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.2478.80',
  'ShopApp/4.12.1 (iPhone; iOS 17.4.1; Scale/3.00)',
  'ShopApp/4.12.0 (Android 14; SM-S918B)',
];

const FIRST = [
  'anna',
  'ben',
  'carla',
  'david',
  'elena',
  'farid',
  'grace',
  'hugo',
  'ines',
  'jamal',
  'kim',
  'lena',
  'marco',
  'nina',
  'omar',
  'paula',
  'quinn',
  'rosa',
  'sam',
  'tara',
  'umar',
  'vera',
  'wei',
  'xena',
  'yusuf',
  'zoe',
  'liam',
  'mia',
  'noah',
  'emma',
  'lucas',
  'sofia',
  'ahmed',
  'priya',
  'kenji',
  'olga',
];
const LAST = [
  'smith',
  'garcia',
  'muller',
  'rossi',
  'dubois',
  'khan',
  'nguyen',
  'kowalski',
  'silva',
  'tanaka',
  'jensen',
  'okafor',
  'novak',
  'ivanova',
  'cohen',
  'murphy',
  'haddad',
  'schmidt',
  'patel',
  'lopez',
];
const DOMAINS = [
  'gmail.com',
  'outlook.com',
  'yahoo.com',
  'icloud.com',
  'proton.me',
  'gmx.de',
  'orange.fr',
  'btinternet.com',
];

export interface User {
  email: string;
  id: string;
  password: string;
  net: AsInfo;
  ip: string;
  ua: string;
  orders: number[];
  consumer: Consumer;
}

export interface Partner {
  name: string;
  key: { id: string; raw: string };
  consumer: Consumer;
  /** Egress networks and addresses. */
  egress: { net: AsInfo; ips: string[] }[];
  ua: string;
  /** Requests per minute, around the clock. */
  rpm: number;
  routes: [() => { method: string; path: string; query?: string; status: number }, number][];
  /** Also fetches OAuth tokens with client credentials. */
  oauth?: { clientId: string; secret: string };
}

export interface World {
  users: User[];
  /** Users behind one corporate NAT address. */
  natUsers: User[];
  natIp: string;
  partners: Partner[];
  byName: Map<string, Partner>;
}

function makeUser(rng: Rng, i: number, net: AsInfo, ip?: string): User {
  const first = rng.pick(FIRST);
  const last = rng.pick(LAST);
  const email = `${first}.${last}${i}@${rng.pick(DOMAINS)}`;
  const id = `u-${10000 + i}`;
  const orders: number[] = [];
  const n = rng.int(2, 25);
  for (let k = 0; k < n; k++) orders.push(100000 + i * 40 + k);
  return {
    email,
    id,
    password: rng.base62(12),
    net,
    ip: ip ?? randomIp(rng, net),
    ua: rng.pick(BROWSER_UAS),
    orders,
    consumer: {
      id: `c0ffee00-0000-4000-8000-${String(10000 + i).padStart(12, '0')}`,
      username: email,
      customId: id,
    },
  };
}

const SKU = (rng: Rng) => `SKU-${rng.int(10000, 99999)}`;

export function buildWorld(rng: Rng, userCount: number): World {
  const users: User[] = [];
  const taken = new Set<string>();
  const homeNets: [AsInfo, number][] = CONSUMER_NETWORKS.map((n) => [
    n,
    n.country === 'US'
      ? 6
      : n.country === 'GB' || n.country === 'DE' || n.country === 'FR' || n.country === 'CA'
        ? 3
        : 1,
  ]);
  for (let i = 0; i < userCount; i++) {
    const u = makeUser(rng, i, rng.weighted(homeNets));
    if (taken.has(u.ip)) continue;
    taken.add(u.ip);
    users.push(u);
  }
  const corp = network(3356);
  const natIp = '4.14.90.10';
  const natUsers: User[] = [];
  for (let i = 0; i < 60; i++) natUsers.push(makeUser(rng, 5000 + i, corp, natIp));

  const p = (
    name: string,
    egress: { net: AsInfo; n: number }[],
    ua: string,
    rpm: number,
    routes: Partner['routes'],
    oauth = false,
  ): Partner => ({
    name,
    key: { id: `key_${name.replace(/-/g, '_')}`, raw: `gw_live_${rng.base62(32)}` },
    consumer: { id: `c0ffee00-0000-4000-9000-${rng.hex(12)}`, username: name, customId: `app-${name}` },
    egress: egress.map((e) => ({ net: e.net, ips: distinctIps(rng, e.net, e.n, taken) })),
    ua,
    rpm,
    routes,
    ...(oauth ? { oauth: { clientId: `cli_${name.replace(/-/g, '')}`, secret: rng.base62(40) } } : {}),
  });
  const aws = network(16509, 'US');
  const gcp = network(15169);
  const azure = network(8075);
  const page = (max: number) => String(1 + Math.floor(rngPageBias(rng) * max));
  const ordersList = () => ({
    method: 'GET',
    path: '/api/v1/orders',
    query: `updated_since=${'2024-01-01T00:00:00Z'.replace(/:/g, '%3A')}&page=${page(20)}&per_page=100`,
    status: 200,
  });
  const orderGet = () => ({
    method: 'GET',
    path: `/api/v1/orders/${rng.int(100000, 130000)}`,
    status: rng.chance(0.03) ? 404 : 200,
  });
  const invList = () => ({
    method: 'GET',
    path: '/api/v1/inventory',
    query: `page=${page(30)}`,
    status: 200,
  });
  const invPut = () => ({
    method: 'PUT',
    path: `/api/v1/inventory/${SKU(rng)}`,
    status: rng.chance(0.02) ? 409 : 200,
  });
  const prodList = () => ({
    method: 'GET',
    path: '/api/v1/products',
    query: `page=${page(3)}&per_page=50`,
    status: 200,
  });
  const prodGet = () => ({
    method: 'GET',
    path: `/api/v1/products/${rng.int(2000, 48000)}`,
    status: rng.chance(0.02) ? 404 : 200,
  });
  const partners = [
    p(
      'acme-erp',
      [{ net: aws, n: 2 }],
      'python-requests/2.31.0',
      3,
      [
        [ordersList, 3],
        [orderGet, 5],
        [invPut, 2],
      ],
      true,
    ),
    p('globex-wms', [{ net: azure, n: 2 }], 'Go-http-client/2.0', 2.5, [
      [invList, 4],
      [invPut, 4],
    ]),
    p(
      'initech-bi',
      [{ net: gcp, n: 1 }],
      'python-requests/2.31.0',
      1.2,
      [
        [ordersList, 5],
        [orderGet, 2],
      ],
      true,
    ),
    // Near-threshold: multi-region egress, six addresses in two networks of one country.
    p(
      'umbrella-fulfil',
      [
        { net: aws, n: 3 },
        { net: gcp, n: 3 },
      ],
      'okhttp/4.12.0',
      3,
      [
        [orderGet, 5],
        [ordersList, 2],
        [invList, 1],
      ],
    ),
    p('hooli-marketplace', [{ net: gcp, n: 2 }], 'node-fetch/3.3.2', 2, [
      [prodGet, 5],
      [prodList, 2],
      [invList, 2],
    ]),
    p('stark-pos', [{ net: azure, n: 1 }], 'Apache-HttpClient/5.2.1 (Java/17.0.10)', 1.5, [
      [invPut, 3],
      [orderGet, 2],
    ]),
    p(
      'wayne-analytics',
      [{ net: network(16509, 'US'), n: 1 }],
      'python-requests/2.31.0',
      0.6,
      [[ordersList, 1]],
      true,
    ),
    // Polls the product list every 10 minutes (the rate-abuse victim has a week of this).
    p('catalog-sync', [{ net: network(14061), n: 1 }], 'catalog-sync/2.3 (+https://catalogsync.example)', 0, [
      [prodList, 1],
    ]),
    p('pricewatch-io', [{ net: network(24940), n: 1 }], 'PriceWatchBot/1.4', 0.4, [
      [prodGet, 3],
      [prodList, 1],
    ]),
    p('legacy-reports', [{ net: network(3356), n: 1 }], 'curl/8.4.0', 0.2, [
      [() => ({ method: 'GET', path: '/api/v1/reports/daily', query: 'format=csv', status: 200 }), 1],
    ]),
    p('tyrell-crm', [{ net: network(2856), n: 1 }], 'Ruby', 0.8, [
      [orderGet, 2],
      [() => ({ method: 'GET', path: `/api/v1/users/u-${rng.int(10000, 10400)}`, status: 200 }), 1],
    ]),
    p('soylent-mail', [{ net: network(16276), n: 1 }], 'Go-http-client/1.1', 0.7, [
      [() => ({ method: 'GET', path: `/api/v1/users/u-${rng.int(10000, 10400)}`, status: 200 }), 1],
    ]),
    p('oscorp-tax', [{ net: network(3320), n: 1 }], 'Java/17.0.10', 0.5, [[orderGet, 1]]),
    p(
      'cyberdyne-ml',
      [{ net: aws, n: 1 }],
      'python-requests/2.31.0',
      1,
      [
        [prodGet, 2],
        [prodList, 1],
      ],
      true,
    ),
    p('duff-loyalty', [{ net: network(7018), n: 1 }], 'axios/1.6.8', 0.5, [
      [() => ({ method: 'GET', path: `/api/v1/users/u-${rng.int(10000, 10400)}`, status: 200 }), 1],
    ]),
    p('vandelay-import', [{ net: network(6830), n: 1 }], 'PostmanRuntime/7.37.3', 0.3, [
      [invPut, 1],
      [invList, 1],
    ]),
  ];
  return { users, natUsers, natIp, partners, byName: new Map(partners.map((x) => [x.name, x])) };
}

/** Most list requests are for early pages. */
function rngPageBias(rng: Rng): number {
  const x = rng.next();
  return x * x;
}

/** Diurnal factor (mean about 1): quiet at 03:00 UTC, busiest at 15:00 UTC. */
export function diurnal(t: number): number {
  const h = (t % DAY) / HOUR;
  return 0.35 + 1.3 * 0.5 * (1 - Math.cos((2 * Math.PI * (h - 3)) / 24));
}

function bytes(rng: Rng, median: number): number {
  return Math.max(0, Math.round(rng.logNormal(median, 0.6)));
}

function latency(rng: Rng, median: number): number {
  return Math.max(1, Math.round(rng.logNormal(median, 0.5)));
}

export function kongReq(
  rng: Rng,
  base: Partial<Req> & Pick<Req, 't' | 'ip' | 'method' | 'path' | 'status' | 'ua' | 'tag'>,
): Req {
  return {
    fmt: 'kong.http_log',
    host: API_HOST,
    bytesIn: base.method === 'GET' ? rng.int(180, 420) : rng.int(300, 1400),
    bytesOut: base.status >= 400 ? rng.int(60, 180) : bytes(rng, base.method === 'GET' ? 2400 : 600),
    latencyMs: latency(rng, base.status >= 500 ? 3000 : base.path.includes('login') ? 180 : 45),
    ...base,
  };
}

export function loginReq(
  rng: Rng,
  t: number,
  ip: string,
  ua: string,
  user: string,
  password: string,
  ok: boolean,
  tag: string,
  consumer?: Consumer,
): Req {
  return kongReq(rng, {
    t,
    ip,
    ua,
    method: 'POST',
    path: '/api/v1/login',
    status: ok ? 200 : 401,
    basic: { user, password },
    tag,
    ...(ok && consumer ? { consumer } : {}),
  });
}

/** A user's session: log in (maybe after mistyping), browse, maybe check out. */
export function session(
  rng: Rng,
  u: User,
  t0: number,
  tag: string,
  out: Req[],
  opts: { mistypes?: number } = {},
): number {
  let t = t0;
  const mistypes =
    opts.mistypes ??
    (rng.chance(0.06)
      ? rng.weighted([
          [1, 6],
          [2, 2],
          [3, 1],
        ] as const)
      : 0);
  for (let i = 0; i < mistypes; i++) {
    out.push(loginReq(rng, t, u.ip, u.ua, u.email, rng.base62(10), false, tag));
    t += rng.int(4000, 20000);
  }
  out.push(loginReq(rng, t, u.ip, u.ua, u.email, u.password, true, tag, u.consumer));
  const sid = rng.base62(24);
  const steps = rng.int(2, 14);
  const req = (method: string, path: string, status: number, query?: string) => {
    t += Math.round(rng.exp(9000)) + 400;
    out.push(
      kongReq(rng, {
        t,
        ip: u.ip,
        ua: u.ua,
        method,
        path,
        status,
        session: sid,
        consumer: u.consumer,
        tag,
        ...(query ? { query } : {}),
      }),
    );
  };
  req('GET', '/api/v1/me', 200);
  for (let s = 0; s < steps; s++) {
    const what = rng.weighted([
      ['orders', 3],
      ['order', 4],
      ['products', 4],
      ['product', 6],
      ['cart', 2],
      ['profile', 1],
    ] as const);
    if (what === 'orders') req('GET', '/api/v1/orders', 200, `page=${rng.int(1, 3)}`);
    else if (what === 'order')
      req('GET', `/api/v1/orders/${rng.pick(u.orders)}`, rng.chance(0.01) ? 404 : 200);
    else if (what === 'products')
      req(
        'GET',
        '/api/v1/products',
        200,
        `page=${rng.int(1, 6)}&category=${rng.pick(['shoes', 'garden', 'kitchen', 'toys', 'books'])}`,
      );
    else if (what === 'product')
      req('GET', `/api/v1/products/${rng.int(2000, 48000)}`, rng.chance(0.02) ? 404 : 200);
    else if (what === 'cart') req('POST', '/api/v1/cart/items', rng.chance(0.03) ? 422 : 201);
    else req(rng.chance(0.7) ? 'GET' : 'PUT', `/api/v1/users/${u.id}`, 200);
  }
  if (rng.chance(0.25)) req('POST', '/api/v1/checkout', rng.chance(0.004) ? 502 : 201);
  if (rng.chance(0.3)) req('POST', '/api/v1/logout', 204);
  return t;
}

export function partnerCall(
  rng: Rng,
  p: Partner,
  t: number,
  tag: string,
  egress?: { net: AsInfo; ips: string[] },
): Req {
  const eg = egress ?? rng.pick(p.egress);
  const r = rng.weighted(p.routes)();
  return kongReq(rng, {
    t,
    ip: rng.pick(eg.ips),
    ua: p.ua,
    method: r.method,
    path: r.path,
    ...(r.query ? { query: r.query } : {}),
    status: r.status,
    apiKey: { ...p.key, in: 'header' },
    consumer: p.consumer,
    tag,
  });
}

export function oauthCall(
  rng: Rng,
  p: Partner,
  t: number,
  tag: string,
  egress?: { net: AsInfo; ips: string[] },
): Req {
  const eg = egress ?? rng.pick(p.egress);
  return kongReq(rng, {
    t,
    ip: rng.pick(eg.ips),
    ua: p.ua,
    method: 'POST',
    path: '/oauth/token',
    status: 200,
    contentType: 'application/x-www-form-urlencoded',
    basic: { user: p.oauth!.clientId, password: p.oauth!.secret },
    tag,
  });
}

const STATIC = [
  '/static/js/app.7f3a9c1e.js',
  '/static/js/vendor.2b8d4f60.js',
  '/static/css/main.91c0e2ab.css',
  '/static/img/logo.svg',
  '/favicon.ico',
];
const SLUGS = [
  'trail-running-shoe-x2',
  'cast-iron-skillet-28cm',
  'wooden-train-set',
  'garden-hose-reel',
  'noise-cancelling-headphones',
  'espresso-machine-pro',
  'yoga-mat-eco',
  'led-desk-lamp',
  'kids-rain-jacket',
  'board-game-classic',
];

/** A storefront visitor: a page and its assets, through the ALB (AWS WAF allows). */
export function webVisit(rng: Rng, t0: number, ip: string, ua: string, tag: string, out: Req[]): void {
  let t = t0;
  const pages = rng.int(1, 5);
  const alb = (path: string, status: number, query?: string, out2 = out) => {
    out2.push({
      t,
      fmt: 'aws.alb',
      ip,
      method: 'GET',
      host: WWW_HOST,
      path,
      ...(query ? { query } : {}),
      status,
      ua,
      bytesIn: rng.int(300, 900),
      bytesOut: status === 304 ? 0 : bytes(rng, path.startsWith('/static') ? 40000 : 18000),
      latencyMs: latency(rng, 35),
      albWaf: 'allow',
      tag,
    });
  };
  for (let i = 0; i < pages; i++) {
    const kind = rng.weighted([
      ['home', 2],
      ['product', 5],
      ['search', 2],
      ['cart', 1],
      ['missing', 0.3],
    ] as const);
    if (kind === 'home') alb('/', 200);
    else if (kind === 'product') alb(`/products/${rng.pick(SLUGS)}`, 200);
    else if (kind === 'search')
      alb('/search', 200, `q=${rng.pick(['shoes', 'skillet', 'lamp', 'jacket', 'yoga+mat', 'headphones'])}`);
    else if (kind === 'cart') alb('/cart', 200);
    else alb(`/products/${rng.pick(SLUGS)}-old`, 404);
    if (i === 0 || rng.chance(0.2)) {
      for (const s of STATIC) {
        t += rng.int(20, 200);
        alb(s, rng.chance(0.6) ? 304 : 200);
      }
    }
    t += Math.round(rng.exp(20000)) + 1000;
  }
}

/** Every network a benign visitor may come from, weighted towards the shop's markets. */
export function visitorNet(rng: Rng): AsInfo {
  return rng.weighted(
    CONSUMER_NETWORKS.map(
      (n) => [n, n.country === 'US' ? 5 : n.country === 'GB' || n.country === 'DE' ? 2 : 1] as const,
    ),
  );
}

export { NETWORKS };
