// The node agent's device-plugin API: a plugin running as a pod (with the node's device-plugins folder mounted,
// as virt-handler's DaemonSet has it) registers through kubelet.sock, its devices appear as an extended resource in
// the Node's capacity, a pod that asks for one gets what Allocate returned, and the resource becomes unavailable
// when the plugin goes away.
import { fileURLToPath } from 'node:url';
import type { V1Node } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  devclusterNodes,
  eventually,
  onNode,
  useTestNamespace,
  waitForPod,
  type TestNode,
} from '../src/testing.ts';

const ns = useTestNamespace('node-devices');
let node: TestNode;
const samplePlugin = fileURLToPath(new URL('../src/node/deviceplugin/sample.ts', import.meta.url));

beforeAll(async () => {
  [node] = (await devclusterNodes(ns.kc, 1)) as [TestNode];
});

async function nodeObject(): Promise<V1Node> {
  return ns.core.readNode({ name: node.name });
}

describe('device plugins', () => {
  it('register from a pod, publish their devices in the Node capacity, and are allocated to containers', async () => {
    const resource = `example.com/${ns.name}`;
    const envVar = `${resource.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}_DEVICES`;
    await ns.core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'plugin' },
        spec: {
          ...onNode(node.name),
          terminationGracePeriodSeconds: 5,
          containers: [
            {
              name: 'plugin',
              image: 'node:24',
              command: ['node', '--conditions=@kubevirt-ts/source', samplePlugin],
              args: ['--resource', resource, '--devices', '2', '--device-node', '/dev/zero:/dev/widget'],
              volumeMounts: [{ name: 'device-plugins', mountPath: '/var/lib/kubelet/device-plugins' }],
            },
          ],
          volumes: [
            {
              name: 'device-plugins',
              hostPath: { path: '/var/lib/kubelet/device-plugins', type: 'Directory' },
            },
          ],
        },
      },
    });
    const registered = await eventually(
      async () => {
        const n = await nodeObject();
        return n.status?.capacity?.[resource] === '2' && n.status.allocatable?.[resource] === '2'
          ? n
          : undefined;
      },
      { timeoutMs: 60_000, description: `${resource} in the capacity of ${node.name}` },
    );
    expect(registered.status?.allocatable?.[resource]).toBe('2');

    await ns.core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'consumer' },
        spec: {
          ...onNode(node.name),
          restartPolicy: 'Never',
          containers: [
            {
              name: 'main',
              image: 'node:24',
              command: [
                'sh',
                '-c',
                `echo "devices=$${envVar}"; test -c /dev/widget && echo widget-is-a-char-device`,
              ],
              resources: { limits: { [resource]: '1' } },
            },
          ],
        },
      },
    });
    const consumer = await waitForPod(ns.core, ns.name, 'consumer', (p) =>
      ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
    );
    const log = await ns.core.readNamespacedPodLog({ name: 'consumer', namespace: ns.name });
    expect(log).toMatch(/^devices=dev-\d\n/);
    expect(log).toContain('widget-is-a-char-device');
    expect(consumer.status?.phase).toBe('Succeeded');

    await ns.core.deleteNamespacedPod({ name: 'plugin', namespace: ns.name });
    const gone = await eventually(
      async () => {
        const n = await nodeObject();
        return n.status?.allocatable?.[resource] === '0' ? n : undefined;
      },
      { timeoutMs: 60_000, description: `${resource} to become unavailable once its plugin stopped` },
    );
    // The kubelet keeps the devices in the capacity for a grace period, unusable.
    expect(gone.status?.capacity?.[resource]).toBe('2');
  });
});
