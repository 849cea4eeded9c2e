// The Node heartbeat's patch.
import { silentLogger } from '@kubevirt-ts/runtime';
import { describe, expect, it } from 'vitest';
import { Heartbeat, heartbeatPatch } from './heartbeat.ts';

describe('heartbeatPatch', () => {
  it('sets the schedulable and KVM labels and the heartbeat annotation', () => {
    expect(
      heartbeatPatch({ schedulable: true, kvmUsable: false, now: new Date('2026-03-04T05:06:07.890Z') }),
    ).toEqual({
      metadata: {
        labels: { 'kubevirt.io/schedulable': 'true', 'kubevirt-ts.dev/kvm-usable': 'false' },
        annotations: { 'kubevirt.io/heartbeat': '2026-03-04T05:06:07Z' },
      },
    });
  });
  it('marks the node unschedulable', () => {
    expect(heartbeatPatch({ schedulable: false, kvmUsable: true, now: new Date(0) }).metadata.labels).toEqual(
      {
        'kubevirt.io/schedulable': 'false',
        'kubevirt-ts.dev/kvm-usable': 'true',
      },
    );
  });
});

describe('Heartbeat', () => {
  it('beats at start, again as soon as readiness changes, and marks the node unschedulable on stop', async () => {
    const patches: { name: string; labels: Record<string, string> }[] = [];
    let ready = false;
    const hb = new Heartbeat({
      core: {
        patchNode: (req: { name: string; body: { metadata: { labels: Record<string, string> } } }) => {
          patches.push({ name: req.name, labels: req.body.metadata.labels });
          return Promise.resolve({});
        },
      },
      node: 'node-a',
      log: silentLogger(),
      ready: () => ready,
      devDir: '/nonexistent',
      intervalMs: 3_600_000,
      readinessPollMs: 10,
    });
    hb.start();
    await expect.poll(() => patches.length).toBe(1);
    expect(patches[0]).toEqual({
      name: 'node-a',
      labels: { 'kubevirt.io/schedulable': 'false', 'kubevirt-ts.dev/kvm-usable': 'false' },
    });
    ready = true;
    await expect.poll(() => patches.at(-1)?.labels['kubevirt.io/schedulable']).toBe('true');
    const beats = patches.length;
    await new Promise((r) => setTimeout(r, 50));
    // No change, no extra beats before the interval.
    expect(patches.length).toBe(beats);
    await hb.stop();
    expect(patches.at(-1)?.labels['kubevirt.io/schedulable']).toBe('false');
  });
});
