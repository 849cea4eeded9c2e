// The node controller against the real API server (issue 8, item 4): a node whose handler heartbeat is older than
// 5 minutes is marked unschedulable, and its VMIs fail with NodeUnresponsive once their pods are really gone, while
// a VMI whose pod is still alive is left alone (no fencing).
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import type { VirtualMachineInstance } from '@kubevirt-ts/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminKubeConfig, integration, needsCluster, serviceAccountKubeConfig } from './support/cluster.ts';
import { FakeNode } from './support/fake-node.ts';
import {
  Api,
  prepareCluster,
  smallVMISpec,
  startControllers,
  type RunningControllers,
} from './support/harness.ts';

describe.skipIf(!integration)(`node controller on the real API server ${needsCluster}`, () => {
  const ns = useTestNamespace('ctrl-node');
  let api: Api;
  let running: RunningControllers;
  let node: FakeNode;

  beforeAll(async () => {
    await prepareCluster(ns);
    api = new Api(ns.kc, ns.name);
    node = await FakeNode.start({
      admin: adminKubeConfig(),
      handler: await serviceAccountKubeConfig('virt-handler'),
      name: `${ns.name}-node`,
      labels: { 'test-node': ns.name },
    });
    // A short recheck interval, so the test need not wait KubeVirt's minute between looks at the node.
    running = await startControllers(ns.name, { node: { recheckIntervalMs: 1000 } });
  });

  afterAll(async () => {
    await running?.stop();
    await node?.stop();
  });

  async function runningVMI(name: string): Promise<VirtualMachineInstance> {
    await api.create('virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name },
      spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }),
    });
    return eventually(
      async () => {
        const v = await api.vmi(name);
        return v?.status?.phase === 'Running' ? v : undefined;
      },
      { timeoutMs: 90_000, description: `VMI ${name} to run` },
    );
  }

  it('marks a node with a stale handler heartbeat unschedulable and fails only the VMIs whose pods are gone', async () => {
    const dead = await runningVMI('dead-pod');
    const alive = await runningVMI('live-pod');
    const core = api.core;
    expect((await core.readNode({ name: node.name })).metadata?.labels?.['kubevirt.io/schedulable']).toBe(
      'true',
    );

    // The handler dies: its last heartbeat is 10 minutes old. The kubelet still reports the pods.
    node.stopHeartbeat();
    await node.heartbeat(new Date(Date.now() - 10 * 60_000));
    await eventually(
      async () =>
        (await core.readNode({ name: node.name })).metadata?.labels?.['kubevirt.io/schedulable'] === 'false',
      {
        description: 'the node to be marked unschedulable',
      },
    );
    // Both pods still alive: no VMI is failed.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await api.vmi('dead-pod'))?.status?.phase).toBe('Running');

    // One launcher dies (the kubelet reports it failed); nobody reports the guest (no handler).
    const [pod] = await api.podsOf(dead);
    await node.endPod(ns.name, pod!.metadata!.name!, 137);
    const failed = await eventually(
      async () => {
        const v = await api.vmi('dead-pod');
        return v?.status?.phase === 'Failed' ? v : undefined;
      },
      { timeoutMs: 60_000, description: 'the VMI without a live pod to fail' },
    );
    expect(failed.status?.reason).toBe('NodeUnresponsive');
    expect((await api.vmi('live-pod'))?.status?.phase).toBe('Running');
    expect(alive.metadata?.uid).toBe((await api.vmi('live-pod'))?.metadata?.uid);
  });
});
