import { describe, expect, it } from 'vitest';
import { defaultStateDir, devclusterInstance, hostPortFor, namespacePrefixFor } from './layout.ts';

describe('devcluster instances', () => {
  it('keeps the default names when no instance is set', () => {
    expect(devclusterInstance({})).toBeUndefined();
    expect(devclusterInstance({ KUBEVIRT_TS_DEVCLUSTER_INSTANCE: '' })).toBeUndefined();
    expect(namespacePrefixFor(undefined)).toBe('kvts-dc');
    expect(hostPortFor(undefined)).toBe(36443);
    expect(defaultStateDir({ HOME: '/h' })).toBe('/h/.local/state/kubevirt-ts/devcluster');
  });

  it('gives an instance its own namespaces, state dir and port, none a prefix of another', () => {
    const env = { HOME: '/h', KUBEVIRT_TS_DEVCLUSTER_INSTANCE: 'b' };
    expect(devclusterInstance(env)).toBe('b');
    expect(defaultStateDir(env)).toBe('/h/.local/state/kubevirt-ts/devcluster-b');
    const names = ['b', 'bb', 'dc', 'x1', undefined].map(namespacePrefixFor);
    for (const a of names)
      for (const b of names) if (a !== b) expect(`${b}-n1`.startsWith(`${a}-`) || b === a).toBe(false);
    const port = hostPortFor('b');
    expect(port).toBeGreaterThan(36443);
    expect(port).toBeLessThan(36944);
    expect(hostPortFor('b')).toBe(port);
  });

  it('refuses a name that would not fit in a namespace or interface name', () => {
    expect(() => devclusterInstance({ KUBEVIRT_TS_DEVCLUSTER_INSTANCE: 'Bad-Name' })).toThrow(
      /1–6 lowercase/,
    );
    expect(() => devclusterInstance({ KUBEVIRT_TS_DEVCLUSTER_INSTANCE: 'toolong7' })).toThrow(
      /1–6 lowercase/,
    );
  });
});
