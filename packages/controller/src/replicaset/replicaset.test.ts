import type { VirtualMachineInstanceReplicaSet } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { compileSelector } from '../label-selector.ts';
import type { VMI } from '../objects.ts';
import { deletionCandidates, isActive, nextReplicaSetStatus, vmiBaseName } from './controller.ts';

const NOW = new Date('2026-01-01T00:00:00Z');

const vmi = (
  name: string,
  phase: string,
  created: string,
  ready = false,
  extra: Partial<NonNullable<VMI['metadata']>> = {},
): VMI => ({
  metadata: { name, creationTimestamp: created, ...extra },
  spec: { domain: { devices: {} } },
  status: {
    phase: phase as never,
    conditions: [
      { type: 'Ready', status: ready ? 'True' : 'False', ...(ready ? {} : { reason: 'GuestNotRunning' }) },
    ],
  },
});

const rs = (
  extra: Partial<VirtualMachineInstanceReplicaSet['spec']> = {},
  status?: VirtualMachineInstanceReplicaSet['status'],
): VirtualMachineInstanceReplicaSet => ({
  metadata: { name: 'web', namespace: 'ns', uid: 'rs-uid' },
  spec: {
    replicas: 3,
    selector: { matchLabels: { app: 'web' } },
    template: { metadata: { labels: { app: 'web' } }, spec: { domain: { devices: {} } } },
    ...extra,
  },
  ...(status ? { status } : {}),
});

describe('replica set helpers', () => {
  it('deletes the least advanced VMIs first, the newest among equals', () => {
    const vmis = [
      vmi('running-old', 'Running', '2026-01-01T00:00:00Z'),
      vmi('pending-old', 'Pending', '2026-01-01T00:00:01Z'),
      vmi('running-new', 'Running', '2026-01-01T00:00:05Z'),
      vmi('scheduling', 'Scheduling', '2026-01-01T00:00:02Z'),
      vmi('pending-new', 'Pending', '2026-01-01T00:00:03Z'),
    ];
    expect(deletionCandidates(vmis, 4).map((v) => v.metadata?.name)).toEqual([
      'pending-new',
      'pending-old',
      'scheduling',
      'running-new',
    ]);
  });

  it('counts neither final, deleting nor pod-terminating VMIs as active', () => {
    expect(isActive(vmi('a', 'Running', ''))).toBe(true);
    expect(isActive(vmi('b', 'Failed', ''))).toBe(false);
    expect(isActive(vmi('c', 'Running', '', false, { deletionTimestamp: NOW.toISOString() }))).toBe(false);
    const terminating = vmi('d', 'Running', '');
    terminating.status!.conditions = [{ type: 'Ready', status: 'False', reason: 'PodTerminating' }];
    expect(isActive(terminating)).toBe(false);
  });

  it('names VMIs after the template, else the replica set', () => {
    expect(vmiBaseName(rs())).toBe('web');
    expect(
      vmiBaseName(rs({ template: { metadata: { generateName: 'shop-', labels: { app: 'web' } } } })),
    ).toBe('shop-');
  });

  it('reports replicas, ready replicas, the selector string, and the paused and failure conditions', () => {
    const active = [vmi('a', 'Running', '', true), vmi('b', 'Scheduling', '')];
    const selector = compileSelector(rs().spec.selector);
    const s = nextReplicaSetStatus(
      rs({ paused: true }),
      active,
      selector,
      { reason: 'FailedCreate', message: 'quota' },
      NOW,
    );
    expect(s).toMatchObject({ replicas: 2, readyReplicas: 1, labelSelector: 'app=web' });
    expect(s.conditions?.map((c) => [c.type, c.reason])).toEqual([
      ['ReplicaPaused', 'Paused'],
      ['ReplicaFailure', 'FailedCreate'],
    ]);
    const resumed = nextReplicaSetStatus(rs({}, s), active, selector, undefined, NOW);
    expect(resumed.conditions).toBeUndefined();
  });
});
