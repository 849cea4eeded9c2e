import { describe, expect, it } from 'vitest';
import { statePaths } from '../layout.ts';
import { nodeIdentity, nodePaths } from './layout.ts';
import {
  assertNftInstalled,
  kubeProxyComponent,
  kubeProxyConfiguration,
  kubeProxyHealthForward,
} from './proxy.ts';

describe('kube-proxy on a node', () => {
  const node = nodeIdentity(2);
  const paths = nodePaths('/s', node.name);

  it('runs in nftables mode for the node, leaving the machine-wide conntrack settings alone', () => {
    const config = kubeProxyConfiguration(node, '/k');
    expect(config).toMatchObject({
      kind: 'KubeProxyConfiguration',
      mode: 'nftables',
      hostnameOverride: 'dc-node-2',
      bindAddress: '172.30.1.2',
      healthzBindAddress: '172.30.1.2:10256',
      clusterCIDR: '10.244.0.0/16',
      nodePortAddresses: ['172.30.1.2/32'],
      clientConnection: { kubeconfig: '/k' },
      nftables: { masqueradeAll: true },
      conntrack: { maxPerCore: 0, min: 0 },
    });
  });

  it('is a component in the node’s namespace after the API server, probed on /healthz', () => {
    const spec = kubeProxyComponent('/bin', statePaths('/s'), node, paths, 'kube-apiserver');
    expect(spec.name).toBe('kube-proxy-dc-node-2');
    expect(spec.argv).toEqual(['/bin/kube-proxy', `--config=${paths.kubeProxy.config}`]);
    expect(spec.netns).toBe(node.netns);
    expect(spec.startAfter).toEqual(['kube-apiserver']);
    expect(spec.readiness).toEqual({
      kind: 'http-unix',
      socketPath: '/s/run/kube-proxy-dc-node-2.sock',
      path: '/healthz',
    });
    expect(kubeProxyHealthForward(node, paths)).toBe(
      'unix:/s/run/kube-proxy-dc-node-2.sock=tcp:172.30.1.2:10256',
    );
  });

  it('says what to install when nft is missing', async () => {
    await expect(assertNftInstalled({ PATH: '/nonexistent' })).rejects.toThrow(/needs the `nft` command/);
  });
});
