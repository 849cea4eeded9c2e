// Crash-loop backoff: 10 s × n², plus up to half again at random, capped at 5 minutes; counted only for VMIs that
// never ran, once per VMI, and reset by a VMI that ran.
import type { VirtualMachineStatus } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import type { VMI } from '../objects.ts';
import { startBackoffSeconds, syncStartFailure } from './backoff.ts';

const NOW = new Date('2026-01-01T00:00:00Z');

describe('startBackoffSeconds', () => {
  it('is 10 s × n² without jitter, capped at 300 s', () => {
    const noJitter = () => 0;
    expect([1, 2, 3, 4, 5, 6, 10].map((n) => startBackoffSeconds(n, 300, noJitter))).toEqual([
      10, 40, 90, 160, 250, 300, 300,
    ]);
    expect(startBackoffSeconds(0, 300, noJitter)).toBe(10);
  });

  it('adds up to half of the delay as jitter, never beyond the cap', () => {
    const almostOne = () => 0.999999;
    expect(startBackoffSeconds(1, 300, almostOne)).toBe(15);
    expect(startBackoffSeconds(2, 300, almostOne)).toBe(60);
    expect(startBackoffSeconds(5, 300, almostOne)).toBe(300);
    for (let i = 0; i < 200; i++) {
      const d = startBackoffSeconds(3);
      expect(d).toBeGreaterThanOrEqual(90);
      expect(d).toBeLessThanOrEqual(135);
    }
  });

  it('scales the minimum interval with a larger maximum (maxDelay/30)', () => {
    expect(startBackoffSeconds(1, 600, () => 0)).toBe(20);
  });
});

function vmi(uid: string, phases: string[]): VMI {
  return {
    metadata: { uid },
    spec: { domain: { devices: {} } },
    status: {
      phase: phases.at(-1) as never,
      phaseTransitionTimestamps: phases.map((phase) => ({
        phase: phase as never,
        phaseTransitionTimestamp: NOW.toISOString(),
      })),
    },
  };
}

describe('syncStartFailure', () => {
  it('counts a VMI that failed before running, once per UID, with a retry time', () => {
    const status: VirtualMachineStatus = {};
    syncStartFailure(status, vmi('a', ['Pending', 'Scheduling', 'Failed']), 'Always', NOW, () => 0);
    expect(status.startFailure).toEqual({
      consecutiveFailCount: 1,
      lastFailedVMIUID: 'a',
      retryAfterTimestamp: '2026-01-01T00:00:10Z',
    });
    syncStartFailure(status, vmi('a', ['Pending', 'Failed']), 'Always', NOW, () => 0);
    expect(status.startFailure?.consecutiveFailCount).toBe(1);
    syncStartFailure(status, vmi('b', ['Pending', 'Failed']), 'Always', NOW, () => 0);
    expect(status.startFailure).toMatchObject({
      consecutiveFailCount: 2,
      lastFailedVMIUID: 'b',
      retryAfterTimestamp: '2026-01-01T00:00:40Z',
    });
  });

  it('does not count a VMI that ran, and clears the record', () => {
    const status: VirtualMachineStatus = { startFailure: { consecutiveFailCount: 3, lastFailedVMIUID: 'x' } };
    syncStartFailure(status, vmi('c', ['Pending', 'Scheduled', 'Running', 'Failed']), 'Always', NOW);
    expect(status.startFailure).toBeUndefined();
  });

  it('clears the record under a strategy that does not restart by itself', () => {
    const status: VirtualMachineStatus = { startFailure: { consecutiveFailCount: 3 } };
    syncStartFailure(status, vmi('d', ['Failed']), 'Manual', NOW);
    expect(status.startFailure).toBeUndefined();
  });

  it('leaves the record alone while the VMI is still live', () => {
    const status: VirtualMachineStatus = { startFailure: { consecutiveFailCount: 1, lastFailedVMIUID: 'a' } };
    syncStartFailure(status, vmi('e', ['Pending', 'Scheduling']), 'Always', NOW);
    expect(status.startFailure?.consecutiveFailCount).toBe(1);
  });
});
