/**
 * The scenario's Internet: autonomous systems with their prefixes, countries and cities. The
 * generator draws client addresses from these prefixes and writes a small GeoIP City and ASN
 * database (MaxMind format) for exactly this address space, so enrichment gives the same
 * answers on every machine.
 */
import type { Rng } from './prng.ts';

export interface City {
  name: string;
  region: string;
  lat: number;
  lon: number;
}

export interface AsInfo {
  asn: number;
  org: string;
  /** ISO 3166-1 alpha-2. */
  country: string;
  countryName: string;
  city: City;
  /** IPv4 prefixes ("a.b.c.d/len"). */
  prefixes: string[];
  kind: 'residential' | 'mobile' | 'cloud' | 'hosting' | 'enterprise';
}

const c = (name: string, region: string, lat: number, lon: number): City => ({ name, region, lat, lon });

export const NETWORKS: readonly AsInfo[] = [
  {
    asn: 7922,
    org: 'Comcast Cable Communications, LLC',
    country: 'US',
    countryName: 'United States',
    city: c('Philadelphia', 'Pennsylvania', 39.9526, -75.1652),
    prefixes: ['73.0.0.0/12', '98.192.0.0/13'],
    kind: 'residential',
  },
  {
    asn: 7018,
    org: 'AT&T Services, Inc.',
    country: 'US',
    countryName: 'United States',
    city: c('Dallas', 'Texas', 32.7767, -96.797),
    prefixes: ['107.128.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 701,
    org: 'Verizon Business',
    country: 'US',
    countryName: 'United States',
    city: c('New York', 'New York', 40.7128, -74.006),
    prefixes: ['71.160.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 21928,
    org: 'T-Mobile USA, Inc.',
    country: 'US',
    countryName: 'United States',
    city: c('Seattle', 'Washington', 47.6062, -122.3321),
    prefixes: ['172.56.0.0/14'],
    kind: 'mobile',
  },
  {
    asn: 2856,
    org: 'British Telecommunications PLC',
    country: 'GB',
    countryName: 'United Kingdom',
    city: c('London', 'England', 51.5072, -0.1276),
    prefixes: ['86.128.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 3320,
    org: 'Deutsche Telekom AG',
    country: 'DE',
    countryName: 'Germany',
    city: c('Frankfurt am Main', 'Hesse', 50.1109, 8.6821),
    prefixes: ['79.192.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 3215,
    org: 'Orange S.A.',
    country: 'FR',
    countryName: 'France',
    city: c('Paris', 'Île-de-France', 48.8566, 2.3522),
    prefixes: ['90.0.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 812,
    org: 'Rogers Communications Canada Inc.',
    country: 'CA',
    countryName: 'Canada',
    city: c('Toronto', 'Ontario', 43.6532, -79.3832),
    prefixes: ['99.224.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 3356,
    org: 'Level 3 Parent, LLC',
    country: 'US',
    countryName: 'United States',
    city: c('Chicago', 'Illinois', 41.8781, -87.6298),
    prefixes: ['4.14.0.0/16'],
    kind: 'enterprise',
  },
  {
    asn: 16509,
    org: 'Amazon.com, Inc.',
    country: 'US',
    countryName: 'United States',
    city: c('Ashburn', 'Virginia', 39.0438, -77.4874),
    prefixes: ['3.80.0.0/12'],
    kind: 'cloud',
  },
  // Same ASN, other country: a key moving regions inside one provider changes country, not network.
  {
    asn: 16509,
    org: 'Amazon.com, Inc.',
    country: 'IE',
    countryName: 'Ireland',
    city: c('Dublin', 'Leinster', 53.3498, -6.2603),
    prefixes: ['52.208.0.0/13'],
    kind: 'cloud',
  },
  {
    asn: 15169,
    org: 'Google LLC',
    country: 'US',
    countryName: 'United States',
    city: c('Council Bluffs', 'Iowa', 41.2619, -95.8608),
    prefixes: ['34.64.0.0/11'],
    kind: 'cloud',
  },
  {
    asn: 8075,
    org: 'Microsoft Corporation',
    country: 'US',
    countryName: 'United States',
    city: c('Boydton', 'Virginia', 36.6676, -78.3875),
    prefixes: ['20.0.0.0/11'],
    kind: 'cloud',
  },
  {
    asn: 14061,
    org: 'DigitalOcean, LLC',
    country: 'US',
    countryName: 'United States',
    city: c('North Bergen', 'New Jersey', 40.8043, -74.0121),
    prefixes: ['159.203.0.0/16', '167.99.0.0/16'],
    kind: 'hosting',
  },
  {
    asn: 9009,
    org: 'M247 Europe SRL',
    country: 'RO',
    countryName: 'Romania',
    city: c('Bucharest', 'Bucuresti', 44.4268, 26.1025),
    prefixes: ['146.70.0.0/16'],
    kind: 'hosting',
  },
  {
    asn: 16276,
    org: 'OVH SAS',
    country: 'FR',
    countryName: 'France',
    city: c('Roubaix', 'Hauts-de-France', 50.6942, 3.1746),
    prefixes: ['51.68.0.0/16'],
    kind: 'hosting',
  },
  {
    asn: 24940,
    org: 'Hetzner Online GmbH',
    country: 'DE',
    countryName: 'Germany',
    city: c('Falkenstein', 'Saxony', 50.4779, 12.3713),
    prefixes: ['88.198.0.0/16'],
    kind: 'hosting',
  },
  {
    asn: 12389,
    org: 'PJSC Rostelecom',
    country: 'RU',
    countryName: 'Russia',
    city: c('Moscow', 'Moscow', 55.7558, 37.6173),
    prefixes: ['95.24.0.0/13'],
    kind: 'residential',
  },
  {
    asn: 4134,
    org: 'CHINANET-BACKBONE',
    country: 'CN',
    countryName: 'China',
    city: c('Shanghai', 'Shanghai', 31.2304, 121.4737),
    prefixes: ['116.224.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 4837,
    org: 'CHINA UNICOM China169 Backbone',
    country: 'CN',
    countryName: 'China',
    city: c('Beijing', 'Beijing', 39.9042, 116.4074),
    prefixes: ['123.112.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 28573,
    org: 'Claro NXT Telecomunicacoes Ltda',
    country: 'BR',
    countryName: 'Brazil',
    city: c('São Paulo', 'São Paulo', -23.5505, -46.6333),
    prefixes: ['177.32.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 45609,
    org: 'Bharti Airtel Ltd. AS for GPRS Service',
    country: 'IN',
    countryName: 'India',
    city: c('Mumbai', 'Maharashtra', 19.076, 72.8777),
    prefixes: ['106.192.0.0/11'],
    kind: 'mobile',
  },
  {
    asn: 9829,
    org: 'National Internet Backbone',
    country: 'IN',
    countryName: 'India',
    city: c('Bengaluru', 'Karnataka', 12.9716, 77.5946),
    prefixes: ['117.192.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 9121,
    org: 'Turk Telekomunikasyon Anonim Sirketi',
    country: 'TR',
    countryName: 'Türkiye',
    city: c('Istanbul', 'Istanbul', 41.0082, 28.9784),
    prefixes: ['78.160.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 8452,
    org: 'TE Data',
    country: 'EG',
    countryName: 'Egypt',
    city: c('Cairo', 'Cairo Governorate', 30.0444, 31.2357),
    prefixes: ['41.32.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 17974,
    org: 'PT Telekomunikasi Indonesia',
    country: 'ID',
    countryName: 'Indonesia',
    city: c('Jakarta', 'Jakarta', -6.2088, 106.8456),
    prefixes: ['36.64.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 7552,
    org: 'Viettel Group',
    country: 'VN',
    countryName: 'Vietnam',
    city: c('Hanoi', 'Hanoi', 21.0278, 105.8342),
    prefixes: ['27.64.0.0/12'],
    kind: 'residential',
  },
  {
    asn: 8151,
    org: 'UNINET',
    country: 'MX',
    countryName: 'Mexico',
    city: c('Mexico City', 'Mexico City', 19.4326, -99.1332),
    prefixes: ['189.128.0.0/11'],
    kind: 'residential',
  },
  {
    asn: 7713,
    org: 'PT Telekomunikasi Indonesia (Telkomsel)',
    country: 'ID',
    countryName: 'Indonesia',
    city: c('Surabaya', 'East Java', -7.2575, 112.7521),
    prefixes: ['114.120.0.0/13'],
    kind: 'mobile',
  },
  {
    asn: 6830,
    org: 'Liberty Global B.V.',
    country: 'NL',
    countryName: 'Netherlands',
    city: c('Amsterdam', 'North Holland', 52.3676, 4.9041),
    prefixes: ['84.24.0.0/13'],
    kind: 'residential',
  },
];

/** Networks by role, as the traffic model and the attacks use them. */
export const CONSUMER_NETWORKS = NETWORKS.filter((n) => n.kind === 'residential' || n.kind === 'mobile');

export function network(asn: number, country?: string): AsInfo {
  const n = NETWORKS.find((x) => x.asn === asn && (country === undefined || x.country === country));
  if (!n) throw new Error(`unknown network AS${asn} ${country ?? ''}`);
  return n;
}

function ipToInt(ip: string): number {
  const p = ip.split('.').map(Number);
  return (((p[0]! << 24) >>> 0) + (p[1]! << 16) + (p[2]! << 8) + p[3]!) >>> 0;
}

export function intToIp(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

export function parseCidr(cidr: string): { base: number; len: number } {
  const [addr, len] = cidr.split('/');
  const l = Number(len);
  const mask = l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0;
  return { base: (ipToInt(addr!) & mask) >>> 0, len: l };
}

/** A random host address of the network (never .0 or .255). */
export function randomIp(rng: Rng, net: AsInfo): string {
  const { base, len } = parseCidr(rng.pick(net.prefixes));
  const size = 2 ** (32 - len);
  for (;;) {
    const n = (base + Math.floor(rng.next() * size)) >>> 0;
    const last = n & 255;
    if (last !== 0 && last !== 255) return intToIp(n);
  }
}

/** `count` distinct addresses of the network. */
export function distinctIps(rng: Rng, net: AsInfo, count: number, taken?: Set<string>): string[] {
  const out: string[] = [];
  const seen = taken ?? new Set<string>();
  while (out.length < count) {
    const ip = randomIp(rng, net);
    if (seen.has(ip)) continue;
    seen.add(ip);
    out.push(ip);
  }
  return out;
}

/** The network an address belongs to (undefined for addresses outside the scenario's space). */
export function lookupNetwork(ip: string): AsInfo | undefined {
  const n = ipToInt(ip);
  for (const net of NETWORKS) {
    for (const p of net.prefixes) {
      const { base, len } = parseCidr(p);
      const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      if ((n & mask) >>> 0 === base) return net;
    }
  }
  return undefined;
}
