// The node controller against the real API server (issue 8, item 4): a node whose handler heartbeat is older than
// 5 minutes is marked unschedulable, and its VMIs fail with NodeUnresponsive once their pods are really gone, while
// a VMI whose pod is still alive is left alone (no fencing).
import { eventually } from '@kubevirt-ts/devcluster/testing';
import type { VirtualMachineInstance } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { integration, needsCluster } from './support/cluster.ts';
import { smallVMISpec, useControllerFixture } from './support/harness.ts';

describe.skipIf(!integration)(`node controller on the real API server ${needsCluster}`, () => {
  const fx = useControllerFixture('ctrl-node', {
    // A short recheck interval, so the test need not wait KubeVirt's minute between looks at the node.
    controllers: { node: { recheckIntervalMs: 1000 } },
    // The suite stops the node's heartbeat and ends its pods on purpose.
    allowNodeErrors: true,
  });
  const { ns } = fx;

  async function runningVMI(name: string): Promise<VirtualMachineInstance> {
    await fx.api.create('virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name },
      spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }),
    });
    return eventually(
      async () => {
        const v = await fx.api.vmi(name);
        return v?.status?.phase === 'Running' ? v : undefined;
      },
      { timeoutMs: 90_000, description: `VMI ${name} to run` },
    );
  }

  it('marks a node with a stale handler heartbeat unschedulable and fails only the VMIs whose pods are gone', async () => {
    const dead = await runningVMI('dead-pod');
    const alive = await runningVMI('live-pod');
    const core = fx.api.core;
    expect((await core.readNode({ name: fx.node.name })).metadata?.labels?.['kubevirt.io/schedulable']).toBe(
      'true',
    );

    // The handler dies: its last heartbeat is 10 minutes old. The kubelet still reports the pods.
    fx.node.stopHeartbeat();
    await fx.node.heartbeat(new Date(Date.now() - 10 * 60_000));
    await eventually(
      async () =>
        (await core.readNode({ name: fx.node.name })).metadata?.labels?.['kubevirt.io/schedulable'] ===
        'false',
      {
        description: 'the node to be marked unschedulable',
      },
    );
    // Both pods still alive: no VMI is failed.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await fx.api.vmi('dead-pod'))?.status?.phase).toBe('Running');

    // One launcher dies (the kubelet reports it failed); nobody reports the guest (no handler).
    const [pod] = await fx.api.podsOf(dead);
    await fx.node.endPod(ns.name, pod!.metadata!.name!, 137);
    const failed = await eventually(
      async () => {
        const v = await fx.api.vmi('dead-pod');
        return v?.status?.phase === 'Failed' ? v : undefined;
      },
      { timeoutMs: 60_000, description: 'the VMI without a live pod to fail' },
    );
    expect(failed.status?.reason).toBe('NodeUnresponsive');
    expect((await fx.api.vmi('live-pod'))?.status?.phase).toBe('Running');
    expect(alive.metadata?.uid).toBe((await fx.api.vmi('live-pod'))?.metadata?.uid);
  });
});
