// The start/stop/restart decisions, table by table (KubeVirt's rest/lifecycle.go), applied to a VM the way the API
// server applies JSON patches, so each case shows the resulting object, and the `test` ops that guard it.
import type { RunStrategy, VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import {
  changeRequestPatch,
  planRestart,
  planStart,
  planStop,
  runStrategyOf,
  type StateChangePlan,
} from './state-change.ts';
import { applyLikeApiServer, errorOf } from './test-support.ts';

function vm(spec: Partial<VirtualMachine['spec']> = {}, status?: VirtualMachine['status']): VirtualMachine {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name: 'vm1', namespace: 'ns' },
    spec: { template: { spec: { domain: { devices: {} } } }, ...spec },
    ...(status === undefined ? {} : { status }),
  };
}

function vmi(phase: string, extra: Partial<VirtualMachineInstance['spec']> = {}): VirtualMachineInstance {
  return {
    metadata: { name: 'vm1', namespace: 'ns', uid: 'vmi-uid-1' },
    spec: { domain: { devices: {} }, ...extra },
    status: { phase: phase as NonNullable<VirtualMachineInstance['status']>['phase'] },
  };
}

const strategy = (s: RunStrategy) => vm({ runStrategy: s });
const dry = { dryRun: false };

/** The VM after the plan's VM patch. */
const after = (v: VirtualMachine, plan: StateChangePlan): VirtualMachine =>
  applyLikeApiServer(v, plan.vm.ops);

describe('runStrategyOf', () => {
  it('reads running as Always/Halted and defaults to Halted', () => {
    expect(runStrategyOf(vm({ running: true }))).toBe('Always');
    expect(runStrategyOf(vm({ running: false }))).toBe('Halted');
    expect(runStrategyOf(vm())).toBe('Halted');
    expect(runStrategyOf(strategy('Manual'))).toBe('Manual');
    expect(errorOf(() => runStrategyOf(vm({ running: true, runStrategy: 'Always' }))).code).toBe(500);
  });
});

describe('start', () => {
  it('Halted: switches the run strategy to Always, tested against Halted', () => {
    const plan = planStart(strategy('Halted'), undefined, { paused: false, ...dry });
    expect(plan.vm.target).toBe('spec');
    expect(plan.vm.ops[0]).toEqual({ op: 'test', path: '/spec/runStrategy', value: 'Halted' });
    expect(after(strategy('Halted'), plan).spec.runStrategy).toBe('Always');
    // Someone switched it meanwhile: the test fails, the API answers 409.
    expect(() => applyLikeApiServer(strategy('Manual'), plan.vm.ops)).toThrow();
  });

  it('Halted with running: false flips running; a VM with neither field gets running: true', () => {
    const plan = planStart(vm({ running: false }), undefined, { paused: false, ...dry });
    expect(after(vm({ running: false }), plan).spec).toMatchObject({ running: true });
    const bare = vm();
    expect(after(bare, planStart(bare, undefined, { paused: false, ...dry })).spec.running).toBe(true);
  });

  it('Halted and paused: a Start request with paused=true for the controller, on a VM without status', () => {
    const plan = planStart(strategy('Halted'), undefined, { paused: true, ...dry });
    expect(plan.vm.target).toBe('status');
    expect(after(strategy('Halted'), plan).status).toEqual({
      stateChangeRequests: [{ action: 'Start', data: { paused: 'true' } }],
    });
    // The template already starts paused: the plain run-strategy switch is enough.
    const pausedTemplate = vm({
      runStrategy: 'Halted',
      template: {
        spec: { domain: { devices: {} }, startStrategy: 'Paused' },
      },
    });
    expect(planStart(pausedTemplate, undefined, { paused: true, ...dry }).vm.target).toBe('spec');
  });

  it('Manual: adds a Start request to an existing status and clears a start failure', () => {
    const v = vm(
      { runStrategy: 'Manual' },
      { printableStatus: 'Stopped', startFailure: { consecutiveFailCount: 2 } },
    );
    const plan = planStart(v, undefined, { paused: false, ...dry });
    const next = after(v, plan);
    expect(next.status?.stateChangeRequests).toEqual([{ action: 'Start' }]);
    expect(next.status?.startFailure).toBeUndefined();
    expect(next.status?.printableStatus).toBe('Stopped');
  });

  it('Manual with a finished VMI, RerunOnFailure with a Succeeded one: Stop(old uid) then Start', () => {
    for (const [s, phase] of [
      ['Manual', 'Failed'],
      ['Manual', 'Succeeded'],
      ['RerunOnFailure', 'Succeeded'],
    ] as const) {
      const v = vm({ runStrategy: s }, { printableStatus: 'Stopped' });
      const next = after(v, planStart(v, vmi(phase), { paused: false, ...dry }));
      expect(next.status?.stateChangeRequests, `${s}/${phase}`).toEqual([
        { action: 'Stop', uid: 'vmi-uid-1' },
        { action: 'Start' },
      ]);
    }
  });

  it('refuses with 409 what makes no sense, saying why', () => {
    const cases: [VirtualMachine, VirtualMachineInstance | undefined, string][] = [
      [strategy('Manual'), vmi('Running'), 'VM is already running'],
      [strategy('Halted'), vmi('Scheduling'), 'VM is already running'],
      [strategy('Always'), undefined, 'Always does not support manual start requests'],
      [strategy('Once'), vmi('Succeeded'), 'Once does not support manual start requests'],
      [
        strategy('RerunOnFailure'),
        vmi('Failed'),
        'RerunOnFailure does not support starting VM from failed state',
      ],
      [strategy('WaitAsReceiver'), undefined, 'WaitAsReceiver does not support manual start requests'],
      [
        vm({ runStrategy: 'Manual' }, { stateChangeRequests: [{ action: 'Stop', uid: 'x' }] }),
        undefined,
        'stop/start already underway',
      ],
      [
        vm({ runStrategy: 'Halted' }, { conditions: [{ type: 'ManualRecoveryRequired', status: 'True' }] }),
        undefined,
        'VM recovery required',
      ],
    ];
    for (const [v, i, message] of cases) {
      const err = errorOf(() => planStart(v, i, { paused: false, ...dry }));
      expect(err.code, message).toBe(409);
      expect(err.reason).toBe('Conflict');
      expect(err.message).toContain('Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": ');
      expect(err.message).toContain(message);
    }
  });

  it('starts a VM whose VMI phase is Unknown or unset, as KubeVirt does', () => {
    expect(planStart(strategy('Halted'), vmi('Unknown'), { paused: false, ...dry }).vm.target).toBe('spec');
    expect(planStart(strategy('Halted'), vmi(''), { paused: false, ...dry }).vm.target).toBe('spec');
  });
});

describe('stop', () => {
  it('Always and Once: switches the run strategy to Halted', () => {
    for (const s of ['Always', 'Once'] as const) {
      const plan = planStop(strategy(s), vmi('Running'), { gracePeriod: undefined, ...dry });
      expect(plan.vmiGrace).toBeUndefined();
      expect(after(strategy(s), plan).spec.runStrategy).toBe('Halted');
    }
    expect(
      after(
        vm({ running: true }),
        planStop(vm({ running: true }), undefined, { gracePeriod: undefined, ...dry }),
      ).spec.running,
    ).toBe(false);
  });

  it('Manual and RerunOnFailure: a Stop request naming the VMI, the run strategy stays', () => {
    for (const s of ['Manual', 'RerunOnFailure'] as const) {
      const v = vm({ runStrategy: s }, { printableStatus: 'Running' });
      const plan = planStop(v, vmi('Running'), { gracePeriod: undefined, ...dry });
      const next = after(v, plan);
      expect(next.spec.runStrategy).toBe(s);
      expect(next.status?.stateChangeRequests).toEqual([{ action: 'Stop', uid: 'vmi-uid-1' }]);
    }
  });

  it('a Stop replaces a pending Start', () => {
    const v = vm({ runStrategy: 'Manual' }, { stateChangeRequests: [{ action: 'Start' }] });
    const plan = changeRequestPatch(v, [{ action: 'Stop', uid: 'u' }]);
    expect(applyLikeApiServer(v, plan.ops).status?.stateChangeRequests).toEqual([
      { action: 'Stop', uid: 'u' },
    ]);
    // The list changed since it was read: the test op refuses the patch.
    const moved = vm(
      { runStrategy: 'Manual' },
      { stateChangeRequests: [{ action: 'Start', data: { paused: 'true' } }] },
    );
    expect(() => applyLikeApiServer(moved, plan.ops)).toThrow();
  });

  it('with a grace period: patches the running VMI first, with a rollback', () => {
    const running = vmi('Running', { terminationGracePeriodSeconds: 180 });
    const plan = planStop(strategy('Always'), running, { gracePeriod: 0, ...dry });
    expect(plan.vmiGrace).toBeDefined();
    const patched = applyLikeApiServer(running, plan.vmiGrace?.ops ?? []);
    expect(patched.spec.terminationGracePeriodSeconds).toBe(0);
    expect(
      applyLikeApiServer(patched, plan.vmiGrace?.rollback ?? []).spec.terminationGracePeriodSeconds,
    ).toBe(180);
    // No grace period on the VMI yet: it is added, and the rollback removes it again.
    const bare = vmi('Running');
    const plan2 = planStop(strategy('Manual'), bare, { gracePeriod: 5, ...dry });
    const withGrace = applyLikeApiServer(bare, plan2.vmiGrace?.ops ?? []);
    expect(withGrace.spec.terminationGracePeriodSeconds).toBe(5);
    expect(
      applyLikeApiServer(withGrace, plan2.vmiGrace?.rollback ?? []).spec.terminationGracePeriodSeconds,
    ).toBeUndefined();
  });

  it('Halted with a live VMI (already stopping): only a shorter grace period forces it', () => {
    const stopping = vmi('Running', { terminationGracePeriodSeconds: 180 });
    const plan = planStop(strategy('Halted'), stopping, { gracePeriod: 0, ...dry });
    expect(plan.vmiGrace).toBeDefined();
    expect(after(strategy('Halted'), plan).status?.stateChangeRequests).toEqual([
      { action: 'Stop', uid: 'vmi-uid-1' },
    ]);
    for (const gracePeriod of [undefined, 180, 300]) {
      const err = errorOf(() => planStop(strategy('Halted'), stopping, { gracePeriod, ...dry }));
      expect(err.code).toBe(409);
      expect(err.message).toContain('Halted only supports manual stop requests with a shorter graceperiod');
    }
  });

  it('refuses to stop a VM that is not running, with 409', () => {
    const cases: [VirtualMachine, VirtualMachineInstance | undefined][] = [
      [strategy('Halted'), undefined],
      [strategy('Halted'), vmi('Succeeded')],
      [strategy('Manual'), undefined],
      [strategy('RerunOnFailure'), vmi('Failed')],
    ];
    for (const [v, i] of cases) {
      const err = errorOf(() => planStop(v, i, { gracePeriod: undefined, ...dry }));
      expect(err.code).toBe(409);
      expect(err.message).toBe(
        'Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm1": VM is not running',
      );
    }
  });
});

describe('restart', () => {
  it('writes Stop(current VMI) and Start for Always, Manual and RerunOnFailure', () => {
    for (const s of ['Always', 'Manual', 'RerunOnFailure'] as const) {
      const v = vm({ runStrategy: s }, { printableStatus: 'Running' });
      const plan = planRestart(v, vmi('Running'), { gracePeriodSeconds: undefined, ...dry });
      expect(plan.vmiGrace).toBeUndefined();
      expect(after(v, plan).status?.stateChangeRequests).toEqual([
        { action: 'Stop', uid: 'vmi-uid-1' },
        { action: 'Start' },
      ]);
    }
  });

  it('forced (grace 0): sets the VMI grace period to 1 s first', () => {
    const running = vmi('Running', { terminationGracePeriodSeconds: 30 });
    const plan = planRestart(strategy('Always'), running, { gracePeriodSeconds: 0, ...dry });
    expect(applyLikeApiServer(running, plan.vmiGrace?.ops ?? []).spec.terminationGracePeriodSeconds).toBe(1);
  });

  it('refuses Halted, Once, a missing VMI and a pending request with 409', () => {
    const cases: [VirtualMachine, VirtualMachineInstance | undefined, string][] = [
      [strategy('Halted'), vmi('Running'), 'RunStrategy Halted does not support manual restart requests'],
      [strategy('Once'), vmi('Running'), 'RunStrategy Once does not support manual restart requests'],
      [strategy('Always'), undefined, 'VM is not running'],
      [
        vm({ runStrategy: 'Always' }, { stateChangeRequests: [{ action: 'Start' }] }),
        vmi('Running'),
        'already underway',
      ],
    ];
    for (const [v, i, message] of cases) {
      const err = errorOf(() => planRestart(v, i, { gracePeriodSeconds: undefined, ...dry }));
      expect(err.code).toBe(409);
      expect(err.message).toContain(message);
    }
  });
});
