import { describe, expect, it } from 'vitest';
import { podMac, podRange } from './network.ts';

describe('podRange', () => {
  it('uses the first address as the gateway and the rest but the broadcast for pods', () => {
    const range = podRange('10.244.3.0/24');
    expect(range.gateway).toBe('10.244.3.1');
    expect(range.addresses[0]).toBe('10.244.3.2');
    expect(range.addresses.at(-1)).toBe('10.244.3.254');
    expect(range.addresses).toHaveLength(253);
  });
  it('refuses ranges it cannot route', () => {
    expect(() => podRange('10.0.0.0/8')).toThrow(/between \/16 and \/30/);
    expect(() => podRange('fd00::/64')).toThrow();
  });
});

describe('podMac', () => {
  it('is locally administered, unicast, and the same for the same address', () => {
    expect(podMac('10.244.1.5')).toBe('0a:58:0a:f4:01:05');
    expect(podMac('10.244.1.5')).toBe(podMac('10.244.1.5'));
    expect(podMac('10.244.2.5')).not.toBe(podMac('10.244.1.5'));
    const first = parseInt(podMac('10.244.255.254').slice(0, 2), 16);
    expect(first & 0b10).toBe(0b10); // locally administered
    expect(first & 0b1).toBe(0); // unicast
  });

  it('refuses what is not an IPv4 address', () => {
    expect(() => podMac('10.244.1')).toThrow(/not an IPv4 address/);
    expect(() => podMac('10.244.1.256')).toThrow(/not an IPv4 address/);
  });
});
