import { describe, expect, it } from 'vitest';
import { podRange } from './network.ts';

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
