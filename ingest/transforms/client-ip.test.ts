import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { createClientIpResolver, parseAddress } from './client-ip.ts';

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
});
