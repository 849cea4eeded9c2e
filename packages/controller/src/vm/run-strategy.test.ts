// The run-strategy table of reference §1.4, row by row: for each strategy and each situation of the VMI (none,
// live, Succeeded, Failed, deleting; with or without start/stop requests), what the VM controller does.
import type { RunStrategy, VirtualMachine } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import { decideRunStrategy, runStrategyOf, type RunStrategyAction } from './run-strategy.ts';

const NOW = new Date('2026-01-01T00:00:00Z');

type Situation = 'none' | 'running' | 'succeeded' | 'failed' | 'deleting';
type Request = 'none' | 'start' | 'stop-this' | 'stop-other';

function vm(
  strategy: RunStrategy,
  request: Request,
  extra: Partial<VirtualMachine['status']> = {},
): VirtualMachine {
  const requests =
    request === 'start'
      ? [{ action: 'Start' as const }]
      : request === 'stop-this'
        ? [{ action: 'Stop' as const, uid: 'this-vmi' }]
        : request === 'stop-other'
          ? [{ action: 'Stop' as const, uid: 'older-vmi' }]
          : undefined;
  return {
    metadata: { name: 'vm', namespace: 'ns', uid: 'vm-uid' },
    spec: { runStrategy: strategy, template: { spec: { domain: { devices: {} } } } },
    status: { ...(requests ? { stateChangeRequests: requests } : {}), runStrategy: strategy, ...extra },
  };
}

function vmiIn(situation: Situation): VMI | undefined {
  if (situation === 'none') return undefined;
  const phase = situation === 'succeeded' ? 'Succeeded' : situation === 'failed' ? 'Failed' : 'Running';
  return {
    metadata: {
      name: 'vm',
      namespace: 'ns',
      uid: 'this-vmi',
      ...(situation === 'deleting' ? { deletionTimestamp: NOW.toISOString() } : {}),
    },
    spec: { domain: { devices: {} } },
    status: { phase },
  };
}

const START: RunStrategyAction = { kind: 'start' };
const NONE: RunStrategyAction = { kind: 'none' };
const STOP: RunStrategyAction = { kind: 'stop', requestStart: false };
const RESTART: RunStrategyAction = { kind: 'stop', requestStart: true };
const SET_RUNNING: RunStrategyAction = { kind: 'setRunning' };

// [strategy, VMI, request, expected]
const TABLE: [RunStrategy, Situation, Request, RunStrategyAction][] = [
  ['Always', 'none', 'none', START],
  ['Always', 'running', 'none', NONE],
  ['Always', 'running', 'stop-this', STOP],
  ['Always', 'running', 'stop-other', NONE],
  ['Always', 'succeeded', 'none', STOP],
  ['Always', 'failed', 'none', STOP],
  ['Always', 'deleting', 'none', NONE],
  ['RerunOnFailure', 'none', 'none', NONE],
  ['RerunOnFailure', 'none', 'start', START],
  ['RerunOnFailure', 'running', 'none', NONE],
  ['RerunOnFailure', 'running', 'stop-this', STOP],
  ['RerunOnFailure', 'failed', 'none', RESTART],
  ['RerunOnFailure', 'succeeded', 'none', STOP],
  ['RerunOnFailure', 'deleting', 'none', NONE],
  ['Manual', 'none', 'none', NONE],
  ['Manual', 'none', 'start', START],
  ['Manual', 'running', 'none', NONE],
  ['Manual', 'running', 'stop-this', STOP],
  ['Manual', 'running', 'stop-other', NONE],
  ['Manual', 'failed', 'none', NONE],
  ['Manual', 'succeeded', 'none', NONE],
  ['Halted', 'none', 'none', NONE],
  ['Halted', 'none', 'start', SET_RUNNING],
  ['Halted', 'running', 'none', STOP],
  ['Halted', 'failed', 'none', STOP],
  ['Halted', 'deleting', 'none', NONE],
  ['Once', 'none', 'none', START],
  ['Once', 'running', 'none', NONE],
  ['Once', 'succeeded', 'none', NONE],
  ['Once', 'failed', 'none', NONE],
];

describe('decideRunStrategy: the reference table', () => {
  for (const [strategy, situation, request, expected] of TABLE) {
    it(`${strategy}, VMI ${situation}, request ${request} → ${expected.kind}${expected.kind === 'stop' && expected.requestStart ? ' + start request' : ''}`, () => {
      expect(
        decideRunStrategy({ strategy, vm: vm(strategy, request), vmi: vmiIn(situation), now: NOW }),
      ).toEqual(expected);
    });
  }

  it('RerunOnFailure starts once right after the strategy changed to it (status still records the old one)', () => {
    const v = vm('RerunOnFailure', 'none', { runStrategy: 'Halted' });
    expect(decideRunStrategy({ strategy: 'RerunOnFailure', vm: v, vmi: undefined, now: NOW })).toEqual(START);
  });

  it('Always and RerunOnFailure wait out the crash-loop backoff before starting again', () => {
    const retryAfter = new Date(NOW.getTime() + 20_000).toISOString();
    for (const strategy of ['Always', 'RerunOnFailure'] as const) {
      const v = vm(strategy, 'start', {
        startFailure: { consecutiveFailCount: 1, retryAfterTimestamp: retryAfter },
      });
      expect(decideRunStrategy({ strategy, vm: v, vmi: undefined, now: NOW })).toEqual({
        kind: 'backoff',
        afterMs: 20_000,
      });
      expect(
        decideRunStrategy({ strategy, vm: v, vmi: undefined, now: new Date(NOW.getTime() + 21_000) }),
      ).toEqual(START);
    }
  });
});

describe('runStrategyOf', () => {
  it('maps running true/false to Always/Halted and defaults to Halted', () => {
    const base = { metadata: {}, spec: { template: {} } } as VirtualMachine;
    expect(runStrategyOf({ ...base, spec: { ...base.spec, running: true } })).toEqual({ strategy: 'Always' });
    expect(runStrategyOf({ ...base, spec: { ...base.spec, running: false } })).toEqual({
      strategy: 'Halted',
    });
    expect(runStrategyOf(base)).toEqual({ strategy: 'Halted' });
    expect(runStrategyOf({ ...base, spec: { ...base.spec, runStrategy: 'Manual' } })).toEqual({
      strategy: 'Manual',
    });
    expect(
      runStrategyOf({ ...base, spec: { ...base.spec, running: true, runStrategy: 'Always' } }),
    ).toHaveProperty('error');
  });
});
