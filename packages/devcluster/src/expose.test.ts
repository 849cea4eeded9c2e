import { describe, expect, it } from 'vitest';
import { DevclusterError } from './errors.ts';
import { exposeManifests, ipv4InCidr } from './expose.ts';

describe('ipv4InCidr', () => {
  it('checks range membership', () => {
    expect(ipv4InCidr('172.30.0.1', '172.30.0.0/16')).toBe(true);
    expect(ipv4InCidr('172.30.255.254', '172.30.0.0/16')).toBe(true);
    expect(ipv4InCidr('172.31.0.1', '172.30.0.0/16')).toBe(false);
    expect(ipv4InCidr('10.244.3.7', '10.244.0.0/16')).toBe(true);
    expect(ipv4InCidr('127.0.0.1', '0.0.0.0/0')).toBe(true);
    expect(ipv4InCidr('::1', '172.30.0.0/16')).toBe(false);
    expect(ipv4InCidr('300.1.1.1', '0.0.0.0/0')).toBe(false);
  });
});

describe('exposeManifests', () => {
  it('renders a selector-less Service and an EndpointSlice that belongs to it', () => {
    const { service, endpointSlice } = exposeManifests({
      name: 'virt-api',
      namespace: 'kubevirt',
      port: 443,
      targetPort: 8443,
    });
    expect(service.spec?.selector).toBeUndefined();
    expect(service.spec?.ports).toEqual([{ name: 'https', port: 443, targetPort: 8443, protocol: 'TCP' }]);
    expect(endpointSlice.metadata?.namespace).toBe('kubevirt');
    expect(endpointSlice.metadata?.labels?.['kubernetes.io/service-name']).toBe('virt-api');
    expect(endpointSlice.metadata?.labels?.['endpointslice.kubernetes.io/managed-by']).toBe(
      'devcluster.kubevirt-ts.dev',
    );
    expect(endpointSlice.addressType).toBe('IPv4');
    expect(endpointSlice.endpoints).toEqual([
      { addresses: ['172.30.0.1'], conditions: { ready: true, serving: true, terminating: false } },
    ]);
    // The API server matches the slice's port to the Service's port by name.
    expect(endpointSlice.ports).toEqual([{ name: 'https', port: 8443, protocol: 'TCP' }]);
  });

  it('defaults to the default namespace and the same target port', () => {
    const { service, endpointSlice } = exposeManifests({ name: 'hook', port: 9443, address: '172.30.1.5' });
    expect(service.metadata?.namespace).toBe('default');
    expect(endpointSlice.ports?.[0]?.port).toBe(9443);
    expect(endpointSlice.endpoints?.[0]?.addresses).toEqual(['172.30.1.5']);
  });

  it('refuses addresses outside the devcluster network, loopback included', () => {
    expect(() => exposeManifests({ name: 'x', port: 1, address: '127.0.0.1' })).toThrow(DevclusterError);
    expect(() => exposeManifests({ name: 'x', port: 1, address: '8.8.8.8' })).toThrow(
      /not an address inside/,
    );
  });

  it('refuses port numbers that are not ports', () => {
    expect(() => exposeManifests({ name: 'x', port: 0 })).toThrow(/--port 0 is not a port number/);
    expect(() => exposeManifests({ name: 'x', port: 443, targetPort: 70000 })).toThrow(/--target-port/);
  });
});
