// printableStatus: KubeVirt's order of evaluation (first match wins), checked as the list itself and by pairs of
// situations where two statuses hold at once and the earlier one must win.
import type { VirtualMachine } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import { printableStatus, PRINTABLE_STATUS_ORDER, type PrintableStatusInput } from './printable-status.ts';

const vm = (extra: Partial<VirtualMachine> = {}): VirtualMachine => ({
  metadata: { name: 'vm', namespace: 'ns', uid: 'u' },
  spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {} } } } },
  ...extra,
});

const vmi = (
  phase: string,
  conditions: { type: string; status: 'True' | 'False'; reason?: string }[] = [],
  extra: Partial<VMI> = {},
): VMI => ({
  metadata: { name: 'vm', namespace: 'ns', uid: 'i', ...extra.metadata },
  spec: { domain: { devices: {} } },
  status: { phase: phase as never, conditions, ...extra.status },
});

const input = (i: Partial<PrintableStatusInput>): PrintableStatusInput => ({
  vm: vm(),
  vmi: undefined,
  strategy: 'Always',
  startExpected: false,
  stopExpected: false,
  ...i,
});

describe('printableStatus', () => {
  it('evaluates in KubeVirt’s order', () => {
    expect(PRINTABLE_STATUS_ORDER.map(([s]) => s)).toEqual([
      'Terminating',
      'Stopping',
      'Migrating',
      'Paused',
      'Running',
      'ErrorPvcNotFound',
      'DataVolumeError',
      'ErrorUnschedulable',
      'Provisioning',
      'WaitingForVolumeBinding',
      'ErrImagePull',
      'ImagePullBackOff',
      'Starting',
      'CrashLoopBackOff',
      'Stopped',
      'WaitingForReceiver',
    ]);
  });

  const deleting = {
    metadata: { name: 'vm', namespace: 'ns', uid: 'i', deletionTimestamp: '2026-01-01T00:00:00Z' },
  };
  const cases: [string, PrintableStatusInput, string][] = [
    ['no VMI, nothing expected', input({}), 'Stopped'],
    ['no VMI, a create expected', input({ startExpected: true }), 'Starting'],
    ['VMI Pending', input({ vmi: vmi('Pending') }), 'Starting'],
    ['VMI Scheduling', input({ vmi: vmi('Scheduling') }), 'Starting'],
    ['VMI Scheduled', input({ vmi: vmi('Scheduled') }), 'Starting'],
    ['VMI Running', input({ vmi: vmi('Running') }), 'Running'],
    ['VMI Succeeded', input({ vmi: vmi('Succeeded') }), 'Stopped'],
    [
      'VM deleting with a paused VMI: Terminating wins over Paused',
      input({
        vm: vm({ metadata: { name: 'vm', deletionTimestamp: '2026-01-01T00:00:00Z' } }),
        vmi: vmi('Running', [{ type: 'Paused', status: 'True' }]),
      }),
      'Terminating',
    ],
    [
      'running VMI being deleted: Stopping wins over Running',
      input({ vmi: vmi('Running', [], deleting) }),
      'Stopping',
    ],
    ['running VMI with a delete expected', input({ vmi: vmi('Running'), stopExpected: true }), 'Stopping'],
    ['final VMI being deleted is not Stopping', input({ vmi: vmi('Failed', [], deleting) }), 'Stopped'],
    [
      'migrating and running: Migrating wins',
      input({
        vmi: vmi('Running', [], {
          status: { phase: 'Running', migrationState: { startTimestamp: '2026-01-01T00:00:00Z' } },
        }),
      }),
      'Migrating',
    ],
    ['paused guest', input({ vmi: vmi('Running', [{ type: 'Paused', status: 'True' }]) }), 'Paused'],
    [
      'PVC missing and unschedulable: ErrorPvcNotFound wins',
      input({
        vmi: vmi('Pending', [
          { type: 'Synchronized', status: 'False', reason: 'FailedPvcNotFound' },
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable' },
        ]),
      }),
      'ErrorPvcNotFound',
    ],
    [
      'unschedulable pod: ErrorUnschedulable wins over Starting',
      input({ vmi: vmi('Scheduling', [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable' }]) }),
      'ErrorUnschedulable',
    ],
    [
      'unbound PVC while starting',
      input({ vmi: vmi('Pending'), waitingForVolumeBinding: true }),
      'WaitingForVolumeBinding',
    ],
    [
      'image pull error wins over Starting',
      input({ vmi: vmi('Scheduling', [{ type: 'Synchronized', status: 'False', reason: 'ErrImagePull' }]) }),
      'ErrImagePull',
    ],
    [
      'image pull backoff',
      input({
        vmi: vmi('Scheduling', [{ type: 'Synchronized', status: 'False', reason: 'ImagePullBackOff' }]),
      }),
      'ImagePullBackOff',
    ],
    [
      'crash loop: final VMI with start failures',
      input({ vm: vm({ status: { startFailure: { consecutiveFailCount: 2 } } }), vmi: vmi('Failed') }),
      'CrashLoopBackOff',
    ],
    [
      'crash loop waiting, no VMI',
      input({ vm: vm({ status: { startFailure: { consecutiveFailCount: 1 } } }) }),
      'CrashLoopBackOff',
    ],
    [
      'start failures but a start is expected: Starting wins',
      input({ vm: vm({ status: { startFailure: { consecutiveFailCount: 1 } } }), startExpected: true }),
      'Starting',
    ],
    [
      'start failures under Manual are not a crash loop',
      input({ vm: vm({ status: { startFailure: { consecutiveFailCount: 1 } } }), strategy: 'Manual' }),
      'Stopped',
    ],
    [
      'WaitAsReceiver without a VMI, with a start expected',
      input({ strategy: 'WaitAsReceiver', startExpected: true }),
      'Starting',
    ],
    ['Unknown phase with nothing else', input({ vmi: vmi('Unknown') }), 'Unknown'],
  ];
  for (const [name, i, want] of cases) {
    it(`${name} → ${want}`, () => expect(printableStatus(i)).toBe(want));
  }
});
