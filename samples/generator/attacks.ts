/**
 * Attack injectors, one per built-in rule, each producing labelled requests. Every attack is
 * placed inside aligned slots so that the rule's windows see it whole (15-minute slots start on
 * epoch multiples of 15 minutes; rules' windows are epoch-aligned) and is sized clearly above
 * the rule's thresholds, while staying under the thresholds of the rules it must not trigger.
 */
import {
  API_HOST,
  BROWSER_UAS,
  kongReq,
  loginReq,
  MIN,
  type Partner,
  type World,
  WWW_HOST,
} from './model.ts';
import { type AsInfo, distinctIps, NETWORKS, network, randomIp } from './network.ts';
import type { Rng } from './prng.ts';
import type { EntityKind, Label, Req } from './types.ts';

export interface AttackContext {
  rng: Rng;
  world: World;
  /** Start of the attack's first slot (ms, a multiple of 15 minutes). */
  at: number;
  /** The key identity fingerprint the key's Kong events carry (the credential Kong authenticated). */
  fingerprint: (key: { id: string }) => string;
  /** Addresses already used by someone (attacks draw fresh ones). */
  taken: Set<string>;
}

export interface AttackResult {
  reqs: Req[];
  label: Omit<Label, 'start' | 'end' | 'requests' | 'kind'>;
}

export interface AttackSpec {
  id: string;
  /** Consecutive 15-minute slots the attack needs. */
  slots: number;
  /** Preferred position in the scenario (0 = early, 1 = late). */
  position: number;
  inject: (ctx: AttackContext) => AttackResult;
}

const SLOT = 15 * MIN;
/** The login route, as an entity: route-level rules see distributed stuffing there. */
const LOGIN_ROUTE = { field: 'gatewatch.route', value: '/api/v1/login', kind: 'route' as const };

function emails(rng: Rng, n: number, tag: string): string[] {
  const out: string[] = [];
  const words = [
    'sun',
    'blue',
    'fox',
    'river',
    'star',
    'moon',
    'tiger',
    'lucky',
    'happy',
    'cool',
    'dark',
    'red',
  ];
  const doms = ['gmail.com', 'yahoo.com', 'hotmail.com', 'aol.com', 'mail.ru', 'outlook.com', 'web.de'];
  for (let i = 0; i < n; i++)
    out.push(`${rng.pick(words)}${rng.pick(words)}${rng.int(1, 9999)}.${tag}${i}@${rng.pick(doms)}`);
  return out;
}

const LEAKED_PASSWORDS = [
  '123456',
  'password1',
  'qwerty123',
  'iloveyou',
  'Summer2023!',
  'welcome1',
  'monkey12',
  'dragon99',
  'letmein!',
  'football7',
];
const SPRAY_PASSWORDS = ['Spring2024!', 'Welcome2024!'];

function spread(start: number, span: number, n: number, rng: Rng): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++) out.push(start + Math.floor(((i + rng.next() * 0.9) / n) * span));
  return out;
}

function entity(field: string, value: string, kind: EntityKind) {
  return { field, value, kind };
}

function partner(world: World, name: string): Partner {
  const p = world.byName.get(name);
  if (!p) throw new Error(`unknown partner ${name}`);
  return p;
}

/** Fresh attacker addresses spread over networks. */
function pool(ctx: AttackContext, nets: AsInfo[], perNet: number): { ip: string; net: AsInfo }[] {
  const out: { ip: string; net: AsInfo }[] = [];
  for (const net of nets)
    for (const ip of distinctIps(ctx.rng, net, perNet, ctx.taken)) out.push({ ip, net });
  return out;
}

const RESIDENTIAL_PROXY_ASNS = [9121, 8452, 17974, 7552, 8151, 45609, 9829, 4837, 28573, 12389, 7713, 4134];

export const ATTACKS: AttackSpec[] = [
  {
    id: 'credential-stuffing-single-source',
    slots: 1,
    position: 0.05,
    inject(ctx) {
      const { rng } = ctx;
      const [ip] = distinctIps(rng, network(16276), 1, ctx.taken);
      const ua =
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/118.0.0.0 Safari/537.36';
      const victims = emails(rng, 340, 'ss');
      const reqs: Req[] = [];
      // 340 attempts in 9 minutes inside one 15-minute slot: >= 300 keeps it out of the spraying rule's 1 h windows.
      spread(ctx.at + 3 * MIN, 9 * MIN, victims.length, rng).forEach((t, i) => {
        const ok = i === 117 || i === 250; // two leaked pairs still work
        reqs.push(
          loginReq(
            rng,
            t,
            ip!,
            ua,
            victims[i]!,
            rng.pick(LEAKED_PASSWORDS),
            ok,
            'credential-stuffing-single-source',
          ),
        );
      });
      return {
        reqs,
        label: {
          id: 'credential-stuffing-single-source',
          rules: ['credential-stuffing-single-source', 'credential-stuffing-with-success'],
          // With the other stuffing runs of the hour, the login route may fail for 30+ addresses.
          optionalRules: ['credential-attack-on-route'],
          ruleEntities: { 'credential-attack-on-route': LOGIN_ROUTE },
          title: 'Credential stuffing burst from one OVH address',
          description:
            'A combo-list replay: 340 POST /api/v1/login attempts for 340 accounts in 9 minutes from one hosting IP, two succeed.',
          entity: entity('source.ip', ip!, 'ip'),
          expectedIncidents: { 'credential-stuffing-single-source': 1 },
          thresholds:
            'failures 338 >= 25, users 340 >= 15, failure_ratio 0.99 >= 0.9 in one 15m window; attempts 340 >= 300 keeps password-spraying quiet.',
        },
      };
    },
  },
  {
    id: 'credential-stuffing-distributed-asn',
    slots: 1,
    position: 0.15,
    inject(ctx) {
      const { rng } = ctx;
      const net = network(9009);
      const ips = pool(ctx, [net], 26);
      const victims = emails(rng, 140, 'asn');
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 10 * MIN, victims.length, rng).forEach((t, i) => {
        const src = ips[i % ips.length]!;
        reqs.push(
          loginReq(
            rng,
            t,
            src.ip,
            rng.pick(BROWSER_UAS.slice(0, 7)),
            victims[i]!,
            rng.pick(LEAKED_PASSWORDS),
            false,
            'credential-stuffing-distributed-asn',
          ),
        );
      });
      return {
        reqs,
        label: {
          id: 'credential-stuffing-distributed-asn',
          rules: ['credential-stuffing-distributed-asn'],
          optionalRules: ['credential-attack-on-route'],
          ruleEntities: { 'credential-attack-on-route': LOGIN_ROUTE },
          title: 'Low-and-slow stuffing from 26 addresses of one VPN provider (AS9009)',
          description:
            '140 failed logins for 140 accounts in 10 minutes, about 5 per address, browser user agents rotated.',
          entity: entity('gatewatch.network.id', `AS${net.asn}`, 'network'),
          expectedIncidents: { 'credential-stuffing-distributed-asn': 1 },
          thresholds:
            'per ASN: ips 26 >= 20, users 140 >= 50, failures 140 >= 100, ratio 1.0; per IP about 5 failures (< 25), per user agent about 20 (< 150).',
        },
      };
    },
  },
  {
    id: 'credential-stuffing-distributed-user-agent',
    slots: 1,
    position: 0.3,
    inject(ctx) {
      const { rng } = ctx;
      const nets = RESIDENTIAL_PROXY_ASNS.map((a) => network(a));
      const ips = pool(ctx, nets, 4);
      const ua = 'python-requests/2.31.0';
      const victims = emails(rng, 190, 'ua');
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 10 * MIN, victims.length, rng).forEach((t, i) => {
        const src = ips[(i * 7) % ips.length]!;
        reqs.push(
          loginReq(
            rng,
            t,
            src.ip,
            ua,
            victims[i]!,
            rng.pick(LEAKED_PASSWORDS),
            false,
            'credential-stuffing-distributed-user-agent',
          ),
        );
      });
      return {
        reqs,
        label: {
          id: 'credential-stuffing-distributed-user-agent',
          rules: ['credential-stuffing-distributed-user-agent'],
          optionalRules: ['credential-attack-on-route'],
          ruleEntities: { 'credential-attack-on-route': LOGIN_ROUTE },
          title: 'Stuffing through a residential proxy pool with one scripting user agent',
          description:
            '190 failed logins for 190 accounts from 48 proxy addresses in 12 networks, all "python-requests/2.31.0" — the same agent benign partner integrations use.',
          entity: entity('user_agent.original', ua, 'user_agent'),
          expectedIncidents: { 'credential-stuffing-distributed-user-agent': 1 },
          thresholds:
            'per UA: ips 48 >= 30, users 190 >= 100, failures 190 >= 150, ratio > 0.9 even with benign partner token calls; per ASN 4 IPs (< 20).',
        },
      };
    },
  },
  {
    id: 'credential-stuffing-distributed-ja3',
    slots: 1,
    position: 0.55,
    inject(ctx) {
      const { rng } = ctx;
      const nets = [...RESIDENTIAL_PROXY_ASNS, 7922, 701, 2856].map((a) => network(a));
      const ips = pool(ctx, nets, 4);
      const ja3 = '3b5074b1b5d032e5620f69f9f700ff0e';
      const uas: string[] = [];
      for (let i = 0; i < 24; i++) {
        const v = 110 + i;
        uas.push(
          `Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/${v}.0.0.0 Safari/537.36`,
        );
      }
      const victims = emails(rng, 220, 'ja3');
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 10 * MIN, victims.length, rng).forEach((t, i) => {
        const src = ips[(i * 11) % ips.length]!;
        const ua = uas[i % uas.length]!;
        const base = { ip: src.ip, ua, t, ja3, tag: 'credential-stuffing-distributed-ja3' };
        if (i < 12) {
          // Before the rate-based rule kicks in, a few attempts reach Kong and fail there.
          reqs.push(loginReq(rng, t, src.ip, ua, victims[i]!, rng.pick(LEAKED_PASSWORDS), false, base.tag));
        } else {
          reqs.push({
            ...base,
            fmt: 'aws.waf',
            method: 'POST',
            host: API_HOST,
            path: '/api/v1/login',
            status: 0,
            basic: { user: victims[i]!, password: rng.pick(LEAKED_PASSWORDS) },
            bytesIn: rng.int(60, 120),
            bytesOut: 0,
            latencyMs: 0,
            waf: {
              action: 'BLOCK',
              ruleId: 'login-rate-by-ja3',
              ruleType: 'RATE_BASED',
              labels: ['awswaf:123456789012:webacl:api-prod:rule:login-rate-by-ja3'],
              country: src.net.country,
            },
          });
        }
      });
      return {
        reqs,
        label: {
          id: 'credential-stuffing-distributed-ja3',
          rules: ['credential-stuffing-distributed-ja3'],
          title: 'Stuffing with rotated user agents but one TLS stack (JA3)',
          description:
            '220 login attempts from 60 addresses in 15 networks with 24 rotated Chrome user agents; one JA3. AWS WAF blocks them with a rate-based rule keyed on JA3 (the first 12 reach Kong and fail).',
          entity: entity('tls.client.ja3', ja3, 'ja3'),
          expectedIncidents: { 'credential-stuffing-distributed-ja3': 1 },
          thresholds:
            'per JA3 (WAF events, outcome failure): ips >= 55 >= 30, users 208 >= 100, failures 208 >= 150; per UA about 9 users (< 100); per ASN 4 IPs (< 20).',
        },
      };
    },
  },
  {
    id: 'password-spraying',
    slots: 3,
    position: 0.2,
    inject(ctx) {
      const { rng } = ctx;
      const [ip] = distinctIps(rng, network(24940), 1, ctx.taken);
      const ua = 'Mozilla/5.0 (X11; Linux x86_64; rv:109.0) Gecko/20100101 Firefox/115.0';
      const targets = [...ctx.world.users].slice(-24).map((u) => u.email);
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 40 * MIN, targets.length, rng).forEach((t, i) => {
        reqs.push(loginReq(rng, t, ip!, ua, targets[i]!, SPRAY_PASSWORDS[0]!, false, 'password-spraying'));
      });
      return {
        reqs,
        label: {
          id: 'password-spraying',
          rules: ['password-spraying'],
          title: 'Slow password spray from one address, under per-IP burst limits',
          description:
            'One password ("Spring2024!") against 24 real accounts, one try each, paced over 40 minutes.',
          entity: entity('source.ip', ip!, 'ip'),
          expectedIncidents: { 'password-spraying': 1 },
          thresholds:
            'per IP in 1h: users 24 >= 15, failures 24 >= 15, ratio 1.0, attempts 24 < 300; per 15m at most about 9 failures (< 25).',
        },
      };
    },
  },
  {
    id: 'brute-force-one-account-many-ips',
    slots: 1,
    position: 0.4,
    inject(ctx) {
      const { rng } = ctx;
      const victim = 'cfo@northwind-traders.example';
      const nets = [network(14061), network(9009), network(16276), network(24940)];
      const ips = pool(ctx, nets, 2).slice(0, 7);
      const reqs: Req[] = [];
      spread(ctx.at + 1 * MIN, 12 * MIN, 15, rng).forEach((t, i) => {
        const src = ips[i % ips.length]!;
        reqs.push(
          loginReq(
            rng,
            t,
            src.ip,
            rng.pick(BROWSER_UAS.slice(0, 3)),
            victim,
            rng.base62(9),
            false,
            'brute-force-one-account-many-ips',
          ),
        );
      });
      return {
        reqs,
        label: {
          id: 'brute-force-one-account-many-ips',
          rules: ['brute-force-one-account-many-ips'],
          title: 'Distributed guessing against one executive account',
          description:
            '15 failed logins for one account from 7 addresses in 4 hosting networks within 12 minutes; never succeeds.',
          entity: entity('user.name', victim, 'user'),
          expectedIncidents: { 'brute-force-one-account-many-ips': 1 },
          thresholds:
            'per user in 30m: failures 15 >= 10, ips 7 >= 5, asns 4 >= 3; no success, so no account-takeover.',
        },
      };
    },
  },
  {
    id: 'credential-attack-on-route',
    slots: 1,
    position: 0.42,
    inject(ctx) {
      const { rng } = ctx;
      // A proxy pool with nothing in common: many residential networks, every request its own
      // browser user agent, two tries per address, no usernames in the log (JSON bodies).
      const nets = RESIDENTIAL_PROXY_ASNS.map((a) => network(a));
      const ips = pool(ctx, nets, 6);
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 11 * MIN, ips.length * 2, rng).forEach((t, i) => {
        const src = ips[(i * 5) % ips.length]!;
        reqs.push(
          kongReq(rng, {
            t,
            ip: src.ip,
            ua: rng.pick(BROWSER_UAS),
            method: 'POST',
            path: '/api/v1/password/reset',
            status: rng.chance(0.9) ? 401 : 422,
            session: rng.base62(24),
            tag: 'credential-attack-on-route',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'credential-attack-on-route',
          rules: ['credential-attack-on-route'],
          title: 'Low-and-slow reset-code guessing through a residential proxy pool',
          description: `${ips.length * 2} failed POST /api/v1/password/reset from ${ips.length} addresses in 12 networks, two each, every request with another browser user agent.`,
          entity: entity('gatewatch.route', '/api/v1/password/reset', 'route'),
          expectedIncidents: { 'credential-attack-on-route': 1 },
          thresholds:
            'on the route: failures 144 >= 100, ips 72 >= 30, failure ratio ~1 in one 15m window; per IP 2, per ASN 6, per user agent ~20: under every per-source rule.',
        },
      };
    },
  },
  {
    id: 'brute-force-one-account',
    slots: 1,
    position: 0.85,
    inject(ctx) {
      const { rng } = ctx;
      const victim = 'finance.admin@shop.example';
      const [ip] = distinctIps(rng, network(14061), 1, ctx.taken);
      const reqs: Req[] = [];
      // 45 guesses for one account in 3 minutes from one cloud address; none succeeds.
      spread(ctx.at + 4 * MIN, 3 * MIN, 45, rng).forEach((t) => {
        reqs.push(
          loginReq(
            rng,
            t,
            ip!,
            'python-requests/2.31.0',
            victim,
            rng.base62(9),
            false,
            'brute-force-one-account',
          ),
        );
      });
      return {
        reqs,
        label: {
          id: 'brute-force-one-account',
          rules: ['brute-force-one-account'],
          title: 'Password guessing against one admin account',
          description: `45 failed logins for ${victim} in 3 minutes from one DigitalOcean address; no success.`,
          entity: entity('user.name', victim, 'user'),
          expectedIncidents: { 'brute-force-one-account': 1 },
          thresholds:
            'failures 45 >= 30 in one 5m window for one user; one IP, one user: below the stuffing (15 users) and many-IPs (5 IPs) rules, no success for takeover.',
        },
      };
    },
  },
  {
    id: 'server-errors-from-one-client',
    slots: 1,
    position: 0.95,
    inject(ctx) {
      const { rng } = ctx;
      const [ip] = distinctIps(rng, network(16276), 1, ctx.taken);
      const ua = 'Mozilla/5.0 (compatible; fuzz-harness/0.3)';
      const reqs: Req[] = [];
      // A fuzzer posts malformed bodies to the search endpoint: 30 of 36 answers are 500s, inside
      // one aligned 10-minute window.
      const a = ctx.at % (10 * MIN) === 0 ? ctx.at : ctx.at + 5 * MIN;
      spread(a + 1 * MIN, 5 * MIN, 36, rng).forEach((t, i) => {
        reqs.push(
          kongReq(rng, {
            t,
            ip: ip!,
            ua,
            method: 'POST',
            path: '/api/v1/search',
            status: i % 6 === 0 ? 400 : 500,
            session: rng.base62(24),
            tag: 'server-errors-from-one-client',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'server-errors-from-one-client',
          rules: ['server-errors-from-one-client', 'server-error-burst-per-route'],
          // The baseline rule sees it only where the route has enough quiet history.
          optionalRules: ['server-error-spike-per-route'],
          ruleEntities: {
            'server-error-burst-per-route': {
              field: 'gatewatch.route',
              value: '/api/v1/search',
              kind: 'route',
            },
            'server-error-spike-per-route': {
              field: 'gatewatch.route',
              value: '/api/v1/search',
              kind: 'route',
            },
          },
          title: 'A fuzzer drives the search endpoint into 500s',
          description: '36 malformed POST /api/v1/search in 5 minutes from one address, 30 answered 500.',
          entity: entity('source.ip', ip!, 'ip'),
          expectedIncidents: { 'server-errors-from-one-client': 1 },
          thresholds:
            'errors 30 > 10 per IP and agent in one 10m window; on the route 30 errors >= 20 and the majority of its answers.',
        },
      };
    },
  },
  {
    id: 'account-takeover-failures-then-success',
    slots: 1,
    position: 0.75,
    inject(ctx) {
      const { rng } = ctx;
      const victim = { email: 'm.rossi.ops@fastmail.example', id: 'u-19990', password: 'Ross1!Marco' };
      const [ip] = distinctIps(rng, network(9121), 1, ctx.taken);
      const ua = BROWSER_UAS[0]!;
      const consumer = {
        id: 'c0ffee00-0000-4000-8000-000000019990',
        username: victim.email,
        customId: victim.id,
      };
      const reqs: Req[] = [];
      const times = spread(ctx.at + 2 * MIN, 5 * MIN, 12, rng);
      for (const t of times)
        reqs.push(
          loginReq(
            rng,
            t,
            ip!,
            ua,
            victim.email,
            rng.base62(10),
            false,
            'account-takeover-failures-then-success',
          ),
        );
      let t = ctx.at + 7 * MIN + 20_000;
      reqs.push(
        loginReq(
          rng,
          t,
          ip!,
          ua,
          victim.email,
          victim.password,
          true,
          'account-takeover-failures-then-success',
          consumer,
        ),
      );
      for (const [m, p, s] of [
        ['GET', '/api/v1/me', 200],
        ['GET', `/api/v1/users/${victim.id}`, 200],
        ['PUT', `/api/v1/users/${victim.id}`, 200],
        ['GET', '/api/v1/orders', 200],
      ] as const) {
        t += rng.int(3000, 15000);
        reqs.push(
          kongReq(rng, {
            t,
            ip: ip!,
            ua,
            method: m,
            path: p,
            status: s,
            consumer,
            session: rng.base62(24),
            tag: 'account-takeover-failures-then-success',
          }),
        );
      }
      return {
        reqs,
        label: {
          id: 'account-takeover-failures-then-success',
          rules: ['account-takeover-failures-then-success'],
          title: 'Guessing succeeds: 12 failures then a login, then profile changes',
          description:
            'One address guesses one account 12 times in 5 minutes, logs in, reads and changes the profile.',
          entity: entity('user.name', victim.email, 'user'),
          group: { 'source.ip': ip! },
          expectedIncidents: { 'account-takeover-failures-then-success': 1 },
          thresholds:
            '12 failures >= 10 then a 2xx login within 15m; 1 IP so brute-force-one-account (5 IPs) stays quiet.',
        },
      };
    },
  },
  {
    id: 'api-key-new-asn',
    slots: 1,
    position: 0.35,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'initech-bi');
      const net = network(14061);
      const [ip] = distinctIps(rng, net, 1, ctx.taken);
      const reqs: Req[] = [];
      spread(ctx.at + 4 * MIN, 6 * MIN, 8, rng).forEach((t) => {
        reqs.push(
          kongReq(rng, {
            t,
            ip: ip!,
            ua: 'python-requests/2.28.1',
            method: 'GET',
            path: '/api/v1/orders',
            query: `page=${rng.int(1, 40)}&per_page=100`,
            status: 200,
            apiKey: { ...p.key, in: 'header' },
            consumer: p.consumer,
            tag: 'api-key-new-asn',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'api-key-new-asn',
          rules: ['api-key-new-asn'],
          title: "A partner's key used from a hosting network it never used",
          description: `Key ${p.key.id} (Google Cloud, US, for 30 days) answers 2xx from DigitalOcean (US): a copied key.`,
          entity: entity('gatewatch.api_key.fingerprint', ctx.fingerprint(p.key), 'api_key'),
          group: { 'source.as.number': String(net.asn) },
          expectedIncidents: { 'api-key-new-asn': 1 },
          thresholds:
            'new ASN 14061 for a key with 30 days of history; same country, one IP: no new-country, many-ips or travel.',
        },
      };
    },
  },
  {
    id: 'api-key-new-country',
    slots: 1,
    position: 0.5,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'cyberdyne-ml');
      const net = network(16509, 'IE');
      const [ip] = distinctIps(rng, net, 1, ctx.taken);
      const reqs: Req[] = [];
      spread(ctx.at + 3 * MIN, 5 * MIN, 6, rng).forEach((t) => {
        reqs.push(
          kongReq(rng, {
            t,
            ip: ip!,
            ua: p.ua,
            method: 'GET',
            path: `/api/v1/products/${rng.int(2000, 48000)}`,
            status: 200,
            apiKey: { ...p.key, in: 'header' },
            consumer: p.consumer,
            tag: 'api-key-new-country',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'api-key-new-country',
          rules: ['api-key-new-country'],
          title: 'A key moves to another country inside the same cloud provider',
          description: `Key ${p.key.id}, used from AWS us-east-1 for 30 days, answers 2xx from AWS eu-west-1 (IE): same ASN 16509, new country.`,
          entity: entity('gatewatch.api_key.fingerprint', ctx.fingerprint(p.key), 'api_key'),
          group: { 'source.geo.country_iso_code': 'IE' },
          expectedIncidents: { 'api-key-new-country': 1 },
          thresholds:
            'new country IE for a known key; same ASN, so no new-asn, and api-key-impossible-travel needs 2 ASNs (1 here).',
        },
      };
    },
  },
  {
    id: 'api-key-impossible-travel',
    slots: 1,
    position: 0.8,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'stark-pos');
      const net = network(12389);
      const [ip] = distinctIps(rng, net, 1, ctx.taken);
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 8 * MIN, 10, rng).forEach((t) => {
        reqs.push(
          kongReq(rng, {
            t,
            ip: ip!,
            ua: 'Apache-HttpClient/5.2.1 (Java/17.0.10)',
            method: 'GET',
            path: `/api/v1/orders/${rng.int(100000, 130000)}`,
            status: 200,
            apiKey: { ...p.key, in: 'header' },
            consumer: p.consumer,
            tag: 'api-key-impossible-travel',
          }),
        );
      });
      const fp = ctx.fingerprint(p.key);
      return {
        reqs,
        label: {
          id: 'api-key-impossible-travel',
          rules: ['api-key-impossible-travel', 'api-key-new-asn', 'api-key-new-country'],
          title: 'A POS key used from Russia while the owner keeps using it from the US',
          description: `Key ${p.key.id} (Azure, US) answers 2xx from Rostelecom (RU) within the same hour as the owner's own calls.`,
          entity: entity('gatewatch.api_key.fingerprint', fp, 'api_key'),
          expectedIncidents: {
            'api-key-impossible-travel': 1,
            'api-key-new-asn': 1,
            'api-key-new-country': 1,
          },
          thresholds:
            'countries 2 >= 2 and asns 2 >= 2 in 1h; the new network and country also fire the first-seen rules.',
        },
      };
    },
  },
  {
    id: 'api-key-many-ips',
    slots: 1,
    position: 0.7,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'duff-loyalty');
      // The key leaked in a public repository: bots in the owner's country try it from many hosts.
      const nets = [network(14061), network(16509, 'US'), network(15169), network(8075), network(7922)];
      const ips = pool(ctx, nets, 3);
      const reqs: Req[] = [];
      spread(ctx.at + 2 * MIN, 12 * MIN, 30, rng).forEach((t, i) => {
        const src = ips[i % ips.length]!;
        reqs.push(
          kongReq(rng, {
            t,
            ip: src.ip,
            ua: rng.pick(['curl/8.4.0', 'python-requests/2.31.0', 'Go-http-client/1.1']),
            method: 'GET',
            path: `/api/v1/users/u-${rng.int(10000, 10400)}`,
            status: 200,
            apiKey: { ...p.key, in: 'header' },
            consumer: p.consumer,
            tag: 'api-key-many-ips',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'api-key-many-ips',
          rules: ['api-key-many-ips', 'api-key-new-asn'],
          title: 'A leaked key tried from 15 addresses in 5 networks',
          description: `Key ${p.key.id} (AT&T, US) appears from 15 cloud and residential addresses within 12 minutes.`,
          entity: entity('gatewatch.api_key.fingerprint', ctx.fingerprint(p.key), 'api_key'),
          expectedIncidents: { 'api-key-many-ips': 1 },
          thresholds:
            'ips 15 >= 10 and asns 5 >= 3 in 30m; all US, so no new-country; the new networks also fire api-key-new-asn (count depends on its suppression).',
        },
      };
    },
  },
  {
    id: 'api-key-in-url',
    slots: 1,
    position: 0.1,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'legacy-reports');
      const reqs: Req[] = [];
      spread(ctx.at + 1 * MIN, 4 * MIN, 5, rng).forEach((t) => {
        reqs.push(
          kongReq(rng, {
            t,
            ip: p.egress[0]!.ips[0]!,
            ua: 'curl/8.4.0',
            method: 'GET',
            path: '/api/v1/reports/daily',
            query: `format=csv&api_key=${p.key.raw}`,
            status: 200,
            apiKey: { ...p.key, in: 'query' },
            consumer: p.consumer,
            tag: 'api-key-in-url',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'api-key-in-url',
          rules: ['api-key-in-url'],
          title: 'A reporting script sends its API key in the query string',
          description: `Key ${p.key.id} sent as ?api_key= to /api/v1/reports/daily by a cron script.`,
          entity: entity('gatewatch.api_key.fingerprint', ctx.fingerprint(p.key), 'api_key'),
          group: { 'gatewatch.route': '/api/v1/reports/daily' },
          expectedIncidents: { 'api-key-in-url': 1 },
          thresholds: 'filter rule: every request matches; suppressed per key and route for 1 day.',
        },
      };
    },
  },
  {
    id: 'forced-browsing-enumeration',
    slots: 1,
    position: 0.45,
    inject(ctx) {
      const { rng } = ctx;
      const [ip] = distinctIps(rng, network(14061), 1, ctx.taken);
      const ua =
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36';
      const words = [
        'admin',
        'backup',
        'config',
        'debug',
        'dump',
        'env',
        'git',
        'internal',
        'login',
        'manage',
        'old',
        'private',
        'server-status',
        'setup',
        'shell',
        'staging',
        'test',
        'tmp',
        'upload',
        'uploads',
        'user',
        'users',
        'wp-admin',
        'wp-login',
        'console',
        'actuator',
        'api-docs',
        'swagger',
        'graphql',
        'metrics',
        'health',
        'status',
        'phpinfo',
        'db',
        'database',
        'sql',
        'export',
        'import',
        'logs',
        'secret',
        'keys',
        'credentials',
        'token',
        'auth',
        'oauth',
        'jenkins',
        'grafana',
        'kibana',
        'cgi-bin',
        'portal',
      ];
      const exts = ['', '.php', '.bak', '.zip', '.json', '.old', '.txt', '.sql', '.env', '.yml', '.xml'];
      const paths: string[] = [];
      for (const pre of ['/', '/api/', '/v2/'])
        for (const w of words) for (const e of exts) paths.push(`${pre}${w}${e}`);
      rng.shuffle(paths);
      const chosen = paths.slice(0, 560);
      const a = ctx.at % (10 * MIN) === 0 ? ctx.at : ctx.at + 5 * MIN;
      const reqs: Req[] = spread(a + 1 * MIN, 8 * MIN, chosen.length, rng).map((t, i) => ({
        t,
        fmt: 'aws.alb' as const,
        ip: ip!,
        method: 'GET',
        host: WWW_HOST,
        path: chosen[i]!,
        status: rng.chance(0.1) ? 403 : 404,
        ua,
        bytesIn: rng.int(200, 400),
        bytesOut: rng.int(150, 600),
        latencyMs: rng.int(2, 12),
        albWaf: 'allow' as const,
        tag: 'forced-browsing-enumeration',
      }));
      return {
        reqs,
        label: {
          id: 'forced-browsing-enumeration',
          rules: ['forced-browsing-enumeration'],
          title: 'Content discovery with a spoofed browser user agent',
          description:
            '560 requests for 560 distinct non-existent paths in 8 minutes (one 10-minute window) from one DigitalOcean address; no scanner name in the user agent.',
          entity: entity('source.ip', ip!, 'ip'),
          expectedIncidents: { 'forced-browsing-enumeration': 1 },
          thresholds:
            'requests 560 > 500 and paths 560 > 250 in one aligned 10m window; the user agent is not on the scanner list.',
        },
      };
    },
  },
  {
    id: 'scanner-user-agent',
    slots: 1,
    position: 0.12,
    inject(ctx) {
      const { rng } = ctx;
      const [ip] = distinctIps(rng, network(14061), 1, ctx.taken);
      const ua =
        'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/105.0.0.0 Safari/537.36 Nuclei - Open-source project (github.com/projectdiscovery/nuclei)';
      const targets = [
        '/.env',
        '/.git/config',
        '/server-status',
        '/actuator/env',
        '/api/v1/swagger.json',
        '/wp-login.php',
        '/phpinfo.php',
        '/config.json',
        '/.aws/credentials',
        '/debug/pprof',
        '/api/graphql',
        '/admin/',
        '/login',
        '/jolokia',
        '/solr/admin/cores',
        '/v2/api-docs',
        '/console',
        '/cgi-bin/luci',
        '/owa/auth/logon.aspx',
        '/.DS_Store',
      ];
      const a = ctx.at % (10 * MIN) === 0 ? ctx.at : ctx.at + 5 * MIN;
      const reqs: Req[] = spread(a + 2 * MIN, 6 * MIN, 90, rng).map((t, i) => ({
        t,
        fmt: 'aws.alb' as const,
        ip: ip!,
        method: i % 9 === 0 ? 'POST' : 'GET',
        host: WWW_HOST,
        path: targets[i % targets.length]!,
        status: i % targets.length === 12 ? 200 : 404,
        ua,
        bytesIn: rng.int(200, 500),
        bytesOut: rng.int(150, 900),
        latencyMs: rng.int(2, 15),
        albWaf: 'allow' as const,
        tag: 'scanner-user-agent',
      }));
      return {
        reqs,
        label: {
          id: 'scanner-user-agent',
          rules: ['scanner-user-agent'],
          title: 'Nuclei templates run against the storefront',
          description:
            '90 requests to 20 paths in 6 minutes with the Nuclei user agent from one external address.',
          entity: entity('source.ip', ip!, 'ip'),
          group: { 'user_agent.original': ua },
          expectedIncidents: { 'scanner-user-agent': 1 },
          thresholds:
            'requests 90 > 50 and paths 20 > 10 in one aligned 10m window; 90 requests stay far below forced-browsing (500).',
        },
      };
    },
  },
  {
    id: 'bulk-scraping-per-api-key',
    slots: 4,
    position: 0.6,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'pricewatch-io');
      const ids = new Set<number>();
      while (ids.size < 2300) ids.add(rng.int(2000, 48000));
      const list = [...ids];
      const reqs: Req[] = spread(ctx.at + 2 * MIN, 45 * MIN, list.length, rng).map((t, i) =>
        kongReq(rng, {
          t,
          ip: p.egress[0]!.ips[0]!,
          ua: p.ua,
          method: 'GET',
          path: `/api/v1/products/${list[i]}`,
          status: rng.chance(0.02) ? 404 : 200,
          apiKey: { ...p.key, in: 'header' },
          consumer: p.consumer,
          tag: 'bulk-scraping-per-api-key',
        }),
      );
      return {
        reqs,
        label: {
          id: 'bulk-scraping-per-api-key',
          rules: ['bulk-scraping-per-api-key'],
          title: 'A price-monitoring partner copies the whole catalogue',
          description: `Key ${p.key.id} reads 2,300 distinct product objects in 45 minutes (normally a few dozen a day).`,
          entity: entity('gatewatch.api_key.fingerprint', ctx.fingerprint(p.key), 'api_key'),
          expectedIncidents: { 'bulk-scraping-per-api-key': 1 },
          thresholds:
            'distinct url.path about 2,250 (2xx) >= 2000 in one 1h window; no week-long history on the route, so rate-abuse (min_buckets 144) stays quiet.',
        },
      };
    },
  },
  {
    id: 'bola-object-id-enumeration',
    slots: 1,
    position: 0.25,
    inject(ctx) {
      const { rng } = ctx;
      const u = ctx.world.users[7]!;
      const a = Math.floor(ctx.at / (5 * MIN)) * 5 * MIN + 5 * MIN;
      const first = 117400;
      const reqs: Req[] = spread(a + 20_000, 4 * MIN, 75, rng).map((t, i) => {
        const id = first + i;
        const own = u.orders.includes(id);
        return kongReq(rng, {
          t,
          ip: u.ip,
          ua: 'PostmanRuntime/7.37.3',
          method: 'GET',
          path: `/api/v1/orders/${id}`,
          status: own ? 200 : i % 5 === 0 ? 404 : 403,
          consumer: u.consumer,
          session: 'bola-session-0001',
          tag: 'bola-object-id-enumeration',
        });
      });
      return {
        reqs,
        label: {
          id: 'bola-object-id-enumeration',
          rules: ['bola-object-id-enumeration'],
          title: "A signed-in customer walks other customers' order ids",
          description: `User ${u.id} requests orders ${first}..${first + 74} in 4 minutes with Postman; almost all are 403/404.`,
          entity: entity('source.ip', u.ip, 'ip'),
          group: { 'gatewatch.route': '/api/v1/orders/{id}' },
          expectedIncidents: { 'bola-object-id-enumeration': 1 },
          thresholds: 'objects 75 >= 50 and denied share ~1.0 >= 0.3 in one aligned 5m window.',
        },
      };
    },
  },
  {
    id: 'waf-blocks-from-one-client',
    slots: 1,
    position: 0.33,
    inject(ctx) {
      const { rng } = ctx;
      const net = network(14061);
      const [ip] = distinctIps(rng, net, 1, ctx.taken);
      const ua = 'sqlmap/1.7.2#stable (https://sqlmap.org)';
      // sqlmap's injection probes on one parameter, every one blocked by the managed SQLi rules.
      const probes = [
        "1'",
        "1' AND 1=1-- x",
        "1' AND 1=2-- x",
        "1' ORDER BY 1-- x",
        "1' UNION ALL SELECT NULL-- x",
        "1' AND SLEEP(5)-- x",
        '1) AND 5061=5061 AND (4411=4411',
        "1' AND EXTRACTVALUE(1,CONCAT(0x7e,(SELECT version())))-- x",
      ];
      const reqs: Req[] = spread(ctx.at + 4 * MIN, 3 * MIN, 24, rng).map((t, i) => ({
        t,
        fmt: 'aws.waf' as const,
        ip: ip!,
        host: API_HOST,
        method: 'GET',
        path: '/api/v1/products',
        query: `id=${encodeURIComponent(probes[i % probes.length]!)}&n=${i}`,
        ua,
        status: 0,
        bytesIn: 0,
        bytesOut: 0,
        latencyMs: 0,
        waf: {
          action: 'BLOCK' as const,
          ruleId: 'AWS-AWSManagedRulesSQLiRuleSet',
          ruleType: 'MANAGED_RULE_GROUP' as const,
          labels: ['awswaf:managed:aws:sql-database:SQLi_QueryArguments'],
          country: net.country,
          conditionType: 'SQL_INJECTION',
        },
        tag: 'waf-blocks-from-one-client',
      }));
      return {
        reqs,
        label: {
          id: 'waf-blocks-from-one-client',
          rules: ['waf-blocks-from-one-client'],
          title: 'sqlmap probes one parameter; AWS WAF blocks every one',
          description:
            '24 SQL injection probes on /api/v1/products?id= in 3 minutes from one DigitalOcean address, all blocked by the managed SQLi rule group.',
          entity: entity('source.ip', ip!, 'ip'),
          expectedIncidents: { 'waf-blocks-from-one-client': 1 },
          thresholds: 'blocked 24 >= 10 in one 10m window; nothing reaches the API, so no bypass.',
        },
      };
    },
  },
  {
    id: 'waf-block-then-bypass',
    slots: 1,
    position: 0.18,
    inject(ctx) {
      const { rng } = ctx;
      const [ip] = distinctIps(rng, network(9009), 1, ctx.taken);
      const ua =
        'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36';
      const payloads = [
        "q=shoes'%20UNION%20SELECT%20username,password%20FROM%20users--",
        "q=shoes'%20UnIoN%20SeLeCt%20username,password%20FROM%20users--",
        "q=shoes'/**/UNION/**/SELECT/**/username,password/**/FROM/**/users--",
        "q=shoes'%2520UNION%2520SELECT%2520username,password%2520FROM%2520users--",
        "q=shoes'%09UNION%0ASELECT%09username,password%0AFROM%09users--",
        'q=shoes%27%20%2F*!50000UNION*%2F%20%2F*!50000SELECT*%2F%20username%2Cpassword%20FROM%20users--',
      ];
      const times = spread(ctx.at + 3 * MIN, 5 * MIN, payloads.length, rng);
      const reqs: Req[] = payloads.map((q, i) => {
        const pass = i === payloads.length - 1;
        return {
          t: times[i]!,
          fmt: 'aws.alb' as const,
          ip: ip!,
          method: 'GET',
          host: WWW_HOST,
          path: '/search',
          query: q,
          status: pass ? 200 : 403,
          ua,
          bytesIn: rng.int(400, 700),
          bytesOut: pass ? rng.int(9000, 30000) : 118,
          latencyMs: pass ? rng.int(80, 400) : 0,
          albWaf: pass ? ('allow' as const) : ('block' as const),
          tag: 'waf-block-then-bypass',
        };
      });
      return {
        reqs,
        label: {
          id: 'waf-block-then-bypass',
          rules: ['waf-block-then-bypass'],
          title: 'SQL injection re-encoded until the WAF lets it through',
          description:
            'Five UNION SELECT variants on /search are blocked by AWS WAF (403 from the ALB), the sixth (MySQL versioned comments) passes with 200.',
          entity: entity('source.ip', ip!, 'ip'),
          group: { 'gatewatch.route': '/search' },
          expectedIncidents: { 'waf-block-then-bypass': 1 },
          thresholds: 'blocked 5 >= 3, then allow + 2xx on the same route within 15m.',
        },
      };
    },
  },
  {
    id: 'server-error-spike-per-route',
    slots: 1,
    position: 0.65,
    inject(ctx) {
      const { rng } = ctx;
      const a = ctx.at % (10 * MIN) === 0 ? ctx.at : ctx.at + 5 * MIN;
      const reqs: Req[] = [];
      const users = ctx.world.users.slice(100, 160);
      spread(a + 1 * MIN, 8 * MIN, 55, rng).forEach((t, i) => {
        const u = users[i % users.length]!;
        reqs.push(
          kongReq(rng, {
            t,
            ip: u.ip,
            ua: u.ua,
            method: 'POST',
            path: '/api/v1/checkout',
            status: i % 11 === 0 ? 201 : rng.pick([502, 503, 504]),
            consumer: u.consumer,
            session: rng.base62(24),
            tag: 'server-error-spike-per-route',
          }),
        );
      });
      return {
        reqs,
        label: {
          id: 'server-error-spike-per-route',
          rules: ['server-error-spike-per-route', 'server-error-burst-per-route'],
          title: 'Payment provider outage: checkout returns 5xx',
          description:
            '50 of 55 checkouts in one 10-minute bucket fail with 502/503/504 (customers retrying).',
          entity: entity('gatewatch.route', '/api/v1/checkout', 'route'),
          expectedIncidents: { 'server-error-spike-per-route': 1 },
          thresholds:
            'errors 50 >= 20 in one 10m bucket; history has about one error per bucket in 80+ buckets (min_buckets 72), so z >> 4.',
        },
      };
    },
  },
  {
    id: 'rate-abuse-per-route-baseline',
    slots: 1,
    position: 0.9,
    inject(ctx) {
      const { rng } = ctx;
      const p = partner(ctx.world, 'catalog-sync');
      const a = ctx.at % (10 * MIN) === 0 ? ctx.at : ctx.at + 5 * MIN;
      const reqs: Req[] = spread(a + 30_000, 9 * MIN, 420, rng).map((t, i) =>
        kongReq(rng, {
          t,
          ip: p.egress[0]!.ips[0]!,
          ua: p.ua,
          method: 'GET',
          path: '/api/v1/products',
          query: `page=${i + 1}&per_page=50`,
          status: 200,
          apiKey: { ...p.key, in: 'header' },
          consumer: p.consumer,
          tag: 'rate-abuse-per-route-baseline',
        }),
      );
      return {
        reqs,
        label: {
          id: 'rate-abuse-per-route-baseline',
          rules: ['rate-abuse-per-route-baseline'],
          // Its burst reads hundreds of distinct products: scraping too, where the pace allows.
          optionalRules: ['bulk-scraping-per-api-key'],
          title: 'Scraping through pagination with a sync key',
          description: `Key ${p.key.id} normally fetches page 1 of /api/v1/products every 10 minutes; it pages through 420 pages in 9 minutes.`,
          entity: entity('gatewatch.api_key.fingerprint', ctx.fingerprint(p.key), 'api_key'),
          group: { 'gatewatch.route': '/api/v1/products' },
          expectedIncidents: { 'rate-abuse-per-route-baseline': 1 },
          thresholds:
            'requests 420 >= 300 in one 10m bucket, >= 5x a mean of about 1 per bucket, with 150+ history buckets (min_buckets 144). url.path is constant, so bulk-scraping (distinct paths) cannot see this.',
        },
      };
    },
  },
];

export { NETWORKS, randomIp, SLOT };
