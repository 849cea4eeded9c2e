import { describe, expect, it } from 'vitest';
import { FIRMWARE_UUID_NAMESPACE, firmwareUUIDFromName, isUUID, uuidV5 } from './uuid.ts';

describe('uuidV5', () => {
  it('matches the RFC 9562 example (DNS namespace, www.example.com)', () => {
    expect(uuidV5('6ba7b810-9dad-11d1-80b4-00c04fd430c8', 'www.example.com')).toBe(
      '2ed6657d-e927-568b-95e1-2665a8aea6a2',
    );
  });

  it("gives a VM KubeVirt's name-based firmware UUID (values from Python's uuid.uuid5)", () => {
    expect(firmwareUUIDFromName('testvm')).toBe('5a9fc181-957e-5c32-9e5a-2de5e9673531');
    expect(firmwareUUIDFromName('small-vm')).toBe('4100cdcd-51b9-52cb-a8a6-06d387273778');
    expect(uuidV5(FIRMWARE_UUID_NAMESPACE, 'testvm')).toBe(firmwareUUIDFromName('testvm'));
  });

  it('is a version 5, RFC variant UUID and differs per name', () => {
    const a = firmwareUUIDFromName('a');
    expect(isUUID(a)).toBe(true);
    expect(a[14]).toBe('5');
    expect('89ab').toContain(a[19]);
    expect(firmwareUUIDFromName('b')).not.toBe(a);
  });

  it('refuses a namespace that is not a UUID', () => {
    expect(() => uuidV5('not-a-uuid', 'x')).toThrow(/not a UUID/);
  });
});
