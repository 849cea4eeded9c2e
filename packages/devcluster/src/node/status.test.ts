import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import type { ContainerRecord, PodRecord } from './records.ts';
import { podPhase, podStatus, statusKey } from './status.ts';

const now = '2026-01-01T00:00:10.000Z';

function pod(
  over: Partial<NonNullable<V1Pod['spec']>> = {},
  conditions: NonNullable<V1Pod['status']>['conditions'] = [],
): V1Pod {
  return {
    metadata: { name: 'p', namespace: 'ns', uid: 'u' },
    spec: { containers: [{ name: 'c', image: 'node:24' }], ...over },
    status: { phase: 'Pending', conditions },
  };
}

function record(
  containers: Record<string, Partial<ContainerRecord>>,
  over: Partial<PodRecord> = {},
): PodRecord {
  const full: Record<string, ContainerRecord> = {};
  for (const [name, c] of Object.entries(containers)) full[name] = { name, restartCount: 0, runs: 1, ...c };
  return {
    uid: 'u',
    namespace: 'ns',
    name: 'p',
    firstSeen: '2026-01-01T00:00:00.000Z',
    hostNetwork: false,
    ip: '10.244.1.2',
    sandboxReady: true,
    terminationGracePeriodSeconds: 30,
    initContainers: {},
    containers: full,
    allocations: {},
    ...over,
  };
}

const handle = {
  id: 'abc',
  dir: '/d',
  shimPid: 1,
  initPid: 2,
  startedAt: '2026-01-01T00:00:01.000Z',
  logFile: '/l',
  imageRef: 'node:24',
  init: false,
};
const ran = (exitCode: number) => ({
  exitCode,
  reason: exitCode === 0 ? 'Completed' : 'Error',
  finishedAt: '2026-01-01T00:00:05.000Z',
});
const probes = (ready: boolean) => () => ({ ready, started: true });

describe('podStatus', () => {
  it('reports a running, ready container with the pod and host addresses', () => {
    const status = podStatus({
      pod: pod(),
      record: record({ c: { current: handle } }),
      hostIP: '172.30.1.1',
      probes: probes(true),
      now,
    });
    expect(status.phase).toBe('Running');
    expect(status.podIP).toBe('10.244.1.2');
    expect(status.hostIP).toBe('172.30.1.1');
    expect(status.containerStatuses?.[0]).toMatchObject({
      ready: true,
      started: true,
      containerID: 'devcluster://abc',
      restartCount: 0,
    });
    expect(Object.fromEntries(status.conditions?.map((c) => [c.type, c.status]) ?? [])).toEqual({
      PodReadyToStartContainers: 'True',
      Initialized: 'True',
      ContainersReady: 'True',
      Ready: 'True',
    });
  });

  it('keeps Ready false while a readiness gate is missing, and keeps transition times of unchanged conditions', () => {
    const earlier = new Date('2026-01-01T00:00:02.000Z');
    const p = pod({ readinessGates: [{ conditionType: 'x/gate' }] }, [
      { type: 'ContainersReady', status: 'True', lastTransitionTime: earlier },
    ]);
    const status = podStatus({
      pod: p,
      record: record({ c: { current: handle } }),
      hostIP: 'h',
      probes: probes(true),
      now,
    });
    expect(status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ReadinessGatesNotReady',
    });
    expect(status.conditions?.find((c) => c.type === 'ContainersReady')?.lastTransitionTime).toEqual(earlier);
  });

  it('shows a crash-looping container as waiting with its last termination', () => {
    const status = podStatus({
      pod: pod(),
      record: record({
        c: {
          restartCount: 2,
          lastTermination: ran(1),
          waiting: { reason: 'CrashLoopBackOff', message: 'back-off' },
        },
      }),
      hostIP: 'h',
      probes: probes(true),
      now,
    });
    expect(status.phase).toBe('Running');
    expect(status.containerStatuses?.[0]?.state?.waiting?.reason).toBe('CrashLoopBackOff');
    expect(status.containerStatuses?.[0]?.lastState?.terminated?.exitCode).toBe(1);
  });
});

describe('statusKey', () => {
  const input = { record: record({ c: { current: handle } }), hostIP: 'h', probes: probes(true) };

  it('is the same for a status computed from a cached pod that has not seen the last write', () => {
    const written = podStatus({ ...input, pod: pod(), now });
    // The cache still has the pod without that status: every condition gets a new "now".
    const again = podStatus({ ...input, pod: pod(), now: '2026-01-01T00:00:11.000Z' });
    expect(JSON.stringify(again)).not.toBe(JSON.stringify(written));
    expect(statusKey(again)).toBe(statusKey(written));
  });

  it('changes when a condition or a container changes', () => {
    const ready = podStatus({ ...input, pod: pod(), now });
    const unready = podStatus({ ...input, probes: probes(false), pod: pod(), now });
    expect(statusKey(unready)).not.toBe(statusKey(ready));
    const restarted = podStatus({
      ...input,
      record: record({ c: { current: handle, restartCount: 1 } }),
      pod: pod(),
      now,
    });
    expect(statusKey(restarted)).not.toBe(statusKey(ready));
  });
});

describe('podPhase', () => {
  const statusOf = (p: V1Pod, r: PodRecord) =>
    podStatus({ pod: p, record: r, hostIP: 'h', probes: probes(false), now }).containerStatuses ?? [];
  it('follows restartPolicy for containers that have stopped', () => {
    const done = record({ c: { lastTermination: ran(0) } });
    const failed = record({ c: { lastTermination: ran(1) } });
    for (const [policy, r, phase] of [
      ['Never', done, 'Succeeded'],
      ['Never', failed, 'Failed'],
      ['OnFailure', done, 'Succeeded'],
      ['Always', done, 'Running'],
    ] as const) {
      const p = pod({ restartPolicy: policy });
      expect(podPhase(p, r, statusOf(p, r)), policy).toBe(phase);
    }
  });

  it('stays Pending while init containers run or a container has not started, and Failed when an init fails for good', () => {
    const p = pod({ restartPolicy: 'Never', initContainers: [{ name: 'i' }] });
    const running = record(
      {},
      { initContainers: { i: { name: 'i', restartCount: 0, runs: 1, current: handle } } },
    );
    expect(podPhase(p, running, statusOf(p, running))).toBe('Pending');
    const failedInit = record(
      {},
      { initContainers: { i: { name: 'i', restartCount: 0, runs: 1, lastTermination: ran(1) } } },
    );
    expect(podPhase(p, failedInit, statusOf(p, failedInit))).toBe('Failed');
    expect(podPhase(pod(), record({}), statusOf(pod(), record({})))).toBe('Pending');
  });

  it('never leaves a terminal phase, and ends a deleted pod Succeeded or Failed', () => {
    const p = pod();
    p.status = { phase: 'Succeeded' };
    expect(podPhase(p, record({ c: { current: handle } }), [])).toBe('Succeeded');
    const stopping = record(
      { c: { lastTermination: ran(143) } },
      { terminating: { since: now, killAt: now, reason: 'deleted' } },
    );
    expect(podPhase(pod(), stopping, statusOf(pod(), stopping))).toBe('Failed');
  });
});
