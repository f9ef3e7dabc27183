import { describe, expect, it } from 'vitest';
import type { EventDraft } from '../formats/types.ts';
import { applyNetwork, networkPrefix } from './network.ts';

describe('client network', () => {
  it('is the ASN when one is known', () => {
    const ev: EventDraft = { source: { ip: '198.51.100.7', as: { number: 64500 } } };
    applyNetwork(ev);
    expect(ev.gatewatch?.network).toEqual({ id: 'AS64500', kind: 'asn' });
  });

  it('falls back to the /24 or /48 prefix without an ASN database', () => {
    const ev: EventDraft = { source: { ip: '127.70.3.9' } };
    applyNetwork(ev);
    expect(ev.gatewatch?.network).toEqual({ id: '127.70.3.0/24', kind: 'prefix' });
    expect(networkPrefix('2001:db8:aa:bb::1')).toBe('2001:db8:aa::/48');
    expect(networkPrefix('::ffff:192.0.2.10')).toBe('192.0.2.0/24');
    expect(networkPrefix('not-an-ip')).toBeUndefined();
    expect(networkPrefix('1.2.3')).toBeUndefined();
  });
});
