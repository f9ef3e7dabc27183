import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { canonicalIPv4, createClientIpResolver, parseAddress } from './client-ip.ts';

describe('client IP resolution', () => {
  const r = createClientIpResolver({ trustedProxies: ['10.0.0.0/8', '2001:db8:ffff::/48', '192.0.2.1'] });

  it('takes the peer when it is not a trusted proxy (XFF not believed)', () => {
    expect(r.resolve('203.0.113.9', '198.51.100.7')).toBe('203.0.113.9');
  });
  it('walks XFF right to left past trusted proxies', () => {
    expect(r.resolve('10.0.0.5', '198.51.100.7, 203.0.113.1, 10.1.2.3')).toBe('203.0.113.1');
    expect(r.resolve('192.0.2.1', '198.51.100.7')).toBe('198.51.100.7');
  });
  it('ignores spoofed entries left of the first untrusted hop', () => {
    expect(r.resolve('10.0.0.5', '1.2.3.4, 198.51.100.7')).toBe('198.51.100.7');
  });
  it('returns the leftmost address when every hop is trusted', () => {
    expect(r.resolve('10.0.0.5', '10.9.9.9, 10.1.1.1')).toBe('10.9.9.9');
  });
  it('stops at a malformed entry and keeps the last trusted hop', () => {
    expect(r.resolve('10.0.0.5', 'garbage, 10.1.1.1')).toBe('10.1.1.1');
  });
  it('handles IPv6, brackets, ports and IPv4-mapped addresses', () => {
    expect(r.resolve('2001:db8:ffff::1', '[2001:db8::5]:4711')).toBe('2001:db8::5');
    expect(r.resolve('::ffff:10.0.0.1', '203.0.113.7:5555')).toBe('203.0.113.7');
    expect(parseAddress('1.2')).toBeUndefined();
  });
  it('without a peer starts from the rightmost XFF entry', () => {
    expect(r.resolve(undefined, '198.51.100.7, 10.0.0.2')).toBe('198.51.100.7');
  });
  it('sets source.ip and keeps the peer and the raw header', () => {
    const ev: EventDraft = { source: { ip: '10.0.0.5' } };
    r.apply(ev, { peerIp: '10.0.0.5', forwardedFor: '198.51.100.7, 10.0.0.9' });
    expect(ev).toEqual({
      source: { ip: '198.51.100.7' },
      gatewatch: { client: { peer_ip: '10.0.0.5', forwarded_for: '198.51.100.7, 10.0.0.9' } },
    });
  });
  it('trustPrivate trusts RFC 1918 and loopback', () => {
    const p = createClientIpResolver({ trustPrivate: true });
    expect(p.resolve('127.0.0.1', '198.51.100.7, 172.16.0.4')).toBe('198.51.100.7');
  });
  it('rejects invalid trusted proxy configuration', () => {
    expect(() => createClientIpResolver({ trustedProxies: ['10.0.0.0/33'] })).toThrow(
      /invalid trusted proxy/,
    );
  });

  it('canonical dotted quads take the fast path with the same answers as ipaddr.js', () => {
    expect(canonicalIPv4('203.0.113.9')).toBe(0xcb007109);
    expect(canonicalIPv4('0.0.0.0')).toBe(0);
    expect(canonicalIPv4('255.255.255.255')).toBe(0xffffffff);
    for (const bad of [
      '010.0.0.1',
      '1.2.3',
      '1.2.3.4.5',
      '256.1.1.1',
      '1.2.3.4:80',
      ' 1.2.3.4',
      '1..2.3',
      '1.2.3.',
    ]) {
      expect(canonicalIPv4(bad), bad).toBe(-1);
    }
    const slow = (s: string) => {
      const a = parseAddress(s);
      return a?.kind() === 'ipv4' ? a.toString() : undefined;
    };
    const octet = fc.oneof(fc.integer({ min: 0, max: 300 }).map(String), fc.constantFrom('01', '00', ''));
    fc.assert(
      fc.property(fc.array(octet, { minLength: 3, maxLength: 5 }), (parts) => {
        const s = parts.join('.');
        if (canonicalIPv4(s) >= 0) expect(slow(s)).toBe(s);
      }),
      { numRuns: 5_000 },
    );
    // trust decisions agree between the fast path and the parsed path (a port forces the latter)
    const t = createClientIpResolver({
      trustedProxies: ['10.0.0.0/8', '203.0.113.0/25', '192.0.2.1', '0.0.0.0/32'],
    });
    fc.assert(
      fc.property(fc.tuple(fc.nat(255), fc.nat(255), fc.nat(255), fc.nat(255)), ([a, b, c, d]) => {
        const ip = `${a}.${b}.${c}.${d}`;
        expect(t.resolve(ip, '198.51.100.7')).toBe(t.resolve(`${ip}:443`, '198.51.100.7'));
      }),
      { numRuns: 5_000 },
    );
  });
});
