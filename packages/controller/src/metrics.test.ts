import { Registry } from '@kubevirt-ts/runtime';
import { describe, expect, it } from 'vitest';
import { ControllerMetrics, InstrumentedQueue } from './metrics.ts';
import type { VMI } from './objects.ts';

const vmi = (phase: string, transitions: [string, string][]): VMI => ({
  metadata: { uid: 'u1', creationTimestamp: '2026-01-01T00:00:00Z' },
  spec: { domain: { devices: {} } },
  status: {
    phase: phase as never,
    phaseTransitionTimestamps: transitions.map(([p, t]) => ({
      phase: p as never,
      phaseTransitionTimestamp: t,
    })),
  },
});

async function histogramCount(registry: Registry, phase: string): Promise<{ count: number; sum: number }> {
  const metric = await registry
    .getSingleMetric('kubevirt_vmi_phase_transition_time_from_creation_seconds')
    ?.get();
  const values = (metric?.values ?? []) as {
    metricName?: string;
    labels: Record<string, unknown>;
    value: number;
  }[];
  const count = values.find((v) => v.metricName?.endsWith('_count') && v.labels.phase === phase)?.value ?? 0;
  const sum = values.find((v) => v.metricName?.endsWith('_sum') && v.labels.phase === phase)?.value ?? 0;
  return { count, sum };
}

describe('ControllerMetrics.vmiObserved', () => {
  it('observes the time from creation to each new phase, once per transition', async () => {
    const registry = new Registry();
    const m = new ControllerMetrics(registry);
    m.vmiObserved(vmi('Pending', [['Pending', '2026-01-01T00:00:00Z']]), 'add');
    m.vmiObserved(
      vmi('Scheduling', [
        ['Pending', '2026-01-01T00:00:00Z'],
        ['Scheduling', '2026-01-01T00:00:02Z'],
      ]),
      'update',
    );
    m.vmiObserved(
      vmi('Scheduling', [
        ['Pending', '2026-01-01T00:00:00Z'],
        ['Scheduling', '2026-01-01T00:00:02Z'],
      ]),
      'update',
    );
    m.vmiObserved(vmi('Scheduled', [['Scheduled', '2026-01-01T00:00:07Z']]), 'update');
    expect(await histogramCount(registry, 'Scheduling')).toEqual({ count: 1, sum: 2 });
    expect(await histogramCount(registry, 'Scheduled')).toEqual({ count: 1, sum: 7 });
    expect((await histogramCount(registry, 'Pending')).count).toBe(0);
  });
});

describe('InstrumentedQueue', () => {
  it('reports how long keys waited', async () => {
    const registry = new Registry();
    const q = new InstrumentedQueue({ name: 'test', registry });
    q.add('a');
    q.add('a');
    expect(await q.get()).toBe('a');
    q.done('a');
    const metric = await registry.getSingleMetric('kubevirt_workqueue_queue_duration_seconds')?.get();
    const values = (metric?.values ?? []) as { metricName?: string; value: number }[];
    expect(values.find((v) => v.metricName?.endsWith('_count'))?.value).toBe(1);
    q.shutDown();
  });
});
