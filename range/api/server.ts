/**
 * The range's test API: a small shop API with the authentication styles and object routes the
 * detections care about. Node's http module only, no framework. It behaves like a careful
 * backend (object-level authorisation is enforced: other users' objects answer 403), so what the
 * logs show is the attackers trying, not a vulnerable app giving in.
 *
 * Routes (see range/README.md): /health, /, /static/*, /products/{id}, /api/search,
 * POST /api/login (form or JSON body), POST /api/logout, POST /oauth/token (client_credentials,
 * password), GET /basic/reports (basic auth), /api/users/{id}/addresses|orders, /api/products
 * (?page= | ?offset=&limit= | ?cursor=), /api/products/{id}, POST /graphql (queries and a login
 * mutation), /api/fail?code=500|503.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { Rng } from '../../samples/generator/prng.ts';
import { type Account, PAGE_SIZE, type World } from '../world.ts';

const MAX_BODY = 64 * 1024;

interface Caller {
  /** The account acting (session token, or the owner of the API key). */
  account?: Account;
  /** The API client whose key was presented. */
  client?: string;
  /** Any valid credential: an API key, a user token or an OAuth client token. */
  authenticated: boolean;
}

function b64url(s: string | Buffer): string {
  return Buffer.from(s).toString('base64url');
}

/** An HS256 JWT (the shape real APIs hand out; its claims are readable by anyone). */
export function signToken(secret: string, claims: Record<string, unknown>): string {
  const head = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
  const body = b64url(JSON.stringify(claims));
  const sig = createHmac('sha256', secret).update(`${head}.${body}`).digest('base64url');
  return `${head}.${body}.${sig}`;
}

function verifyToken(secret: string, token: string): Record<string, unknown> | undefined {
  const parts = token.split('.');
  if (parts.length !== 3) return undefined;
  const want = createHmac('sha256', secret).update(`${parts[0]}.${parts[1]}`).digest();
  const got = Buffer.from(parts[2]!, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8')) as Record<
      string,
      unknown
    >;
    if (typeof claims.exp === 'number' && claims.exp * 1000 < Date.now()) return undefined;
    return claims;
  } catch {
    return undefined;
  }
}

const PAGE_HTML = (title: string, body: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${title} · Range Shop</title>` +
  `<link rel="stylesheet" href="/static/app.css"><script defer src="/static/app.js"></script></head>` +
  `<body><header><a href="/">Range Shop</a><form action="/api/search"><input name="q"></form></header>` +
  `<main>${body}</main><footer>© Range Shop</footer></body></html>`;

export function createRangeApi(world: World): Server {
  const byName = new Map(world.accounts.map((a) => [a.username, a]));
  const byId = new Map(world.accounts.map((a) => [a.id, a]));
  const staff = new Map(world.staff.map((a) => [a.username, a]));
  const keys = new Map(world.apiClients.map((c) => [c.key, c]));
  const oauth = new Map(world.oauthClients.map((c) => [c.clientId, c]));
  const latency = new Rng(world.seed).fork('api-latency');
  const products = Array.from({ length: world.productCount }, (_, i) => ({
    id: i + 1,
    sku: `SKU-${String(i + 1).padStart(5, '0')}`,
    name: `Product ${i + 1}`,
    price: Math.round((5 + ((i * 7919) % 500)) * 100) / 100,
    stock: (i * 31) % 97,
  }));

  function issue(account: Account, scope: string): string {
    const now = Math.floor(Date.now() / 1000);
    return signToken(world.tokenSecret, {
      sub: account.username,
      uid: account.id,
      scope,
      iat: now,
      exp: now + 3600,
    });
  }

  function caller(req: IncomingMessage, query: URLSearchParams): Caller {
    const out: Caller = { authenticated: false };
    const key = header(req, 'x-api-key') ?? query.get('api_key') ?? undefined;
    if (key !== undefined) {
      const c = keys.get(key);
      if (c !== undefined) {
        out.client = c.name;
        out.account = byId.get(c.ownerId);
        out.authenticated = true;
      }
    }
    const auth = header(req, 'authorization');
    if (auth?.startsWith('Bearer ')) {
      const claims = verifyToken(world.tokenSecret, auth.slice(7).trim());
      if (claims !== undefined) out.authenticated = true;
      if (claims !== undefined && typeof claims.uid === 'number')
        out.account = byId.get(claims.uid) ?? out.account;
    }
    return out;
  }

  function route(req: IncomingMessage, res: ServerResponse, body: string): Sent {
    const url = new URL(req.url ?? '/', 'http://range.local');
    const path = url.pathname;
    const q = url.searchParams;
    const method = req.method ?? 'GET';

    if (path === '/health') return json(res, 200, { ok: true });
    if (method === 'GET' && path === '/') {
      return html(
        res,
        200,
        PAGE_HTML(
          'Home',
          products
            .slice(0, 12)
            .map((p) => `<a href="/products/${p.id}">${p.name}</a>`)
            .join(''),
        ),
      );
    }
    if (method === 'GET' && path === '/static/app.js')
      return send(res, 200, 'application/javascript', 'console.log("shop");'.repeat(120));
    if (method === 'GET' && path === '/static/app.css')
      return send(res, 200, 'text/css', 'body{font-family:sans-serif}'.repeat(80));
    if (method === 'GET' && path === '/favicon.ico') return send(res, 200, 'image/x-icon', 'ICO'.repeat(100));
    let m = /^\/products\/(\d+)$/.exec(path);
    if (method === 'GET' && m) {
      const p = products[Number(m[1]) - 1];
      return p === undefined
        ? html(res, 404, PAGE_HTML('Not found', 'No such product'))
        : html(res, 200, PAGE_HTML(p.name, `<h1>${p.name}</h1><p>${p.price} EUR</p>`));
    }
    if (method === 'GET' && path === '/api/search') {
      const term = (q.get('q') ?? '').toLowerCase();
      const hits = products.filter((p) => p.name.toLowerCase().includes(term)).slice(0, 10);
      return json(res, 200, { q: term, items: hits });
    }
    if (path === '/api/login') {
      if (method !== 'POST') return json(res, 405, { error: 'method not allowed' });
      const f = formOrJson(req, body);
      const username = str(f.username);
      const password = str(f.password);
      if (username === undefined || password === undefined)
        return json(res, 400, { error: 'username and password are required' });
      const a = byName.get(username);
      if (a === undefined || a.password !== password) return json(res, 401, { error: 'invalid credentials' });
      return json(res, 200, { token: issue(a, 'shop'), user_id: a.id, expires_in: 3600 });
    }
    if (path === '/api/logout' && method === 'POST') return send(res, 204, 'text/plain', '');
    if (path === '/oauth/token') {
      if (method !== 'POST') return json(res, 405, { error: 'method not allowed' });
      const f = formOrJson(req, body);
      const grant = str(f.grant_type);
      if (grant === 'client_credentials') {
        let id = str(f.client_id);
        let secret = str(f.client_secret);
        const basic = basicAuth(req);
        if (basic !== undefined) [id, secret] = basic;
        const c = id === undefined ? undefined : oauth.get(id);
        if (c === undefined || c.secret !== secret)
          return json(res, 401, { error: 'invalid_client' }, { 'WWW-Authenticate': 'Basic realm="oauth"' });
        return json(res, 200, {
          access_token: signToken(world.tokenSecret, {
            sub: c.clientId,
            client_id: c.clientId,
            scope: 'catalog',
            exp: Math.floor(Date.now() / 1000) + 3600,
          }),
          token_type: 'Bearer',
          expires_in: 3600,
        });
      }
      if (grant === 'password') {
        const a = byName.get(str(f.username) ?? '');
        if (a === undefined || a.password !== str(f.password))
          return json(res, 400, { error: 'invalid_grant' });
        return json(res, 200, { access_token: issue(a, 'shop'), token_type: 'Bearer', expires_in: 3600 });
      }
      return json(res, 400, { error: 'unsupported_grant_type' });
    }
    if (path === '/basic/reports' || path.startsWith('/basic/reports/')) {
      const b = basicAuth(req);
      const s = b === undefined ? undefined : staff.get(b[0]);
      if (s === undefined || s.password !== b![1])
        return json(
          res,
          401,
          { error: 'authentication required' },
          { 'WWW-Authenticate': 'Basic realm="reports"' },
        );
      return json(res, 200, {
        user: s.username,
        reports: ['2026-q1-sales', '2026-q2-sales', 'inventory', 'returns'].map((r) => ({
          id: r,
          url: `/basic/reports/${r}`,
        })),
      });
    }
    m = /^\/api\/users\/([^/]+)\/(addresses|orders)$/.exec(path);
    if (m && method === 'GET') {
      const who = caller(req, q);
      if (who.account === undefined) return json(res, 401, { error: 'authentication required' });
      if (!/^\d{1,9}$/.test(m[1]!)) return json(res, 400, { error: 'user id must be a number' });
      const id = Number(m[1]);
      if (!byId.has(id)) return json(res, 404, { error: 'no such user' });
      if (id !== who.account.id) return json(res, 403, { error: 'forbidden' });
      return m[2] === 'addresses'
        ? json(res, 200, {
            user_id: id,
            addresses: [{ street: `${id} Main Street`, city: 'Springfield', zip: String(10000 + id) }],
          })
        : json(res, 200, {
            user_id: id,
            orders: Array.from({ length: id % 4 }, (_, i) => ({ id: `o-${id}-${i}`, total: 10 + i })),
          });
    }
    if (path === '/api/products' && method === 'GET') {
      if (!caller(req, q).authenticated) return json(res, 401, { error: 'missing or invalid API key' });
      const limitParam = q.get('limit') ?? q.get('per_page');
      const limit = limitParam === null ? PAGE_SIZE : intParam(limitParam);
      if (limit === undefined || limit < 1 || limit > 100)
        return json(res, 400, { error: 'limit must be 1..100' });
      let offset = 0;
      if (q.has('cursor')) {
        const c = Buffer.from(q.get('cursor') ?? '', 'base64url').toString('utf8');
        const n = /^o:(\d+)$/.exec(c);
        if (!n) return json(res, 400, { error: 'invalid cursor' });
        offset = Number(n[1]);
      } else if (q.has('offset')) {
        const o = intParam(q.get('offset'));
        if (o === undefined) return json(res, 400, { error: 'offset must be an integer' });
        offset = o;
      } else if (q.has('page')) {
        const p = intParam(q.get('page'));
        if (p === undefined || p < 1) return json(res, 400, { error: 'page must be a positive integer' });
        offset = (p - 1) * limit;
      }
      const items = products.slice(offset, offset + limit);
      const next =
        offset + limit < products.length ? Buffer.from(`o:${offset + limit}`).toString('base64url') : null;
      return json(res, 200, { total: products.length, offset, limit, items, next_cursor: next });
    }
    m = /^\/api\/products\/([^/]+)$/.exec(path);
    if (m && method === 'GET') {
      if (!caller(req, q).authenticated) return json(res, 401, { error: 'missing or invalid API key' });
      const p = /^\d+$/.test(m[1]!) ? products[Number(m[1]) - 1] : undefined;
      return p === undefined ? json(res, 404, { error: 'no such product' }) : json(res, 200, p);
    }
    if (path === '/graphql') {
      if (method !== 'POST') return json(res, 405, { errors: [{ message: 'use POST' }] });
      const f = formOrJson(req, body);
      const query = str(f.query);
      if (query === undefined) return json(res, 400, { errors: [{ message: 'no query' }] });
      const vars =
        typeof f.variables === 'object' && f.variables !== null
          ? (f.variables as Record<string, unknown>)
          : {};
      if (/\bmutation\b[\s\S]*\blogin\s*\(/.test(query)) {
        const a = byName.get(str(vars.username) ?? '');
        if (a === undefined || a.password !== str(vars.password)) {
          return json(res, 200, {
            data: { login: null },
            errors: [{ message: 'invalid credentials', path: ['login'] }],
          });
        }
        return json(res, 200, { data: { login: { token: issue(a, 'shop'), user: { id: a.id } } } });
      }
      if (query.includes('__schema'))
        return json(res, 200, {
          data: { __schema: { types: [{ name: 'Query' }, { name: 'Product' }, { name: 'User' }] } },
        });
      if (/\bme\b/.test(query)) {
        const who = caller(req, q);
        return who.account === undefined
          ? json(res, 200, { data: { me: null }, errors: [{ message: 'not authenticated' }] })
          : json(res, 200, { data: { me: { id: who.account.id, username: who.account.username } } });
      }
      if (/\bproducts\b/.test(query)) {
        const first = Math.min(50, intParam(String(vars.first ?? 10)) ?? 10);
        return json(res, 200, { data: { products: products.slice(0, first) } });
      }
      return json(res, 200, { data: null, errors: [{ message: 'unknown field' }] });
    }
    if (path === '/api/fail') {
      const code = q.get('code') === '503' ? 503 : 500;
      return json(
        res,
        code,
        { error: code === 503 ? 'service unavailable' : 'internal error' },
        code === 503 ? { 'Retry-After': '5' } : undefined,
      );
    }
    return json(res, 404, { error: 'no route' });
  }

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      if (size <= MAX_BODY) chunks.push(c);
    });
    req.on('end', () => {
      if (size > MAX_BODY) return json(res, 413, { error: 'body too large' });
      const body = Buffer.concat(chunks).toString('utf8');
      // a backend takes a few milliseconds (more for logins: password hashing)
      const isAuth =
        req.url?.startsWith('/api/login') ||
        req.url?.startsWith('/oauth/token') ||
        req.url?.startsWith('/graphql');
      const delay = Math.min(200, latency.logNormal(isAuth ? 25 : 4, 0.5));
      setTimeout(() => {
        try {
          route(req, res, body);
        } catch {
          json(res, 500, { error: 'internal error' });
        }
      }, delay);
    });
    req.on('error', () => res.destroy());
  });
  server.keepAliveTimeout = 15_000;
  return server;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  const s = Array.isArray(v) ? v[0] : v;
  return s === undefined || s === '' ? undefined : s;
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

function intParam(v: string | null): number | undefined {
  return v !== null && /^\d{1,9}$/.test(v) ? Number(v) : undefined;
}

function formOrJson(req: IncomingMessage, body: string): Record<string, unknown> {
  if ((header(req, 'content-type') ?? '').includes('json')) {
    try {
      const v: unknown = JSON.parse(body || '{}');
      return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
    } catch {
      return {};
    }
  }
  return Object.fromEntries(new URLSearchParams(body));
}

function basicAuth(req: IncomingMessage): [string, string] | undefined {
  const a = header(req, 'authorization');
  if (!a?.startsWith('Basic ')) return undefined;
  const decoded = Buffer.from(a.slice(6).trim(), 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon < 0 ? undefined : [decoded.slice(0, colon), decoded.slice(colon + 1)];
}

/** What a route handler returns: the response was sent. */
type Sent = true;

function send(
  res: ServerResponse,
  status: number,
  type: string,
  body: string,
  extra?: Record<string, string>,
): Sent {
  if (res.headersSent) return true;
  const headers: Record<string, string | number> = {
    'Content-Type': type,
    'Content-Length': Buffer.byteLength(body),
    ...extra,
  };
  res.writeHead(status, headers);
  res.end(body);
  return true;
}

function json(res: ServerResponse, status: number, obj: unknown, extra?: Record<string, string>): Sent {
  return send(res, status, 'application/json', JSON.stringify(obj), extra);
}

function html(res: ServerResponse, status: number, body: string): Sent {
  return send(res, status, 'text/html; charset=utf-8', body);
}
