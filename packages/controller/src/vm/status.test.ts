// The VM status the controller writes: created/ready, state change requests trimmed once done, conditions mirrored
// from the VMI, Failure from the sync, RestartRequired when the template changed under a live VMI.
import type { Condition, VirtualMachine } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import { firstRequestDone, nextVMStatus, restartRequiredCondition } from './status.ts';
import { vmiFromVM } from './vmi-from-vm.ts';

const NOW = new Date('2026-01-01T00:00:00Z');

const vm = (status: VirtualMachine['status'] = {}, generation = 3): VirtualMachine => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'vm', namespace: 'ns', uid: 'vm-uid', generation },
  spec: {
    runStrategy: 'Always',
    template: {
      metadata: { labels: { app: 'x' }, annotations: { note: 'y' } },
      spec: {
        domain: { resources: { requests: { memory: '64Mi' } }, devices: {} },
        volumes: [{ name: 'root', containerDisk: { image: 'd:1' } }],
      },
    },
  },
  status,
});

const vmi = (phase: string, conditions: Condition[] = []): VMI => ({
  metadata: { name: 'vm', namespace: 'ns', uid: 'vmi-1', annotations: { 'kubevirt.io/vm-generation': '3' } },
  spec: { domain: { devices: {} } },
  status: { phase: phase as never, conditions },
});

describe('nextVMStatus', () => {
  it('reports a running, ready VM and copies the VMI’s conditions', () => {
    const s = nextVMStatus({
      vm: vm(),
      vmi: vmi('Running', [
        { type: 'Ready', status: 'True', lastTransitionTime: '2026-01-01T00:00:00Z' },
        { type: 'AgentConnected', status: 'True' },
      ]),
      strategy: 'Always',
      syncError: undefined,
      startExpected: false,
      stopExpected: false,
      now: NOW,
    });
    expect(s).toMatchObject({
      created: true,
      ready: true,
      printableStatus: 'Running',
      runStrategy: 'Always',
      desiredGeneration: 3,
      observedGeneration: 3,
    });
    expect(s.conditions?.map((c) => c.type).sort()).toEqual(['AgentConnected', 'Ready']);
  });

  it('says why it is not ready without a VMI, and records a sync failure', () => {
    const s = nextVMStatus({
      vm: vm(),
      vmi: undefined,
      strategy: 'Always',
      syncError: { reason: 'FailedCreate', message: 'boom' },
      startExpected: false,
      stopExpected: false,
      now: NOW,
    });
    expect(s.created).toBe(false);
    expect(s.conditions).toContainEqual(
      expect.objectContaining({ type: 'Ready', status: 'False', reason: 'VMINotExists' }),
    );
    expect(s.conditions).toContainEqual(
      expect.objectContaining({ type: 'Failure', status: 'True', reason: 'FailedCreate', message: 'boom' }),
    );
    expect(s.runStrategy).toBeUndefined();
    const cleared = nextVMStatus({
      vm: vm(s),
      vmi: undefined,
      strategy: 'Always',
      syncError: undefined,
      startExpected: false,
      stopExpected: false,
      now: NOW,
    });
    expect(cleared.conditions?.some((c) => c.type === 'Failure')).toBe(false);
  });

  it('drops VMI conditions the VMI no longer has, and keeps or sets RestartRequired as told', () => {
    const before = vm({
      conditions: [
        { type: 'AgentConnected', status: 'True' },
        { type: 'RestartRequired', status: 'True' },
      ],
    });
    const s = nextVMStatus({
      vm: before,
      vmi: vmi('Running'),
      strategy: 'Always',
      syncError: undefined,
      startExpected: false,
      stopExpected: false,
      now: NOW,
    });
    expect(s.conditions?.map((c) => c.type).sort()).toEqual(['Ready', 'RestartRequired']);
    const removed = nextVMStatus({
      vm: before,
      vmi: vmi('Running'),
      strategy: 'Always',
      syncError: undefined,
      startExpected: false,
      stopExpected: false,
      restartRequired: null,
      now: NOW,
    });
    expect(removed.conditions?.some((c) => c.type === 'RestartRequired')).toBe(false);
  });

  it('trims a Start request once a live VMI exists, and a Stop request once its VMI is gone', () => {
    const starting = vm({ stateChangeRequests: [{ action: 'Start' }] });
    expect(firstRequestDone(starting, undefined)).toBe(false);
    expect(firstRequestDone(starting, vmi('Pending'))).toBe(true);
    expect(firstRequestDone(starting, vmi('Failed'))).toBe(false);
    const stopping = vm({ stateChangeRequests: [{ action: 'Stop', uid: 'vmi-1' }, { action: 'Start' }] });
    expect(firstRequestDone(stopping, vmi('Running'))).toBe(false);
    const s = nextVMStatus({
      vm: stopping,
      vmi: undefined,
      strategy: 'Manual',
      syncError: undefined,
      startExpected: false,
      stopExpected: false,
      now: NOW,
    });
    expect(s.stateChangeRequests).toEqual([{ action: 'Start' }]);
    expect(
      firstRequestDone(vm({ stateChangeRequests: [{ action: 'Stop', uid: 'old' }] }), vmi('Running')),
    ).toBe(true);
  });
});

describe('restartRequiredCondition', () => {
  it('is set when the template spec differs from the one the VMI started with, regardless of key order', () => {
    const started = vm().spec;
    expect(restartRequiredCondition(vm().spec, started, NOW)).toBeUndefined();
    const reverseKeys = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(reverseKeys)
        : v !== null && typeof v === 'object'
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, reverseKeys(x)]),
            )
          : v;
    const reordered = reverseKeys(started) as VirtualMachine['spec'];
    expect(JSON.stringify(reordered)).not.toBe(JSON.stringify(started));
    expect(restartRequiredCondition(reordered, started, NOW)).toBeUndefined();
    const changed = vm().spec;
    changed.template.spec!.domain.resources = { requests: { memory: '128Mi' } };
    expect(restartRequiredCondition(changed, started, NOW)).toMatchObject({
      type: 'RestartRequired',
      status: 'True',
    });
    expect(restartRequiredCondition(changed, undefined, NOW)).toBeUndefined();
  });
});

describe('vmiFromVM', () => {
  it('builds the VMI from the template with owner, finalizer, generation, revision and a stable firmware UUID', () => {
    const v = vm({ stateChangeRequests: [{ action: 'Start', data: { paused: 'true' } }] });
    const out = vmiFromVM(v, v.spec.template as never, 'revision-start-vm-vm-uid-3');
    expect(out.metadata).toMatchObject({
      name: 'vm',
      namespace: 'ns',
      labels: { app: 'x' },
      annotations: { note: 'y', 'kubevirt.io/vm-generation': '3' },
      finalizers: ['kubevirt.io/virtualMachineControllerFinalize'],
      ownerReferences: [
        { kind: 'VirtualMachine', name: 'vm', uid: 'vm-uid', controller: true, blockOwnerDeletion: true },
      ],
    });
    expect(out.status).toEqual({ virtualMachineRevisionName: 'revision-start-vm-vm-uid-3' });
    expect(out.spec.startStrategy).toBe('Paused');
    expect(out.spec.domain.firmware?.uuid).toMatch(/^[0-9a-f-]{36}$/);
    expect(vmiFromVM(v, v.spec.template as never, 'r').spec.domain.firmware?.uuid).toBe(
      out.spec.domain.firmware?.uuid,
    );
    expect(out.spec.domain.devices.disks).toEqual([{ name: 'root' }]);
    expect(v.spec.template.spec?.domain.devices.disks).toBeUndefined();
  });
});
