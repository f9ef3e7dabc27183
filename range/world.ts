/**
 * The range's world, derived from the seed alone: shop accounts (form/JSON login), staff accounts
 * (basic auth), OAuth clients, one API key per benign API client, the product catalogue, and the
 * secret that signs session tokens. The test API (api/server.ts, a separate process) and the
 * driver (run.ts) build the same world from the same seed, so the API knows every credential the
 * traffic will use without the two sharing anything else.
 */
import { Rng } from '../samples/generator/prng.ts';

export interface Account {
  /** Object id: `/api/users/{id}/…` of this account returns 200 to its owner. */
  id: number;
  username: string;
  password: string;
}

export interface ApiClient {
  name: string;
  key: string;
  /** The account the key acts for (its owner's objects are readable with the key). */
  ownerId: number;
  /** Sends the key as `?api_key=` instead of the X-API-Key header. */
  keyInQuery: boolean;
  kind: 'partner' | 'exporter' | 'attacker-tenant';
}

export interface OAuthClient {
  clientId: string;
  secret: string;
}

export interface World {
  seed: number;
  accounts: Account[];
  staff: Account[];
  oauthClients: OAuthClient[];
  apiClients: ApiClient[];
  productCount: number;
  /** HMAC key of the API's session tokens (HS256 JWTs). */
  tokenSecret: string;
  /** Shop account the account-takeover run guesses; its password is weak and on the attacker's list. */
  atoVictim: Account;
  /** Shop account the brute-force-only run guesses (strong password, never found). */
  bruteVictim: Account;
  /** Staff account the basic-auth brute force guesses (not found). */
  basicBruteVictim: Account;
  /** The attacker's own, legitimately registered shop account (used for BOLA). */
  attackerAccount: Account;
}

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
  'jonas',
  'kira',
  'liam',
  'maya',
  'nils',
  'olga',
  'pedro',
  'quinn',
  'rosa',
  'sven',
  'tara',
  'umar',
  'vera',
  'wen',
  'xavier',
  'yara',
  'zoe',
  'amir',
  'bianca',
  'chen',
  'dara',
  'emil',
  'fatima',
  'gus',
  'hana',
  'ivan',
  'julia',
  'karl',
  'lena',
  'marco',
  'nora',
  'oscar',
  'priya',
  'rafael',
  'sara',
  'tomas',
  'ursula',
  'viktor',
];
const LAST = [
  'adams',
  'berg',
  'costa',
  'dubois',
  'evans',
  'fischer',
  'garcia',
  'hansen',
  'ito',
  'jensen',
  'kowalski',
  'lopez',
  'meyer',
  'novak',
  'olsen',
  'petrov',
  'quist',
  'rossi',
  'silva',
  'tanaka',
  'ulrich',
  'vidal',
  'weber',
  'xu',
  'young',
  'zimmer',
  'ahmed',
  'brown',
  'chavez',
  'diaz',
  'ek',
  'ferreira',
  'gupta',
];
const DOMAINS = ['example.com', 'example.net', 'example.org', 'mail.example', 'inbox.example'];
const WORDS = [
  'maple',
  'river',
  'stone',
  'cloud',
  'amber',
  'falcon',
  'orbit',
  'cedar',
  'harbor',
  'lumen',
  'pepper',
  'quartz',
  'meadow',
  'tundra',
  'violet',
  'walnut',
  'canyon',
  'breeze',
  'copper',
  'garnet',
  'juniper',
];

export const ACCOUNT_COUNT = 400;
export const STAFF_COUNT = 24;
export const PRODUCT_COUNT = 480;
export const PAGE_SIZE = 20;

function capital(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** A password an ordinary person picks: two words and digits, sometimes a separator. */
function password(rng: Rng): string {
  const sep = rng.pick(['', '', '-', '_', '.']);
  return `${capital(rng.pick(WORDS))}${sep}${rng.pick(WORDS)}${rng.int(1, 9999)}`;
}

function username(rng: Rng, taken: Set<string>): string {
  for (;;) {
    const f = rng.pick(FIRST);
    const l = rng.pick(LAST);
    const u = rng.weighted<string>([
      [`${f}.${l}`, 3],
      [`${f}${l.charAt(0)}${rng.int(1, 99)}`, 2],
      [`${f}.${l}@${rng.pick(DOMAINS)}`, 3],
      [`${f.charAt(0)}${l}`, 1],
    ]);
    if (!taken.has(u)) {
      taken.add(u);
      return u;
    }
  }
}

export function buildWorld(seed: number): World {
  const rng = new Rng(seed).fork('world');
  const taken = new Set<string>();
  const accounts: Account[] = [];
  for (let id = 1; id <= ACCOUNT_COUNT; id++)
    accounts.push({ id, username: username(rng, taken), password: password(rng) });
  // The takeover victim chose a weak, common password; the brute-force victim a long random one.
  const atoVictim = accounts[rng.int(10, 60)]!;
  atoVictim.password = rng.pick(['Summer2024', 'Welcome123', 'Football1', 'Sunshine1', 'Password1']);
  let bruteVictim = accounts[rng.int(61, 120)]!;
  if (bruteVictim === atoVictim) bruteVictim = accounts[121]!;
  bruteVictim.password = `${rng.base62(14)}!`;
  const attackerAccount = accounts[ACCOUNT_COUNT - 1]!;

  const staff: Account[] = [];
  for (let i = 0; i < STAFF_COUNT; i++) {
    const f = rng.pick(FIRST);
    let u = `${f.charAt(0)}${rng.pick(LAST)}`;
    while (taken.has(u)) u = `${u}${rng.int(1, 9)}`;
    taken.add(u);
    staff.push({ id: 10_000 + i, username: u, password: password(rng) });
  }
  const basicBruteVictim = staff[rng.int(0, STAFF_COUNT - 1)]!;

  const oauthClients: OAuthClient[] = [];
  for (let i = 0; i < 6; i++)
    oauthClients.push({ clientId: `svc-${rng.pick(WORDS)}-${i + 1}`, secret: rng.base62(32) });

  const apiClients: ApiClient[] = [];
  const key = () => `k-live-${rng.base62(24)}`;
  for (let i = 0; i < 48; i++) {
    apiClients.push({
      name: `partner-${String(i + 1).padStart(2, '0')}`,
      key: key(),
      ownerId: rng.int(1, ACCOUNT_COUNT - 2),
      // a few integrations were written against the documented `?api_key=` form
      keyInQuery: i % 12 === 5,
      kind: 'partner',
    });
  }
  for (let i = 0; i < 3; i++) {
    apiClients.push({
      name: `exporter-${i + 1}`,
      key: key(),
      ownerId: rng.int(1, ACCOUNT_COUNT - 2),
      keyInQuery: false,
      kind: 'exporter',
    });
  }
  // free-tier keys attackers signed up for: the scraper's, and the one sqlmap probes with
  apiClients.push({
    name: 'tenant-freetier',
    key: key(),
    ownerId: attackerAccount.id,
    keyInQuery: false,
    kind: 'attacker-tenant',
  });
  apiClients.push({
    name: 'tenant-trial',
    key: key(),
    ownerId: attackerAccount.id,
    keyInQuery: false,
    kind: 'attacker-tenant',
  });

  return {
    seed,
    accounts,
    staff,
    oauthClients,
    apiClients,
    productCount: PRODUCT_COUNT,
    tokenSecret: rng.base62(40),
    atoVictim,
    bruteVictim,
    basicBruteVictim,
    attackerAccount,
  };
}
