import type { KubeVirt } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { activeKubeVirt, degradedCondition, kubevirtStatusPatch } from './cluster-config.ts';

const NOW = new Date('2026-01-01T00:00:00Z');
const cr = (
  name: string,
  created: string,
  configuration: Record<string, unknown> = {},
  status?: KubeVirt['status'],
): KubeVirt => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'KubeVirt',
  metadata: { name, namespace: 'kubevirt', uid: `${name}-uid`, creationTimestamp: created, generation: 2 },
  spec: { configuration },
  ...(status ? { status } : {}),
});

describe('the KubeVirt CR in effect', () => {
  it('is the oldest live one', () => {
    const a = cr('a', '2026-01-01T00:00:05Z');
    const b = cr('b', '2026-01-01T00:00:01Z');
    expect(activeKubeVirt([a, b])?.metadata?.name).toBe('b');
    const deleting = { ...b, metadata: { ...b.metadata, deletionTimestamp: '2026-01-01T00:01:00Z' } };
    expect(activeKubeVirt([a, deleting])?.metadata?.name).toBe('a');
    expect(activeKubeVirt([])).toBeUndefined();
  });
});

describe('degradedCondition', () => {
  it('is False for a valid configuration', () => {
    const valid = cr('kubevirt', '2026-01-01T00:00:00Z', {
      developerConfiguration: { useEmulation: true, cpuAllocationRatio: 4 },
    });
    expect(degradedCondition(valid, valid, NOW)).toMatchObject({
      type: 'Degraded',
      status: 'False',
      reason: 'ConfigurationValid',
    });
  });

  it('is True with every cause (field and message) for an invalid one', () => {
    const invalid = cr('kubevirt', '2026-01-01T00:00:00Z', {
      developerConfiguration: { cpuAllocationRatio: 'lots' },
      additionalGuestMemoryOverheadRatio: '0.5',
    });
    const c = degradedCondition(invalid, invalid, NOW);
    expect(c).toMatchObject({ type: 'Degraded', status: 'True', reason: 'InvalidConfiguration' });
    expect(c.message).toContain('spec.configuration.developerConfiguration.cpuAllocationRatio');
  });

  it('marks a second CR as ignored, naming the one in effect', () => {
    const first = cr('first', '2026-01-01T00:00:00Z');
    const second = cr('second', '2026-01-01T00:00:09Z');
    expect(degradedCondition(second, first, NOW)).toMatchObject({
      status: 'True',
      reason: 'IgnoredDuplicate',
    });
    expect(degradedCondition(second, first, NOW).message).toContain('first');
  });
});

describe('kubevirtStatusPatch', () => {
  it('adds the status when there is none, and nothing when it already says the same', () => {
    const c = cr('kubevirt', '2026-01-01T00:00:00Z');
    const condition = degradedCondition(c, c, NOW);
    expect(kubevirtStatusPatch(c, condition)).toEqual([
      { op: 'add', path: '/status', value: { conditions: [condition], observedGeneration: 2 } },
    ]);
    const done = cr(
      'kubevirt',
      '2026-01-01T00:00:00Z',
      {},
      { conditions: [condition], observedGeneration: 2 },
    );
    expect(kubevirtStatusPatch(done, { ...condition, lastProbeTime: 'later' })).toBeUndefined();
  });

  it('replaces the conditions behind a test of the old ones, keeping conditions of other types', () => {
    const other = { type: 'Available', status: 'True' as const };
    const stale = { type: 'Degraded', status: 'True' as const, reason: 'InvalidConfiguration', message: 'x' };
    const c = cr(
      'kubevirt',
      '2026-01-01T00:00:00Z',
      {},
      { conditions: [other, stale], observedGeneration: 1 },
    );
    const condition = degradedCondition(c, c, NOW);
    expect(kubevirtStatusPatch(c, condition)).toEqual([
      { op: 'test', path: '/status/conditions', value: [other, stale] },
      { op: 'replace', path: '/status/conditions', value: [other, condition] },
      { op: 'replace', path: '/status/observedGeneration', value: 2 },
    ]);
  });
});
