import { describe, expect, it } from 'vitest';
import { clusterDnsManifests, corednsComponent, corefile } from './dns.ts';
import { NETWORK, statePaths } from './layout.ts';

describe('cluster DNS', () => {
  it('serves the cluster domain on the control plane address, with a ready endpoint on loopback', () => {
    const text = corefile('/s/dns/coredns.kubeconfig');
    expect(text).toMatch(/^\.:53 \{$/m);
    expect(text).toContain(`bind ${NETWORK.controlPlaneAddress}`);
    expect(text).toContain('ready 127.0.0.1:8181');
    expect(text).toContain('kubernetes cluster.local in-addr.arpa ip6.arpa {');
    expect(text).toContain('kubeconfig /s/dns/coredns.kubeconfig');
    expect(text).not.toContain('forward');
  });

  it('puts kube-dns at the 10th service address, its endpoint on the control plane address', () => {
    const m = clusterDnsManifests();
    expect(m.service.metadata).toMatchObject({ name: 'kube-dns', namespace: 'kube-system' });
    expect(m.service.spec?.clusterIP).toBe('10.96.0.10');
    expect(m.service.spec?.selector).toBeUndefined();
    expect(m.endpointSlice.metadata?.labels?.['kubernetes.io/service-name']).toBe('kube-dns');
    expect(m.endpointSlice.endpoints?.[0]?.addresses).toEqual([NETWORK.controlPlaneAddress]);
    expect(m.endpointSlice.ports?.map((p) => `${p.name}:${p.port}/${p.protocol}`)).toEqual([
      'dns:53/UDP',
      'dns-tcp:53/TCP',
    ]);
  });

  it('lets CoreDNS only list and watch what the kubernetes plugin reads', () => {
    const m = clusterDnsManifests();
    const verbs = new Set(m.clusterRole.rules?.flatMap((r) => r.verbs));
    expect([...verbs].sort()).toEqual(['list', 'watch']);
    expect(m.clusterRoleBinding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'system:coredns' },
    ]);
  });

  it('runs CoreDNS in the cluster namespace after the API server, probed through the forwarder', () => {
    const paths = statePaths('/s');
    const spec = corednsComponent('/bin', paths, 'kube-apiserver');
    expect(spec.argv).toEqual(['/bin/coredns', '-conf', '/s/dns/Corefile']);
    expect(spec.netns).toBe(NETWORK.namespace);
    expect(spec.startAfter).toEqual(['kube-apiserver']);
    expect(spec.readiness).toEqual({ kind: 'http-unix', socketPath: paths.dnsReadySocket, path: '/ready' });
  });
});
