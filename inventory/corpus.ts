/**
 * A generated traffic corpus with known route templates, to measure how well the ingest
 * route templater (`RouteLearner`) recovers endpoints. Templates name their parameter kind
 * (`{int}`, `{uuid}`, `{hex}`, `{oid}`, `{b62}`, `{stripe}`, `{slug}`, `{user}`, `{email}`,
 * `{date}`, `{sku}`); everything else is a literal segment that must stay literal.
 */

export type ParamKind =
  | 'int'
  | 'uuid'
  | 'hex'
  | 'oid'
  | 'sha'
  | 'b62'
  | 'stripe'
  | 'slug'
  | 'user'
  | 'email'
  | 'date'
  | 'sku';

export interface CorpusEndpoint {
  host: string;
  method: string;
  /** True template with kinds, e.g. `/api/v1/users/{int}`. */
  template: string;
}

export interface CorpusRequest {
  host: string;
  method: string;
  path: string;
  /** Index into `endpoints`. */
  endpoint: number;
}

/** Deterministic PRNG (mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const HEX = '0123456789abcdef';
const B62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const SLUG_WORDS = [
  'acme',
  'globex',
  'initech',
  'umbrella',
  'hooli',
  'stark',
  'wayne',
  'wonka',
  'tyrell',
  'cyberdyne',
  'soylent',
  'vandelay',
  'pied',
  'piper',
  'aperture',
  'zorg',
  'nakatomi',
  'oscorp',
  'gringotts',
  'monarch',
];
const NAMES = [
  'jdoe',
  'asmith',
  'mkowalski',
  'lchen',
  'rpatel',
  'tnguyen',
  'kmuller',
  'ogarcia',
  'bsato',
  'fdubois',
];

function pick<T>(r: () => number, xs: readonly T[]): T {
  return xs[Math.floor(r() * xs.length)]!;
}
function chars(r: () => number, alphabet: string, n: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += alphabet[Math.floor(r() * alphabet.length)];
  return s;
}
function b62Id(r: () => number, n: number): string {
  // Real base62 ids almost always contain digits and both cases; force one of each.
  for (;;) {
    const s = chars(r, B62, n);
    if (/\d/.test(s) && /[a-z]/.test(s) && /[A-Z]/.test(s)) return s;
  }
}

export function value(kind: ParamKind, r: () => number): string {
  switch (kind) {
    case 'int':
      return String(1 + Math.floor(r() * (r() < 0.5 ? 1000 : 10_000_000)));
    case 'uuid': {
      const h = chars(r, HEX, 32);
      return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20)}`;
    }
    case 'hex':
      return chars(r, HEX, 12);
    case 'oid':
      return chars(r, HEX, 24);
    case 'sha':
      return chars(r, HEX, 40);
    case 'b62':
      return b62Id(r, 22);
    case 'stripe':
      return `${pick(r, ['cus', 'pi', 'sub', 'in', 'ch'])}_${b62Id(r, 14)}`;
    case 'slug':
      return `${pick(r, SLUG_WORDS)}-${pick(r, SLUG_WORDS)}`;
    case 'user':
      return `${pick(r, NAMES)}${Math.floor(r() * 100)}`;
    case 'email':
      return `${pick(r, NAMES)}.${Math.floor(r() * 1000)}@${pick(r, ['example.com', 'corp.io', 'mail.net'])}`;
    case 'date': {
      const d = new Date(Date.UTC(2023, 0, 1) + Math.floor(r() * 900) * 86_400_000);
      return d.toISOString().slice(0, 10);
    }
    case 'sku':
      return `${chars(r, 'ABCDEFGHJKLMNPQRSTUVWXYZ', 3)}-${chars(r, '0123456789', 5)}`;
  }
}

/** Realistic templates per host: nested resources, versions, many id kinds. */
export const CORPUS_TEMPLATES: Record<string, string[]> = {
  'api.shop.example': [
    'GET /api/v1/products',
    'GET /api/v1/products/{int}',
    'GET /api/v1/products/{int}/reviews',
    'POST /api/v1/products/{int}/reviews',
    'GET /api/v1/products/{int}/reviews/{int}',
    'GET /api/v1/products/sku/{sku}',
    'GET /api/v1/categories/{slug}/products',
    'GET /api/v1/orders',
    'POST /api/v1/orders',
    'GET /api/v1/orders/{uuid}',
    'PATCH /api/v1/orders/{uuid}',
    'GET /api/v1/orders/{uuid}/items',
    'GET /api/v1/orders/{uuid}/items/{int}',
    'POST /api/v1/orders/{uuid}/cancel',
    'GET /api/v1/carts/{uuid}',
    'PUT /api/v1/carts/{uuid}/items/{int}',
    'DELETE /api/v1/carts/{uuid}/items/{int}',
    'GET /api/v1/users/me',
    'GET /api/v1/users/{int}',
    'GET /api/v1/users/{int}/addresses',
    'GET /api/v1/users/{int}/orders',
    'GET /api/v2/products/{oid}',
    'GET /api/v2/orders/{oid}/shipments/{oid}',
    'GET /api/v2/search',
    'POST /api/v2/checkout',
    'GET /api/v2/stores/{slug}/inventory',
    'GET /api/v2/reports/sales/{date}',
    'GET /health',
  ],
  'payments.example': [
    'GET /v1/customers',
    'POST /v1/customers',
    'GET /v1/customers/{stripe}',
    'DELETE /v1/customers/{stripe}',
    'GET /v1/customers/{stripe}/payment-methods',
    'GET /v1/customers/{stripe}/invoices/{stripe}',
    'POST /v1/payment-intents',
    'GET /v1/payment-intents/{stripe}',
    'POST /v1/payment-intents/{stripe}/confirm',
    'POST /v1/refunds',
    'GET /v1/refunds/{stripe}',
    'GET /v1/subscriptions/{stripe}',
    'GET /v1/balance',
    'GET /v1/events/{b62}',
    'GET /v1/webhooks',
    'GET /v1/webhooks/{uuid}/deliveries/{int}',
    'GET /v2/accounts/{b62}/balance',
    'GET /v2/accounts/{b62}/transactions/{uuid}',
    'GET /v2/statements/{date}',
  ],
  'git.example': [
    'GET /api/repos/{user}/{slug}',
    'GET /api/repos/{user}/{slug}/commits',
    'GET /api/repos/{user}/{slug}/commits/{sha}',
    'GET /api/repos/{user}/{slug}/issues/{int}',
    'POST /api/repos/{user}/{slug}/issues/{int}/comments',
    'GET /api/repos/{user}/{slug}/pulls/{int}/files',
    'GET /api/users/{user}',
    'GET /api/users/{user}/followers',
    'GET /api/orgs/{slug}/members',
    'GET /api/gists/{hex}',
    'GET /api/search/code',
  ],
  'id.example': [
    'POST /oauth/token',
    'GET /oauth/authorize',
    'POST /auth/login',
    'POST /auth/logout',
    'POST /auth/password/reset',
    'GET /scim/v2/Users/{uuid}',
    'PATCH /scim/v2/Users/{uuid}',
    'GET /scim/v2/Groups/{uuid}',
    'GET /api/1.0/accounts/{email}',
    'GET /api/1.0/accounts/{email}/sessions',
    'DELETE /api/1.0/accounts/{email}/sessions/{hex}',
    'GET /api/1.0/audit/{date}',
    'GET /.well-known/openid-configuration',
    'GET /.well-known/jwks.json',
  ],
  'media.example': [
    'GET /v3/assets/{uuid}',
    'GET /v3/assets/{uuid}/renditions/{int}',
    'POST /v3/uploads',
    'GET /v3/uploads/{b62}/status',
    'GET /v3/libraries/{int}/folders/{int}/assets',
    'GET /v3/tenants/{slug}/usage/{date}',
    'GET /v3/thumbnails/{oid}',
  ],
};

export function corpusEndpoints(): CorpusEndpoint[] {
  const out: CorpusEndpoint[] = [];
  for (const [host, list] of Object.entries(CORPUS_TEMPLATES)) {
    for (const line of list) {
      const [method, template] = line.split(' ') as [string, string];
      out.push({ host, method, template });
    }
  }
  return out;
}

/** Requests for every endpoint (`perEndpoint` each, shuffled), from a seed. */
export function generateCorpus(
  seed: number,
  perEndpoint = 40,
): { endpoints: CorpusEndpoint[]; requests: CorpusRequest[] } {
  const r = rng(seed);
  const endpoints = corpusEndpoints();
  const requests: CorpusRequest[] = [];
  endpoints.forEach((e, i) => {
    for (let k = 0; k < perEndpoint; k++) {
      const path = e.template.replace(/\{(\w+)\}/g, (_, kind: string) => value(kind as ParamKind, r));
      requests.push({ host: e.host, method: e.method, path, endpoint: i });
    }
  });
  for (let i = requests.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1));
    [requests[i], requests[j]] = [requests[j]!, requests[i]!];
  }
  return { endpoints, requests };
}

/** `/a/{id}/b/{param}` → `/a/{}/b/{}`: parameter names are not recoverable, positions are. */
export function shape(template: string): string {
  return template.replace(/\{[^}/]*\}/g, '{}');
}

export interface AccuracyReport {
  endpoints: number;
  exact: number;
  accuracy: number;
  /** Literal segments (words, versions) the templater turned into parameters. */
  falseParameters: { host: string; method: string; template: string; got: string }[];
  failures: { host: string; method: string; template: string; got: string[] }[];
}

/**
 * Run a corpus through a templater: first a learning pass over every request in arrival
 * order, then a second pass; an endpoint is recovered exactly when all its requests map to
 * the true template's shape in the second pass (placeholder names aside: `{id}` and `{param}`
 * at the same position are the same shape, as the inventory keys endpoints by shape).
 */
export function measureAccuracy(
  corpus: { endpoints: CorpusEndpoint[]; requests: CorpusRequest[] },
  template: (path: string, host: string) => string,
): AccuracyReport {
  for (const q of corpus.requests) template(q.path, q.host);
  const got = corpus.endpoints.map(() => new Set<string>());
  for (const q of corpus.requests) got[q.endpoint]!.add(template(q.path, q.host));
  const report: AccuracyReport = {
    endpoints: corpus.endpoints.length,
    exact: 0,
    accuracy: 0,
    falseParameters: [],
    failures: [],
  };
  corpus.endpoints.forEach((e, i) => {
    const want = shape(e.template);
    const seen = [...got[i]!];
    const shapes = new Set(seen.map(shape));
    if (shapes.size === 1 && shapes.has(want)) report.exact++;
    else
      report.failures.push({ host: e.host, method: e.method, template: e.template, got: seen.slice(0, 5) });
    const wantSegs = e.template.split('/');
    for (const g of seen) {
      const segs = g.split('/');
      if (wantSegs.some((w, k) => !w.startsWith('{') && segs[k] !== undefined && segs[k]!.startsWith('{'))) {
        report.falseParameters.push({ host: e.host, method: e.method, template: e.template, got: g });
      }
    }
  });
  report.accuracy = report.exact / report.endpoints;
  return report;
}
