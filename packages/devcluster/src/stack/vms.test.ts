import type { V1Pod } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { podTrouble, TEST_GUEST_IMAGE } from './chart.ts';
import { consoleLines } from './console.ts';
import { benchVmi, describeProgress, phaseSeconds, type VmSnapshot } from './vms.ts';

const vm = { status: { printableStatus: 'Starting' } };
const vmi = (phase: string, extra: Record<string, unknown> = {}) => ({ status: { phase, ...extra } });
const pod = (spec: V1Pod['spec'], status: V1Pod['status']): V1Pod => ({
  metadata: { name: 'virt-launcher-x-abcde' },
  spec: { containers: [], ...spec },
  status,
});

describe('describeProgress', () => {
  const cases: [string, VmSnapshot, RegExp][] = [
    ['no VMI yet', { vm, vmi: undefined, pod: undefined }, /waiting for virt-controller to create the VMI/],
    ['VMI without pod', { vm, vmi: vmi('Pending'), pod: undefined }, /create the launcher pod/],
    [
      'unscheduled pod, with the scheduler’s reason',
      {
        vm,
        vmi: vmi('Scheduling'),
        pod: pod(
          { containers: [] },
          {
            phase: 'Pending',
            conditions: [{ type: 'PodScheduled', status: 'False', message: '0/2 nodes are available' }],
          },
        ),
      },
      /waiting for the scheduler to place virt-launcher-x-abcde \(0\/2 nodes are available\)/,
    ],
    [
      'pod on a node, not running',
      {
        vm,
        vmi: vmi('Scheduling'),
        pod: pod(
          { containers: [], nodeName: 'dc-node-2' },
          {
            phase: 'Pending',
            containerStatuses: [
              {
                name: 'compute',
                image: 'i',
                imageID: '',
                ready: false,
                restartCount: 0,
                state: { waiting: { reason: 'ErrImagePull', message: 'no such image' } },
              },
            ],
          },
        ),
      },
      /waiting for node dc-node-2 to start virt-launcher-x-abcde \(compute: ErrImagePull \(no such image\)\)/,
    ],
    [
      'pod running, domain not yet',
      {
        vm,
        vmi: vmi('Scheduled'),
        pod: pod(
          { containers: [], nodeName: 'dc-node-1' },
          { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] },
        ),
      },
      /waiting for virt-handler on dc-node-1 to start the domain/,
    ],
    [
      'running',
      { vm, vmi: vmi('Running', { nodeName: 'dc-node-1' }), pod: undefined },
      /VMI Running on dc-node-1/,
    ],
  ];
  for (const [what, snapshot, expected] of cases) {
    it(what, () => expect(describeProgress(snapshot, 'x')).toMatch(expected));
  }
});

describe('podTrouble', () => {
  it('is quiet while a container is being created', () => {
    const p = pod(
      { containers: [] },
      {
        phase: 'Pending',
        containerStatuses: [
          {
            name: 'c',
            image: 'i',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'ContainerCreating' } },
          },
        ],
      },
    );
    expect(podTrouble(p)).toBeUndefined();
  });

  it('names a container that restarted and how it last ended', () => {
    const p = pod(
      { containers: [] },
      {
        phase: 'Running',
        containerStatuses: [
          {
            name: 'c',
            image: 'i',
            imageID: '',
            ready: true,
            restartCount: 2,
            state: { running: {} },
            lastState: { terminated: { exitCode: 1, reason: 'Error' } },
          },
        ],
      },
    );
    expect(podTrouble(p)).toBe('c: restarted 2x, last exit 1 Error');
  });
});

describe('phaseSeconds', () => {
  it('measures each phase from the VMI’s creation', () => {
    expect(
      phaseSeconds({
        metadata: { creationTimestamp: '2026-01-01T00:00:00Z' },
        status: {
          phaseTransitionTimestamps: [
            { phase: 'Pending', phaseTransitionTimestamp: '2026-01-01T00:00:00Z' },
            { phase: 'Running', phaseTransitionTimestamp: '2026-01-01T00:00:03.500Z' },
          ],
        },
      }),
    ).toEqual({ Pending: 0, Running: 3.5 });
  });
});

describe('consoleLines', () => {
  it('drops carriage returns, escape sequences and control characters, keeping the lines', () => {
    expect(consoleLines('one\r\n\x1b[1;32mtwo\x1b[0m\r\n/ # \x07')).toEqual(['one', 'two', '/ #']);
  });
});

describe('benchVmi', () => {
  it('names the benchmark in a label, asks for the memory given and boots the test guest unless told otherwise', () => {
    const body = benchVmi('vmi-0001', { bench: 'density', memory: '96Mi' }) as {
      metadata: { name: string; labels: Record<string, string> };
      spec: { domain: { resources: unknown }; volumes: { containerDisk: { image: string } }[] };
    };
    expect(body.metadata).toEqual({ name: 'vmi-0001', labels: { 'kubevirt-ts.dev/bench': 'density' } });
    expect(body.spec.domain.resources).toEqual({ requests: { memory: '96Mi' } });
    expect(body.spec.volumes[0]?.containerDisk.image).toBe(TEST_GUEST_IMAGE);
    const other = benchVmi('x', { bench: 'b', memory: '1Gi', image: 'example.org/disk:1' }) as typeof body;
    expect(other.spec.volumes[0]?.containerDisk.image).toBe('example.org/disk:1');
  });
});
