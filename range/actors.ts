/**
 * What the range's own clients share: the run context, address pools, user agents, and the
 * login flows (form, JSON, GraphQL mutation, OAuth password grant) both benign users and scripted
 * attackers go through.
 */
import type { Rng } from '../samples/generator/prng.ts';
import type { Lane } from './gateways.ts';
import { sleep } from './processes.ts';
import { Activity, type TrafficClient } from './traffic.ts';
import type { Account, World } from './world.ts';

export interface RunContext {
  world: World;
  client: TrafficClient;
  /** Start and end of the traffic (ms since the epoch). */
  t0: number;
  deadline: number;
  signal: AbortSignal;
  /** Labelled activities by label id. */
  activities: Map<string, Activity>;
}

export function activity(ctx: RunContext, id: string): Activity {
  let a = ctx.activities.get(id);
  if (a === undefined) {
    a = new Activity(id);
    ctx.activities.set(id, a);
  }
  return a;
}

export function running(ctx: RunContext, until = ctx.deadline): boolean {
  return !ctx.signal.aborted && Date.now() < Math.min(until, ctx.deadline);
}

/** Wait `ms`, cut short by the end of the run. */
export function pause(ctx: RunContext, ms: number): Promise<void> {
  return sleep(Math.min(ms, ctx.deadline - Date.now()), ctx.signal);
}

/** Wait until an absolute time (bounded by the end of the run). */
export function pauseUntil(ctx: RunContext, at: number): Promise<void> {
  return pause(ctx, at - Date.now());
}

// ---- address pools (all in 127.0.0.0/8; benign and attack pools never overlap) ----

/** Home and office connections of people browsing: 127.1.0.0 – 127.40.255.255. */
export function residentialIp(rng: Rng): string {
  return `127.${rng.int(1, 40)}.${rng.int(0, 255)}.${rng.int(1, 254)}`;
}
export const NAT_IP = '127.120.5.9';
/** Carrier-grade NAT pools the mobile clients hop between. */
export function mobileIp(rng: Rng): string {
  return `127.150.${rng.int(0, 3)}.${rng.int(1, 254)}`;
}
export const staffIp = (i: number) => `127.121.0.${10 + i}`;
export const partnerIp = (i: number, second = false) =>
  `127.200.${Math.floor(i / 50)}.${10 + (i % 50) * 2 + (second ? 1 : 0)}`;
export const exporterIp = (i: number) => `127.201.0.${11 + i}`;
export const serviceIp = (i: number) => `127.202.0.${11 + i}`;

// ---- user agents ----

export const BROWSER_UAS = [
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.0.0 Safari/537.36 Edg/125.0.0.0',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15',
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:127.0) Gecko/20100101 Firefox/127.0',
  'Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1',
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.6478.71 Mobile Safari/537.36',
  'Mozilla/5.0 (Linux; Android 13; SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/125.0.6422.165 Mobile Safari/537.36',
  'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36',
];
export const SDK_UAS = [
  'python-requests/2.31.0',
  'okhttp/4.12.0',
  'Go-http-client/1.1',
  'axios/1.7.2',
  'Java/17.0.11',
  'node-fetch/1.0 (+https://github.com/bitinn/node-fetch)',
  'curl/8.5.0',
  'Apache-HttpClient/4.5.14 (Java/11.0.22)',
];
export const MOBILE_UAS = [
  'RangeShop/5.4.1 (iPhone; iOS 17.5; Scale/3.00)',
  'RangeShop/5.4.1 (iPhone; iOS 17.4.1; Scale/3.00)',
  'RangeShop/5.4.0 (Android 14; Pixel 8) okhttp/4.12.0',
  'RangeShop/5.4.1 (Android 13; SM-S911B) okhttp/4.12.0',
];

// ---- login flows ----

export type LoginStyle = 'form' | 'json' | 'graphql' | 'oauth-password';

export interface Who {
  lane: Lane;
  from: string;
  ua: string;
  agent?: import('node:http').Agent;
  activity?: Activity | Activity[];
}

export const LOGIN_ROUTE: Record<LoginStyle, string> = {
  form: '/api/login',
  json: '/api/login',
  graphql: '/graphql',
  'oauth-password': '/oauth/token',
};

/** One login attempt; returns the session token on success. */
export async function tryLogin(
  ctx: RunContext,
  who: Who,
  style: LoginStyle,
  username: string,
  password: string,
): Promise<string | undefined> {
  const base = { lane: who.lane, from: who.from, method: 'POST', agent: who.agent, activity: who.activity };
  let res: { status: number; body: string };
  switch (style) {
    case 'form':
      res = await ctx.client.send({
        ...base,
        path: '/api/login',
        headers: {
          'User-Agent': who.ua,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: new URLSearchParams({ username, password }).toString(),
      });
      break;
    case 'json':
      res = await ctx.client.send({
        ...base,
        path: '/api/login',
        headers: { 'User-Agent': who.ua, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ username, password }),
      });
      break;
    case 'graphql':
      res = await ctx.client.send({
        ...base,
        path: '/graphql',
        headers: { 'User-Agent': who.ua, 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({
          operationName: 'Login',
          query:
            'mutation Login($username: String!, $password: String!) { login(username: $username, password: $password) { token user { id } } }',
          variables: { username, password },
        }),
      });
      break;
    case 'oauth-password':
      res = await ctx.client.send({
        ...base,
        path: '/oauth/token',
        headers: {
          'User-Agent': who.ua,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body: new URLSearchParams({
          grant_type: 'password',
          username,
          password,
          client_id: 'rangeshop-mobile',
        }).toString(),
      });
      break;
  }
  if (res.status !== 200) return undefined;
  try {
    const o = JSON.parse(res.body) as {
      token?: string;
      access_token?: string;
      data?: { login?: { token?: string } };
    };
    return o.token ?? o.access_token ?? o.data?.login?.token ?? undefined;
  } catch {
    return undefined;
  }
}

/** A plausible typo of a password (one character changed, dropped or doubled). */
export function typo(rng: Rng, password: string): string {
  const i = rng.int(0, password.length - 1);
  switch (rng.int(0, 2)) {
    case 0:
      return password.slice(0, i) + password.slice(i + 1);
    case 1:
      return password.slice(0, i) + password[i] + password.slice(i);
    default: {
      const c = password[i] === 'a' ? 's' : 'a';
      return password.slice(0, i) + c + password.slice(i + 1);
    }
  }
}

/** Accounts benign traffic uses: never the attack targets or the attacker's own account. */
export function benignAccounts(world: World): Account[] {
  const excluded = new Set([world.atoVictim.id, world.bruteVictim.id, world.attackerAccount.id]);
  return world.accounts.filter((a) => !excluded.has(a.id));
}
