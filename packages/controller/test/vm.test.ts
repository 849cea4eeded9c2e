// The VM controller against the real API server (issue 8, item 2): each run strategy's behaviour from reference
// §1.4 when its VMI succeeds, fails or is deleted (a fake node plays kubelet and virt-handler), start/stop requests,
// the crash-loop backoff, instancetypes kept in ControllerRevisions, RestartRequired, and deletion VMI first.
import { AppsV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { eventually } from '@kubevirt-ts/devcluster/testing';
import { mergePatchOptions } from '@kubevirt-ts/runtime';
import type { RunStrategy, VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { integration, needsCluster } from './support/cluster.ts';
import { smallVMISpec, useControllerFixture } from './support/harness.ts';

const VMS = 'virtualmachines';

describe.skipIf(!integration)(
  `VM controller and run strategies on the real API server ${needsCluster}`,
  () => {
    const fx = useControllerFixture('ctrl-vm');
    const { ns } = fx;

    function vmBody(
      name: string,
      strategy: RunStrategy | { running: boolean },
      extra: Partial<VirtualMachine['spec']> = {},
    ): VirtualMachine {
      return {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachine',
        metadata: { name },
        spec: {
          ...(typeof strategy === 'string' ? { runStrategy: strategy } : strategy),
          template: {
            metadata: { labels: { vm: name } },
            spec: smallVMISpec({ nodeSelector: { 'test-node': ns.name } }),
          },
          ...extra,
        },
      };
    }

    /** Waits until the VM's VMI is Running (the fake handler moves it there) and returns it. */
    async function runningVMI(name: string, notUid?: string): Promise<VirtualMachineInstance> {
      return eventually(
        async () => {
          const v = await fx.api.vmi(name);
          return v?.status?.phase === 'Running' &&
            v.metadata?.uid !== notUid &&
            v.metadata?.deletionTimestamp === undefined
            ? v
            : undefined;
        },
        {
          timeoutMs: 90_000,
          description: `a Running VMI of VM ${name}${notUid ? ' other than the last one' : ''}`,
        },
      );
    }

    async function printable(name: string, want: string): Promise<VirtualMachine> {
      return eventually(
        async () => {
          const vm = await fx.api.vm(name);
          return vm?.status?.printableStatus === want ? vm : undefined;
        },
        { timeoutMs: 90_000, description: `VM ${name} to be ${want}` },
      );
    }

    /** Ends the guest of a running VMI as the handler and kubelet would report it. */
    async function endGuest(vmi: VirtualMachineInstance, phase: 'Succeeded' | 'Failed'): Promise<void> {
      const [pod] = await fx.api.podsOf(vmi);
      if (pod === undefined) throw new Error(`VMI ${vmi.metadata?.name} has no pod`);
      await fx.node.endGuest(pod, phase);
    }

    /** Stays true for a while: for "nothing happens" checks (a generous window, not a speed bound). */
    async function stays(check: () => Promise<boolean>, ms = 5000): Promise<void> {
      const until = Date.now() + ms;
      while (Date.now() < until) {
        expect(await check()).toBe(true);
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    async function remove(name: string): Promise<void> {
      await fx.api.delete(VMS, name);
      await eventually(
        async () => (await fx.api.vm(name)) === undefined && (await fx.api.vmi(name)) === undefined,
        {
          timeoutMs: 90_000,
          description: `VM ${name} and its VMI to be deleted`,
        },
      );
    }

    it('Always: restarts a VMI that succeeded, failed or was deleted', async () => {
      await fx.api.create(VMS, vmBody('always', 'Always'));
      const first = await runningVMI('always');
      // Ready follows a moment after Running: the VMI copies it from the pod once the guest runs.
      const vm = await eventually(
        async () => {
          const v = await fx.api.vm('always');
          return v?.status?.printableStatus === 'Running' && v.status.ready === true ? v : undefined;
        },
        { description: 'VM always to be Running and ready' },
      );
      expect(vm.status).toMatchObject({ created: true, ready: true, runStrategy: 'Always' });
      expect(vm.metadata?.finalizers).toContain('kubevirt.io/virtualMachineControllerFinalize');
      expect(first.metadata?.ownerReferences?.[0]).toMatchObject({
        kind: 'VirtualMachine',
        name: 'always',
        controller: true,
      });
      expect(first.metadata?.finalizers).toContain('kubevirt.io/virtualMachineControllerFinalize');

      await endGuest(first, 'Succeeded');
      const second = await runningVMI('always', first.metadata?.uid);
      await endGuest(second, 'Failed');
      const third = await runningVMI('always', second.metadata?.uid);
      await fx.api.delete('virtualmachineinstances', 'always');
      const fourth = await runningVMI('always', third.metadata?.uid);
      // VMIs that ran are no crash loop.
      expect((await fx.api.vm('always'))?.status?.startFailure).toBeUndefined();
      expect(fourth.metadata?.uid).not.toBe(third.metadata?.uid);
      await remove('always');
    });

    it('RerunOnFailure: restarts a failed VMI, leaves a succeeded one stopped', async () => {
      await fx.api.create(VMS, vmBody('rerun', 'RerunOnFailure'));
      const first = await runningVMI('rerun');
      await endGuest(first, 'Failed');
      const second = await runningVMI('rerun', first.metadata?.uid);
      await endGuest(second, 'Succeeded');
      await eventually(async () => (await fx.api.vmi('rerun')) === undefined, {
        timeoutMs: 90_000,
        description: 'the succeeded VMI to be deleted',
      });
      await printable('rerun', 'Stopped');
      await stays(async () => (await fx.api.vmi('rerun')) === undefined);
      await remove('rerun');
    });

    it('Manual: starts only on a start request, stops on a stop request for its UID, never restarts by itself', async () => {
      await fx.api.create(VMS, vmBody('manual', 'Manual'));
      await printable('manual', 'Stopped');
      await stays(async () => (await fx.api.vmi('manual')) === undefined, 3000);
      await fx.api.requestStateChange('manual', { action: 'Start' });
      const first = await runningVMI('manual');
      await eventually(async () => (await fx.api.vm('manual'))?.status?.stateChangeRequests === undefined, {
        description: 'the start request to be trimmed',
      });
      // A stop request for another (older) VMI is dropped; one for this VMI stops it.
      await fx.api.requestStateChange('manual', { action: 'Stop', uid: 'not-this-vmi' });
      await eventually(async () => (await fx.api.vm('manual'))?.status?.stateChangeRequests === undefined, {
        description: 'the stale stop request to be dropped',
      });
      expect((await fx.api.vmi('manual'))?.metadata?.uid).toBe(first.metadata?.uid);
      await fx.api.requestStateChange('manual', { action: 'Stop', uid: first.metadata!.uid! });
      await eventually(async () => (await fx.api.vmi('manual')) === undefined, {
        timeoutMs: 90_000,
        description: 'the VMI to be stopped',
      });
      await printable('manual', 'Stopped');
      await fx.api.requestStateChange('manual', { action: 'Start' });
      const second = await runningVMI('manual');
      await endGuest(second, 'Succeeded');
      await printable('manual', 'Stopped');
      await stays(async () => (await fx.api.vmi('manual'))?.metadata?.uid === second.metadata?.uid, 3000);
      await remove('manual');
    });

    it('Halted (and running: false): no VMI; a start request switches the VM to running', async () => {
      await fx.api.create(VMS, vmBody('halted', 'Halted'));
      await fx.api.create(VMS, vmBody('not-running', { running: false }));
      await printable('halted', 'Stopped');
      await printable('not-running', 'Stopped');
      await stays(
        async () =>
          (await fx.api.vmi('halted')) === undefined && (await fx.api.vmi('not-running')) === undefined,
        3000,
      );
      await fx.api.requestStateChange('halted', { action: 'Start' });
      await fx.api.requestStateChange('not-running', { action: 'Start' });
      await runningVMI('halted');
      await runningVMI('not-running');
      expect((await fx.api.vm('halted'))?.spec.runStrategy).toBe('Always');
      expect((await fx.api.vm('not-running'))?.spec.running).toBe(true);
      // Halting a running VM deletes its VMI.
      const custom = ns.kc.makeApiClient(CustomObjectsApi);
      await custom.patchNamespacedCustomObject(
        {
          group: 'kubevirt.io',
          version: 'v1',
          plural: VMS,
          namespace: ns.name,
          name: 'halted',
          body: { spec: { runStrategy: 'Halted' } },
        },
        mergePatchOptions(),
      );
      await eventually(async () => (await fx.api.vmi('halted')) === undefined, {
        timeoutMs: 90_000,
        description: 'the halted VM’s VMI to be deleted',
      });
      await printable('halted', 'Stopped');
      await remove('halted');
      await remove('not-running');
    });

    it('Once: runs once; a finished VMI is left in place and not restarted', async () => {
      await fx.api.create(VMS, vmBody('once', 'Once'));
      const first = await runningVMI('once');
      await endGuest(first, 'Succeeded');
      await printable('once', 'Stopped');
      await stays(async () => {
        const v = await fx.api.vmi('once');
        return v?.metadata?.uid === first.metadata?.uid && v?.status?.phase === 'Succeeded';
      });
      // The VM recorded what the final VMI had to say and let go of it; the VMI's own finalizer stays while its
      // completed launcher pod does (as in KubeVirt, the pod of a finished VMI is kept until the VMI is deleted).
      await eventually(
        async () =>
          !(await fx.api.vmi('once'))?.metadata?.finalizers?.includes(
            'kubevirt.io/virtualMachineControllerFinalize',
          ),
        {
          description: 'the VM controller’s finalizer on the finished VMI to be released',
        },
      );
      expect((await fx.api.vmi('once'))?.metadata?.finalizers).toEqual([
        'kubevirt.io/foregroundDeleteVirtualMachine',
      ]);
      expect((await fx.api.podsOf(first)).map((p) => p.status?.phase)).toEqual(['Succeeded']);
      await remove('once');
    });

    it('running: true behaves as Always', async () => {
      await fx.api.create(VMS, vmBody('running-true', { running: true }));
      const first = await runningVMI('running-true');
      await endGuest(first, 'Succeeded');
      await runningVMI('running-true', first.metadata?.uid);
      await remove('running-true');
    });

    it('backs off VMIs that fail before they ever run (CrashLoopBackOff)', async () => {
      // Not schedulable anywhere: the pod never runs, so the VMI never reaches Running.
      const vm = vmBody('crashloop', 'Always');
      vm.spec.template.spec!.nodeSelector = { 'no-such-node': 'x' };
      await fx.api.create(VMS, vm);
      const first = await eventually(
        async () => {
          const v = await fx.api.vmi('crashloop');
          return v?.status?.phase === 'Scheduling' ? v : undefined;
        },
        { description: 'the first VMI to be Scheduling' },
      );
      // Its pod vanishes before it ran: the VMI fails early.
      const [pod] = await fx.api.podsOf(first);
      await fx.api.core.deleteNamespacedPod({
        namespace: ns.name,
        name: pod!.metadata!.name!,
        gracePeriodSeconds: 0,
      });
      const looping = await printable('crashloop', 'CrashLoopBackOff');
      const failure = looping.status?.startFailure;
      expect(failure?.consecutiveFailCount).toBe(1);
      expect(failure?.lastFailedVMIUID).toBe(first.metadata?.uid);
      const retryAfter = Date.parse(failure!.retryAfterTimestamp!);
      const failedAt = Date.now();
      // 10 s plus up to 5 s of jitter after the failure (timestamps have second precision).
      expect(retryAfter - failedAt).toBeGreaterThan(5_000);
      expect(retryAfter - failedAt).toBeLessThanOrEqual(16_000);
      const second = await eventually(
        async () => {
          const v = await fx.api.vmi('crashloop');
          return v !== undefined && v.metadata?.uid !== first.metadata?.uid ? v : undefined;
        },
        { timeoutMs: 90_000, description: 'the next VMI after the backoff' },
      );
      expect(Date.parse(second.metadata!.creationTimestamp!)).toBeGreaterThanOrEqual(retryAfter - 1000);
      await remove('crashloop');
    });

    it('expands an instancetype into the VMI from a ControllerRevision that later edits do not change', async () => {
      const custom = ns.kc.makeApiClient(CustomObjectsApi);
      const it = {
        group: 'instancetype.kubevirt.io',
        version: 'v1beta1',
        plural: 'virtualmachineinstancetypes',
        namespace: ns.name,
      };
      await custom.createNamespacedCustomObject({
        ...it,
        body: {
          apiVersion: 'instancetype.kubevirt.io/v1beta1',
          kind: 'VirtualMachineInstancetype',
          metadata: { name: 'small' },
          spec: { cpu: { guest: 2 }, memory: { guest: '96Mi' } },
        },
      });
      const vm = vmBody('sized', 'Always', {
        instancetype: { name: 'small', kind: 'VirtualMachineInstancetype' },
      });
      delete vm.spec.template.spec!.domain.resources;
      await fx.api.create(VMS, vm);
      const first = await runningVMI('sized');
      expect(first.spec.domain.memory?.guest).toBe('96Mi');
      expect(first.spec.domain.cpu).toMatchObject({ sockets: 2, cores: 1, threads: 1 });
      const withRef = await fx.api.vm('sized');
      const revision = withRef?.status?.instancetypeRef?.controllerRevisionRef?.name;
      expect(revision).toMatch(/^sized-small-v1beta1-/);
      const rev = await ns.kc
        .makeApiClient(AppsV1Api)
        .readNamespacedControllerRevision({ namespace: ns.name, name: revision! });
      expect(rev.metadata?.ownerReferences?.[0]).toMatchObject({ kind: 'VirtualMachine', name: 'sized' });
      // Editing the instancetype does not change the VM: its restart still gets 96Mi.
      await custom.patchNamespacedCustomObject(
        { ...it, name: 'small', body: { spec: { memory: { guest: '512Mi' } } } },
        mergePatchOptions(),
      );
      await endGuest(first, 'Succeeded');
      const second = await runningVMI('sized', first.metadata?.uid);
      expect(second.spec.domain.memory?.guest).toBe('96Mi');
      await remove('sized');
    });

    it('reports RestartRequired when the template changes under a running VMI, and clears it on restart', async () => {
      await fx.api.create(VMS, vmBody('changed', 'Always'));
      const first = await runningVMI('changed');
      const custom = ns.kc.makeApiClient(CustomObjectsApi);
      await custom.patchNamespacedCustomObject(
        {
          group: 'kubevirt.io',
          version: 'v1',
          plural: VMS,
          namespace: ns.name,
          name: 'changed',
          body: { spec: { template: { spec: { domain: { resources: { requests: { memory: '80Mi' } } } } } } },
        },
        mergePatchOptions(),
      );
      await eventually(
        async () =>
          (await fx.api.vm('changed'))?.status?.conditions?.some(
            (c) => c.type === 'RestartRequired' && c.status === 'True',
          ),
        {
          description: 'RestartRequired',
        },
      );
      await fx.api.requestStateChange('changed', { action: 'Stop', uid: first.metadata!.uid! });
      const second = await runningVMI('changed', first.metadata?.uid);
      expect(second.spec.domain.resources?.requests?.memory).toBe('80Mi');
      await eventually(
        async () =>
          !(await fx.api.vm('changed'))?.status?.conditions?.some((c) => c.type === 'RestartRequired'),
        {
          description: 'RestartRequired to be cleared',
        },
      );
      await remove('changed');
    });

    it('deletes the VMI first and the VM only once its VMI is gone', async () => {
      await fx.api.create(VMS, vmBody('doomed', 'Always'));
      const vmi = await runningVMI('doomed');
      // The guest takes its time to shut down: the pod stays Terminating until released.
      fx.node.holdDeletions = true;
      try {
        await fx.api.delete(VMS, 'doomed');
        const terminating = await printable('doomed', 'Terminating');
        expect(terminating.metadata?.deletionTimestamp).toBeDefined();
        const deleting = await eventually(
          async () => {
            const v = await fx.api.vmi('doomed');
            return v?.metadata?.deletionTimestamp !== undefined ? v : undefined;
          },
          { description: 'the VMI to be deleted' },
        );
        expect(deleting.metadata?.uid).toBe(vmi.metadata?.uid);
        const [pod] = await fx.api.podsOf(vmi);
        expect(pod?.metadata?.deletionTimestamp).toBeDefined();
        // Graceful: the pod has its grace period (the VMI's 5 s + 30 s padding), and both wait for it.
        expect(pod?.metadata?.deletionGracePeriodSeconds).toBe(35);
        await stays(
          async () => (await fx.api.vm('doomed')) !== undefined && (await fx.api.vmi('doomed')) !== undefined,
          3000,
        );
      } finally {
        fx.node.holdDeletions = false;
      }
      await eventually(async () => (await fx.api.vm('doomed')) === undefined, {
        timeoutMs: 90_000,
        description: 'the VM to go',
      });
      expect(await fx.api.vmi('doomed')).toBeUndefined();
      expect(await fx.api.podsOf(vmi)).toEqual([]);
    });
  },
);
