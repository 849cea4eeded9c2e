import { describe, expect, it } from 'vitest';
import {
  containerLogFile,
  nodeIdentity,
  nodeIndex,
  nodePaths,
  podNetns,
  podVeth,
  podVolumeDir,
} from './layout.ts';

describe('node layout', () => {
  it('names nodes, their namespaces and addresses from the index', () => {
    expect(nodeIdentity(2)).toEqual({
      index: 2,
      name: 'dc-node-2',
      netns: 'kvts-dc-n2',
      address: '172.30.1.2',
      clusterVeth: 'kvn2',
    });
    expect(nodeIndex('dc-node-12')).toBe(12);
    expect(nodeIndex('worker-1')).toBeUndefined();
    expect(() => nodeIdentity(0)).toThrow(RangeError);
  });

  it('keeps interface names within 15 bytes and pod namespaces under the node’s prefix', () => {
    const uid = '0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';
    expect(podVeth(uid).length).toBeLessThanOrEqual(15);
    expect(podNetns(nodeIdentity(1), uid)).toBe('kvts-dc-n1-0f1e2d3c4b5a');
  });

  it('reproduces the kubelet’s folders under the node root', () => {
    const paths = nodePaths('/state', 'dc-node-1');
    expect(paths.devicePlugins).toBe('/state/nodes/dc-node-1/var/lib/kubelet/device-plugins');
    expect(podVolumeDir(paths, 'u', 'empty-dir', 'sockets')).toBe(
      '/state/nodes/dc-node-1/var/lib/kubelet/pods/u/volumes/kubernetes.io~empty-dir/sockets',
    );
    expect(containerLogFile(paths, { namespace: 'ns', name: 'p', uid: 'u' }, 'c', 2)).toBe(
      '/state/nodes/dc-node-1/var/log/pods/ns_p_u/c/2.log',
    );
  });
});
