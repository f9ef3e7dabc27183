/**
 * The client's network (`gatewatch.network.id`): its autonomous system when an ASN database is
 * configured, else the /24 (IPv4) or /48 (IPv6) prefix of its address.
 *
 * Rules that ask "how many networks?" (a key used across providers, stuffing spread over one
 * provider's addresses) should not fall silent without a GeoIP/ASN database: a prefix is a
 * coarser but honest stand-in (one /24 is usually one provider's block; a /48 is one IPv6 site),
 * and `gatewatch.network.kind` says which one an event carries.
 */

import ipaddr from 'ipaddr.js';
import type { EventDraft } from '../formats/types.ts';
import { child } from '../formats/util.ts';
import { parseAddress } from './client-ip.ts';

const { IPv6 } = ipaddr;
const DOTTED_QUAD = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

/** The /24 or /48 prefix of an address in CIDR notation; undefined when it is not an IP. */
export function networkPrefix(ip: string): string | undefined {
  // source.ip is canonical already and nearly always a dotted quad: cut at the last dot.
  if (ip.indexOf(':') < 0) {
    const lastDot = ip.lastIndexOf('.');
    return DOTTED_QUAD.test(ip) ? `${ip.slice(0, lastDot)}.0/24` : undefined;
  }
  let addr = parseAddress(ip);
  if (addr === undefined) return undefined;
  if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress())
    addr = (addr as ipaddr.IPv6).toIPv4Address();
  if (addr.kind() === 'ipv4') {
    const s = addr.toString();
    return `${s.slice(0, s.lastIndexOf('.'))}.0/24`;
  }
  const parts = (addr as ipaddr.IPv6).parts;
  return `${new IPv6([parts[0]!, parts[1]!, parts[2]!, 0, 0, 0, 0, 0]).toString()}/48`;
}

export function applyNetwork(ev: EventDraft): void {
  const asn = ev.source?.as?.number;
  if (asn !== undefined) {
    child(ev, 'gatewatch').network = { id: `AS${asn}`, kind: 'asn' };
    return;
  }
  const ip = ev.source?.ip;
  if (ip === undefined) return;
  const prefix = networkPrefix(ip);
  if (prefix !== undefined) child(ev, 'gatewatch').network = { id: prefix, kind: 'prefix' };
}
