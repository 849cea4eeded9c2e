// The VMI controller against the real API server and kube-scheduler (issue 8, item 1): launcher pods rendered,
// scheduled by the real scheduler onto a node, phases Pending → Scheduling → Scheduled, a pod that vanishes,
// graceful deletion with the finalizer released only once the pods are gone, and the API writes one VM start costs.
import { eventually } from '@kubevirt-ts/devcluster/testing';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { writesBetween } from '../src/index.ts';
import { integration, needsCluster } from './support/cluster.ts';
import { smallVMISpec, useControllerFixture } from './support/harness.ts';

describe.skipIf(!integration)(`VMI controller on the real API server ${needsCluster}`, () => {
  const fx = useControllerFixture('ctrl-vmi');
  const { ns } = fx;

  it('renders the launcher pod, follows it to Scheduled and hands over to the handler, then deletes gracefully', async () => {
    const created = await fx.api.create<VirtualMachineInstance>('virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'lifecycle', labels: { app: 'lifecycle' } },
      spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }),
    });
    const pod = await eventually(async () => (await fx.api.podsOf(created))[0], {
      description: 'the launcher pod',
    });
    expect(pod.metadata?.labels).toMatchObject({
      'kubevirt.io': 'virt-launcher',
      'kubevirt.io/created-by': created.metadata?.uid,
      app: 'lifecycle',
    });
    expect(pod.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'VirtualMachineInstance',
      name: 'lifecycle',
      controller: true,
    });
    expect(pod.spec?.nodeSelector).toMatchObject({ 'kubevirt.io/schedulable': 'true', 'test-node': ns.name });

    const scheduled = await eventually(
      async () => {
        const v = await fx.api.vmi('lifecycle');
        return v?.status?.phase === 'Running' || v?.status?.phase === 'Scheduled' ? v : undefined;
      },
      { description: 'the VMI to be Scheduled (and then Running, by the handler)' },
    );
    expect(scheduled.status?.nodeName).toBe(fx.node.name);
    expect(scheduled.metadata?.labels?.['kubevirt.io/nodeName']).toBe(fx.node.name);
    expect(scheduled.status?.activePods).toEqual({ [pod.metadata!.uid!]: fx.node.name });
    expect(scheduled.metadata?.finalizers).toContain('kubevirt.io/foregroundDeleteVirtualMachine');
    // Created without virt-api's webhook, the VMI had no phase (not Pending) before the controller saw it.
    const phases = scheduled.status?.phaseTransitionTimestamps?.map((t) => t.phase) ?? [];
    expect(phases.indexOf('Scheduling')).toBeGreaterThanOrEqual(0);
    expect(phases.indexOf('Scheduled')).toBeGreaterThan(phases.indexOf('Scheduling'));

    // The readiness gate is the controller's: set True (not paused), and the pod then becomes Ready.
    await eventually(
      async () => {
        const p = (await fx.api.podsOf(created))[0];
        const gate = p?.status?.conditions?.find((c) => c.type === 'kubevirt.io/virtual-machine-unpaused');
        return (
          gate?.status === 'True' && p?.status?.conditions?.find((c) => c.type === 'Ready')?.status === 'True'
        );
      },
      { description: 'the pod’s readiness gate to be set and the pod Ready' },
    );
    await eventually(
      async () =>
        (await fx.api.vmi('lifecycle'))?.status?.conditions?.find((c) => c.type === 'Ready')?.status ===
        'True',
      {
        description: 'the VMI Ready condition copied from the running pod',
      },
    );

    await fx.api.delete('virtualmachineinstances', 'lifecycle');
    // The pod is deleted gracefully (the fake kubelet finishes it); the VMI stays until then.
    const deleting = await fx.api.vmi('lifecycle');
    expect(deleting?.metadata?.deletionTimestamp).toBeDefined();
    await eventually(async () => (await fx.api.vmi('lifecycle')) === undefined, {
      timeoutMs: 90_000,
      description: 'the VMI to go after its pod',
    });
    expect(await fx.api.podsOf(created)).toEqual([]);
  });

  it('fails a VMI whose pod vanishes while it is being scheduled', async () => {
    const created = await fx.api.create<VirtualMachineInstance>('virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name: 'vanishing' },
      spec: smallVMISpec({ nodeSelector: { 'no-such-node': 'anywhere' } }),
    });
    const pod = await eventually(async () => (await fx.api.podsOf(created))[0], {
      description: 'the launcher pod',
    });
    await eventually(async () => (await fx.api.vmi('vanishing'))?.status?.phase === 'Scheduling', {
      description: 'Scheduling',
    });
    await fx.api.core.deleteNamespacedPod({
      namespace: ns.name,
      name: pod.metadata!.name!,
      gracePeriodSeconds: 0,
    });
    const failed = await eventually(
      async () => {
        const v = await fx.api.vmi('vanishing');
        return v?.status?.phase === 'Failed' ? v : undefined;
      },
      { description: 'the VMI to fail' },
    );
    // Final and without pods: the finalizer is released, so deleting it removes it at once.
    await eventually(
      async () =>
        !(await fx.api.vmi('vanishing'))?.metadata?.finalizers?.includes(
          'kubevirt.io/foregroundDeleteVirtualMachine',
        ),
      {
        description: 'the finalizer to be released',
      },
    );
    expect(failed.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toContain('Failed');
    await fx.api.delete('virtualmachineinstances', 'vanishing');
  });

  it('shows an unschedulable pod as PodScheduled=False with the scheduler’s message, and the VM as ErrorUnschedulable', async () => {
    await fx.api.create<VirtualMachine>('virtualmachines', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'nowhere' },
      spec: {
        runStrategy: 'Always',
        template: { spec: smallVMISpec({ nodeSelector: { 'no-such-label': 'x' } }) },
      },
    });
    const vmi = await eventually(
      async () => {
        const v = await fx.api.vmi('nowhere');
        const c = v?.status?.conditions?.find((x) => x.type === 'PodScheduled');
        return c?.status === 'False' ? { v, c } : undefined;
      },
      { description: 'PodScheduled=False on the VMI' },
    );
    expect(vmi.c.reason).toBe('Unschedulable');
    expect(vmi.c.message).toMatch(/nodes are available|no nodes available/);
    await eventually(
      async () => (await fx.api.vm('nowhere'))?.status?.printableStatus === 'ErrorUnschedulable',
      { description: 'printableStatus ErrorUnschedulable' },
    );
    await fx.api.delete('virtualmachines', 'nowhere');
    await eventually(async () => (await fx.api.vm('nowhere')) === undefined, {
      timeoutMs: 90_000,
      description: 'the VM to be deleted',
    });
  });

  it('starts a VM with few API writes (KubeVirt: about 5–6 VMI updates and 2 pod patches per VMI)', async () => {
    const before = fx.running.controllers.writes.snapshot();
    await fx.api.create<VirtualMachine>('virtualmachines', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'counted' },
      spec: {
        runStrategy: 'Always',
        template: { spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }) },
      },
    });
    await eventually(
      async () => {
        const vm = await fx.api.vm('counted');
        return vm?.status?.printableStatus === 'Running' && vm.status.ready === true;
      },
      { timeoutMs: 90_000, description: 'the VM to be Running and ready' },
    );
    // Let the last status writes land.
    await new Promise((r) => setTimeout(r, 2000));
    const writes = writesBetween(before, fx.running.controllers.writes.snapshot());
    const sum = (prefix: string) =>
      Object.entries(writes)
        .filter(([k]) => k.endsWith(` ${prefix}`))
        .reduce((n, [, v]) => n + v, 0);
    const vmiWrites =
      (writes['update virtualmachineinstances'] ?? 0) + (writes['patch virtualmachineinstances'] ?? 0);
    const podWrites = (writes['create pods'] ?? 0) + sum('pods/status');
    console.info(`API writes for one VM start: ${JSON.stringify(writes)}`);
    expect(writes['create virtualmachineinstances']).toBe(1);
    expect(writes['create pods']).toBe(1);
    expect(vmiWrites).toBeLessThanOrEqual(6);
    expect(podWrites).toBeLessThanOrEqual(3);
    await fx.api.delete('virtualmachines', 'counted');
    await eventually(
      async () => (await fx.api.vm('counted')) === undefined && (await fx.api.vmi('counted')) === undefined,
      {
        timeoutMs: 90_000,
        description: 'the VM and its VMI to be deleted',
      },
    );
  });
});
