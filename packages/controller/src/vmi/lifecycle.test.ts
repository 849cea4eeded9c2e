// The VMI lifecycle the controller owns (reference §2.1), transition by transition.
import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import { desiredUnpausedCondition, imagePullError, nextVMI, vmiChanged, vmiPatch } from './lifecycle.ts';

const NOW = new Date('2026-01-02T03:04:05.678Z');
const UID = 'vmi-uid';

function vmi(phase: string | undefined, extra: Partial<VMI> = {}): VMI {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: {
      name: 'v',
      namespace: 'ns',
      uid: UID,
      resourceVersion: '7',
      finalizers: ['kubevirt.io/foregroundDeleteVirtualMachine'],
    },
    spec: { domain: { devices: {} } },
    ...(phase !== undefined ? { status: { phase: phase as never } } : {}),
    ...extra,
  };
}

function pod(
  opts: {
    phase?: string;
    node?: string;
    compute?: 'running' | 'waiting' | 'terminated';
    exitCode?: number;
    deleting?: boolean;
    scheduled?: { status: string; reason?: string; message?: string };
    ready?: string;
    waitingReason?: string;
  } = {},
): V1Pod {
  const state =
    opts.compute === 'running'
      ? { running: { startedAt: NOW } }
      : opts.compute === 'terminated'
        ? { terminated: { exitCode: opts.exitCode ?? 0 } }
        : { waiting: { reason: opts.waitingReason ?? 'ContainerCreating', message: 'pulling' } };
  const conditions = [];
  if (opts.scheduled) conditions.push({ type: 'PodScheduled', ...opts.scheduled, lastTransitionTime: NOW });
  if (opts.ready) conditions.push({ type: 'Ready', status: opts.ready, lastTransitionTime: NOW });
  return {
    metadata: {
      name: 'virt-launcher-v-abcde',
      namespace: 'ns',
      uid: 'pod-uid',
      creationTimestamp: NOW,
      ownerReferences: [
        {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachineInstance',
          name: 'v',
          uid: UID,
          controller: true,
        },
      ],
      ...(opts.deleting ? { deletionTimestamp: NOW } : {}),
    },
    spec: {
      containers: [{ name: 'compute', image: 'launcher:1' }],
      ...(opts.node ? { nodeName: opts.node } : {}),
    },
    status: {
      phase: opts.phase ?? 'Pending',
      qosClass: 'Burstable',
      conditions,
      containerStatuses: [
        { name: 'compute', image: 'launcher:1', imageID: '', ready: false, restartCount: 0, state },
      ],
    },
  };
}

function step(
  v: VMI,
  p: V1Pod | undefined,
  extra: { syncError?: { reason: string; message: string }; hasOwnerVM?: boolean; owned?: V1Pod[] } = {},
) {
  return nextVMI({
    vmi: v,
    pod: p,
    ownedPods: extra.owned ?? (p ? [p] : []),
    syncError: extra.syncError,
    hasOwnerVM: extra.hasOwnerVM ?? true,
    now: NOW,
  });
}

describe('nextVMI phases', () => {
  it('Pending (or no phase) → Scheduling once the launcher pod exists, with activePods and a timestamp', () => {
    for (const phase of [undefined, 'Pending']) {
      const { vmi: next, patch } = step(vmi(phase), pod());
      expect(patch).toBe(false);
      expect(next.status?.phase).toBe('Scheduling');
      expect(next.status?.activePods).toEqual({ 'pod-uid': '' });
      expect(next.status?.phaseTransitionTimestamps).toContainEqual({
        phase: 'Scheduling',
        phaseTransitionTimestamp: '2026-01-02T03:04:05Z',
      });
      expect(next.status?.conditions).toContainEqual(
        expect.objectContaining({ type: 'Ready', status: 'False', reason: 'GuestNotRunning' }),
      );
      expect(next.status?.launcherContainerImageVersion).toBe('launcher:1');
    }
  });

  it('stays Pending without a pod, says why in Ready, and adds the finalizer a VMI created without the webhook lacks', () => {
    const v = vmi(undefined);
    v.metadata!.finalizers = [];
    const { vmi: next } = step(v, undefined);
    expect(next.status?.phase).toBe('Pending');
    expect(next.metadata?.finalizers).toEqual(['kubevirt.io/foregroundDeleteVirtualMachine']);
    expect(next.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', reason: 'PodNotExists' }),
    );
  });

  it('a Pending VMI that is deleted before it got a pod is Failed', () => {
    expect(step(vmi('Pending', {}), undefined).vmi.status?.phase).toBe('Pending');
    const deleted = vmi('Pending');
    deleted.metadata!.deletionTimestamp = NOW.toISOString();
    expect(step(deleted, undefined).vmi.status?.phase).toBe('Failed');
  });

  it('a missing PVC shows as PodScheduled=False/Unschedulable and Synchronized=False/FailedPvcNotFound', () => {
    const { vmi: next } = step(vmi('Pending'), undefined, {
      syncError: { reason: 'FailedPvcNotFound', message: 'claim "x" missing' },
    });
    expect(next.status?.conditions).toContainEqual(
      expect.objectContaining({
        type: 'PodScheduled',
        status: 'False',
        reason: 'Unschedulable',
        message: 'claim "x" missing',
      }),
    );
    expect(next.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Synchronized', status: 'False', reason: 'FailedPvcNotFound' }),
    );
  });

  it('Scheduling mirrors PodScheduled=False with the scheduler’s reason and message, and drops it once scheduled', () => {
    const unschedulable = pod({
      scheduled: {
        status: 'False',
        reason: 'Unschedulable',
        message: '0/3 nodes are available: 3 node(s) didn’t match Pod’s node affinity/selector.',
      },
    });
    const { vmi: next } = step(vmi('Scheduling'), unschedulable);
    expect(next.status?.phase).toBe('Scheduling');
    const cond = next.status?.conditions?.find((c) => c.type === 'PodScheduled');
    expect(cond).toMatchObject({ status: 'False', reason: 'Unschedulable' });
    expect(cond?.message).toContain('0/3 nodes');
    // A new scheduler message replaces the old one.
    const again = step(
      next,
      pod({ scheduled: { status: 'False', reason: 'Unschedulable', message: '0/4 nodes are available' } }),
    ).vmi;
    expect(again.status?.conditions?.find((c) => c.type === 'PodScheduled')?.message).toBe(
      '0/4 nodes are available',
    );
    const scheduled = step(again, pod({ node: 'n1', scheduled: { status: 'True' } })).vmi;
    expect(scheduled.status?.conditions?.some((c) => c.type === 'PodScheduled')).toBe(false);
  });

  it('Scheduling → Scheduled when the pod runs its compute container: nodeName, node label, activePods', () => {
    const { vmi: next } = step(
      vmi('Scheduling'),
      pod({ phase: 'Running', node: 'n1', compute: 'running', scheduled: { status: 'True' } }),
    );
    expect(next.status?.phase).toBe('Scheduled');
    expect(next.status?.nodeName).toBe('n1');
    expect(next.metadata?.labels?.['kubevirt.io/nodeName']).toBe('n1');
    expect(next.status?.activePods).toEqual({ 'pod-uid': 'n1' });
    expect(next.status?.qosClass).toBe('Burstable');
  });

  it('Scheduling → Failed when the pod fails, goes away or is deleted', () => {
    expect(
      step(vmi('Scheduling'), pod({ phase: 'Failed', compute: 'terminated', exitCode: 1 })).vmi.status?.phase,
    ).toBe('Failed');
    expect(step(vmi('Scheduling'), pod({ deleting: true })).vmi.status?.phase).toBe('Failed');
    expect(step(vmi('Scheduling'), undefined).vmi.status?.phase).toBe('Failed');
  });

  it('reports an image pull failure as Synchronized=False with the kubelet’s reason', () => {
    const p = pod({ waitingReason: 'ErrImagePull' });
    expect(imagePullError(p)).toEqual({ reason: 'ErrImagePull', message: 'pulling' });
    const { vmi: next } = step(vmi('Scheduling'), p);
    expect(next.status?.conditions).toContainEqual(
      expect.objectContaining({ type: 'Synchronized', status: 'False', reason: 'ErrImagePull' }),
    );
  });

  it('Scheduled/Running → Failed when the pod vanishes; a pod that ended is left to the handler', () => {
    for (const phase of ['Scheduled', 'Running']) {
      const running = vmi(phase, { status: { phase: phase as never, nodeName: 'n1' } });
      expect(step(running, undefined).vmi.status?.phase).toBe('Failed');
      expect(step(running, undefined).patch).toBe(true);
      expect(
        step(running, pod({ phase: 'Failed', node: 'n1', compute: 'terminated', exitCode: 2 })).vmi.status
          ?.phase,
      ).toBe(phase);
      expect(
        step(running, pod({ phase: 'Succeeded', node: 'n1', compute: 'terminated' })).vmi.status?.phase,
      ).toBe(phase);
      expect(step(running, pod({ phase: 'Running', node: 'n1', compute: 'running' })).vmi.status?.phase).toBe(
        phase,
      );
    }
  });

  it('a final VMI keeps its finalizer while pods remain and releases it when they are gone', () => {
    const failed = vmi('Failed');
    failed.metadata!.finalizers = [
      'kubevirt.io/foregroundDeleteVirtualMachine',
      'kubevirt.io/virtualMachineControllerFinalize',
    ];
    expect(step(failed, pod({ phase: 'Failed' })).vmi.metadata?.finalizers).toContain(
      'kubevirt.io/foregroundDeleteVirtualMachine',
    );
    const released = step(failed, undefined, { owned: [] }).vmi;
    expect(released.metadata?.finalizers).toEqual(['kubevirt.io/virtualMachineControllerFinalize']);
    // Without its VM, the VM controller's finalizer goes too.
    expect(step(failed, undefined, { owned: [], hasOwnerVM: false }).vmi.metadata?.finalizers).toEqual([]);
  });

  it('changes nothing on a second pass (a resync writes nothing)', () => {
    const first = step(vmi('Scheduling'), pod({ phase: 'Running', node: 'n1', compute: 'running' })).vmi;
    const second = nextVMI({
      vmi: first,
      pod: pod({ phase: 'Running', node: 'n1', compute: 'running' }),
      ownedPods: [pod({ node: 'n1' })],
      hasOwnerVM: true,
      now: new Date(NOW.getTime() + 60_000),
    }).vmi;
    expect(vmiChanged(first, second)).toBe(false);
  });
});

describe('vmiPatch', () => {
  it('guards each changed field with a test of its old value', () => {
    const before = vmi('Running', {
      status: { phase: 'Running', nodeName: 'n1', activePods: { 'pod-uid': 'n1' } },
    });
    const after = step(before, undefined).vmi;
    const ops = vmiPatch(before, after);
    expect(ops).toContainEqual({ op: 'test', path: '/status/phase', value: 'Running' });
    expect(ops).toContainEqual({ op: 'replace', path: '/status/phase', value: 'Failed' });
    expect(ops).toContainEqual({ op: 'test', path: '/status/activePods', value: { 'pod-uid': 'n1' } });
    expect(
      ops
        .filter((o) => o.op !== 'test')
        .every((o) => ops.some((t) => t.op === 'test' && t.path === o.path) || o.op === 'add'),
    ).toBe(true);
  });
});

describe('desiredUnpausedCondition', () => {
  it('is False while the VMI is paused, True otherwise, and nothing when the pod already says so', () => {
    const paused = vmi('Running', {
      status: { phase: 'Running', conditions: [{ type: 'Paused', status: 'True' }] },
    });
    expect(desiredUnpausedCondition(paused, pod(), NOW)).toMatchObject({
      type: 'kubevirt.io/virtual-machine-unpaused',
      status: 'False',
      reason: 'Paused',
    });
    const p = pod();
    expect(desiredUnpausedCondition(vmi('Running'), p, NOW)).toMatchObject({
      status: 'True',
      reason: 'NotPaused',
    });
    p.status!.conditions!.push({ type: 'kubevirt.io/virtual-machine-unpaused', status: 'True' });
    expect(desiredUnpausedCondition(vmi('Running'), p, NOW)).toBeUndefined();
  });
});
