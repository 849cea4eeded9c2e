// The VMI replica set controller against the real API server (issue 8, item 3): scaled through the scale
// subresource (what `kubectl scale vmirs` does) 0 → 5 → 2, it converges, and /scale reports replicas and selector.
import { eventually } from '@kubevirt-ts/devcluster/testing';
import { mergePatchOptions } from '@kubevirt-ts/runtime';
import type { VirtualMachineInstanceReplicaSet } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { integration, needsCluster } from './support/cluster.ts';
import { smallVMISpec, useControllerFixture } from './support/harness.ts';

const RS = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstancereplicasets' };

interface Scale {
  spec?: { replicas?: number };
  status?: { replicas?: number; selector?: string };
}

describe.skipIf(!integration)(`VMI replica set controller on the real API server ${needsCluster}`, () => {
  const fx = useControllerFixture('ctrl-vmirs');
  const { ns } = fx;

  const scaleTo = (replicas: number) =>
    fx.api.custom.patchNamespacedCustomObjectScale(
      { ...RS, namespace: ns.name, name: 'web', body: { spec: { replicas } } },
      mergePatchOptions(),
    );
  const readScale = async () =>
    (await fx.api.custom.getNamespacedCustomObjectScale({ ...RS, namespace: ns.name, name: 'web' })) as Scale;
  const owned = async () =>
    (await fx.api.vmis()).filter((v) =>
      v.metadata?.ownerReferences?.some(
        (r) => r.kind === 'VirtualMachineInstanceReplicaSet' && r.name === 'web',
      ),
    );

  async function converges(replicas: number): Promise<void> {
    await eventually(
      async () => {
        const live = (await owned()).filter((v) => v.metadata?.deletionTimestamp === undefined);
        const all = await owned();
        const rs = await fx.api.vmirs('web');
        const scale = await readScale();
        return (
          all.length === replicas &&
          live.every((v) => v.status?.phase === 'Running') &&
          rs?.status?.replicas === replicas &&
          rs.status.readyReplicas === replicas &&
          scale.status?.replicas === replicas
        );
      },
      { timeoutMs: 120_000, description: `the replica set to converge on ${replicas} running, ready VMIs` },
    );
  }

  it('scales 0 → 5 → 2 through the scale subresource and converges', async () => {
    await fx.api.create<VirtualMachineInstanceReplicaSet>('virtualmachineinstancereplicasets', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceReplicaSet',
      metadata: { name: 'web' },
      spec: {
        replicas: 0,
        selector: { matchLabels: { app: 'web' } },
        template: {
          metadata: { labels: { app: 'web' } },
          spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }),
        },
      },
    });
    await eventually(async () => (await readScale()).status?.selector === 'app=web', {
      description: 'the scale subresource to report the selector',
    });
    expect((await readScale()).status?.replicas).toBe(0);
    await converges(0);

    await scaleTo(5);
    await converges(5);
    const five = await owned();
    expect(new Set(five.map((v) => v.metadata?.name)).size).toBe(5);
    expect(five.every((v) => v.metadata?.name?.startsWith('web'))).toBe(true);
    // Exactly one launcher pod per VMI.
    for (const v of five) expect(await fx.api.podsOf(v)).toHaveLength(1);

    await scaleTo(2);
    await converges(2);
    const two = await owned();
    expect(two.every((v) => five.some((f) => f.metadata?.uid === v.metadata?.uid))).toBe(true);
    expect((await fx.api.pods()).length).toBe(2);
  });

  it('replaces a VMI that finished, and stops creating and deleting while paused', async () => {
    const [victim] = await owned();
    const [pod] = await fx.api.podsOf(victim);
    await fx.node.endGuest(pod!, 'Failed');
    await eventually(async () => (await owned()).every((v) => v.metadata?.uid !== victim!.metadata?.uid), {
      timeoutMs: 90_000,
      description: 'the failed VMI to be removed',
    });
    await converges(2);

    await fx.api.custom.patchNamespacedCustomObject(
      { ...RS, namespace: ns.name, name: 'web', body: { spec: { paused: true } } },
      mergePatchOptions(),
    );
    await eventually(
      async () =>
        (await fx.api.vmirs('web'))?.status?.conditions?.some(
          (c) => c.type === 'ReplicaPaused' && c.status === 'True',
        ),
      {
        description: 'the ReplicaPaused condition',
      },
    );
    await scaleTo(4);
    await new Promise((r) => setTimeout(r, 3000));
    expect(await owned()).toHaveLength(2);
    await fx.api.custom.patchNamespacedCustomObject(
      { ...RS, namespace: ns.name, name: 'web', body: { spec: { paused: false } } },
      mergePatchOptions(),
    );
    await converges(4);
    expect((await fx.api.vmirs('web'))?.status?.conditions ?? []).not.toContainEqual(
      expect.objectContaining({ type: 'ReplicaPaused' }),
    );
  });

  it('adopts an orphan VMI its selector matches instead of creating another', async () => {
    await scaleTo(3);
    await converges(3);
    const before = (await owned()).map((v) => v.metadata?.uid);
    // Paused, so the fourth matching VMI is not scaled away before the replica count catches up.
    await fx.api.custom.patchNamespacedCustomObject(
      { ...RS, namespace: ns.name, name: 'web', body: { spec: { paused: true } } },
      mergePatchOptions(),
    );
    await fx.api.create('virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'stray', labels: { app: 'web' } },
      spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }),
    });
    await eventually(
      async () =>
        (await fx.api.vmi('stray'))?.metadata?.ownerReferences?.some(
          (r) => r.name === 'web' && r.controller === true,
        ),
      { description: 'the orphan to be adopted' },
    );
    await scaleTo(4);
    await fx.api.custom.patchNamespacedCustomObject(
      { ...RS, namespace: ns.name, name: 'web', body: { spec: { paused: false } } },
      mergePatchOptions(),
    );
    await converges(4);
    const after = (await owned()).map((v) => v.metadata?.uid);
    expect(after.sort()).toEqual([...before, (await fx.api.vmi('stray'))?.metadata?.uid].sort());
  });
});
