import { describe, expect, it } from 'vitest';
import { interfaceMac, isMacAddress, masqueradeAddresses, parseIpv4Cidr, podInterfaceOf } from './network.ts';
import type { VirtualMachineInstanceSpec } from './types/vmi.ts';

describe('masquerade addresses', () => {
  it('puts the gateway on the first host of vmNetworkCIDR and the guest on the second', () => {
    expect(masqueradeAddresses(undefined)).toEqual({
      cidr: '10.0.2.0/24',
      prefix: 24,
      gateway: '10.0.2.1',
      guest: '10.0.2.2',
      broadcast: '10.0.2.255',
      netmask: '255.255.255.0',
    });
    expect(masqueradeAddresses({ name: 'n', pod: { vmNetworkCIDR: '192.168.7.8/29' } })).toMatchObject({
      gateway: '192.168.7.9',
      guest: '192.168.7.10',
      broadcast: '192.168.7.15',
      netmask: '255.255.255.248',
    });
  });

  it('refuses ranges with host bits, too small or not IPv4', () => {
    expect(parseIpv4Cidr('10.0.2.1/24')).toBeUndefined();
    expect(parseIpv4Cidr('10.0.2.0/33')).toBeUndefined();
    expect(parseIpv4Cidr('fd10::/64')).toBeUndefined();
    expect(parseIpv4Cidr('256.0.0.0/8')).toBeUndefined();
    expect(() => masqueradeAddresses({ name: 'n', pod: { vmNetworkCIDR: '10.0.0.0/31' } })).toThrow(/30/);
  });
});

describe('interface MAC', () => {
  it('keeps the spec MAC (lower case) or derives a stable one in 52:54:00 from the UID', () => {
    expect(interfaceMac('u', { name: 'default', macAddress: '02-AA-bb-CC-dd-EE' })).toBe('02:aa:bb:cc:dd:ee');
    const mac = interfaceMac('0b9f0a3e-1', { name: 'default' });
    expect(mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(interfaceMac('0b9f0a3e-1', { name: 'default' })).toBe(mac);
    expect(interfaceMac('0b9f0a3e-2', { name: 'default' })).not.toBe(mac);
    expect(isMacAddress(mac)).toBe(true);
    expect(isMacAddress('52:54:00:00:00')).toBe(false);
  });
});

describe('podInterfaceOf', () => {
  it('finds the interface on the pod network and its binding', () => {
    const spec: VirtualMachineInstanceSpec = {
      domain: {
        devices: {
          interfaces: [
            { name: 'x', masquerade: {} },
            { name: 'pod', masquerade: {} },
          ],
        },
      },
      networks: [
        { name: 'x', multus: { networkName: 'x' } },
        { name: 'pod', pod: {} },
      ],
    };
    expect(podInterfaceOf(spec)).toMatchObject({ index: 1, binding: 'masquerade', network: { name: 'pod' } });
    expect(podInterfaceOf({ domain: { devices: {} } })).toBeUndefined();
  });
});
