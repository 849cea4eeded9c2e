// Run strategies with real guests that end themselves (the test guest's user-data `poweroff_after` and
// `panic_after`): under Always a guest that powers off is started again; under RerunOnFailure a guest that powers
// off stays stopped, and one that panics is started again. The three run at once (three guests, one VM each): each
// mostly waits for its guest to end itself, which overlaps well on two cores.
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  createObject,
  ensureStack,
  testVm,
  waitFailedThenReplaced,
  waitReplacedAndRunning,
  waitRunning,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';

const ns = useTestNamespace('e2e-runstrategy');
let stack: Stack;

beforeAll(async () => {
  stack = await ensureStack();
}, E2E_HOOK_TIMEOUT_MS);

/** The guest ends itself this many seconds after its init reads the user-data (it boots in ~8 s first). */
const END_AFTER_S = 5;
/** How long a stopped VM is watched to show nothing restarts it: several times the controller's first backoff. */
const STAYS_STOPPED_MS = 30_000;

describe('run strategies', { timeout: E2E_TEST_TIMEOUT_MS, concurrent: true }, () => {
  it('Always: a guest that powers itself off is started again in a new VMI', async () => {
    const name = 'always-poweroff';
    await createObject(
      stack,
      ns.name,
      'virtualmachines',
      testVm(name, 'Always', { userData: { poweroff_after: END_AFTER_S } }),
    );
    const first = await waitRunning(stack, ns.name, name);
    const second = await waitReplacedAndRunning(stack, ns.name, name, first.metadata?.uid ?? '');
    expect(second.metadata?.uid).not.toBe(first.metadata?.uid);
    await stack.custom.deleteNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'virtualmachines',
      name,
    });
  });

  it('RerunOnFailure: a guest that powers itself off stays stopped (VMI ended, VM Stopped, nothing restarts it)', async () => {
    const name = 'rerun-poweroff';
    await createObject(
      stack,
      ns.name,
      'virtualmachines',
      testVm(name, 'RerunOnFailure', { userData: { poweroff_after: END_AFTER_S } }),
    );
    const first = await waitRunning(stack, ns.name, name);
    const uid = first.metadata?.uid;
    // The VMI ends Succeeded and the VM controller then deletes it (KubeVirt's RerunOnFailure), which may happen
    // between two looks: either is the end of this VMI. A Failed VMI would be replaced, which the watch below sees.
    const phases = new Set<string>();
    await eventually(
      async () => {
        const vmi = await stack.vms.vmi(ns.name, name);
        if (vmi?.metadata?.uid === uid && vmi?.status?.phase) phases.add(vmi.status.phase);
        return vmi === undefined || (vmi.metadata?.uid === uid && vmi.status?.phase === 'Succeeded');
      },
      { timeoutMs: 120_000, intervalMs: 250, description: 'the VMI to end after the guest powered off' },
    );
    expect(phases.has('Failed')).toBe(false);
    await eventually(async () => (await stack.vms.vm(ns.name, name))?.status?.printableStatus === 'Stopped', {
      timeoutMs: 60_000,
      description: 'the VM to show Stopped',
    });
    // Nothing starts it again: no new VMI for a while.
    const watchUntil = Date.now() + STAYS_STOPPED_MS;
    while (Date.now() < watchUntil) {
      const vmi = await stack.vms.vmi(ns.name, name);
      expect(vmi === undefined || (vmi.metadata?.uid === uid && vmi.status?.phase === 'Succeeded')).toBe(
        true,
      );
      await new Promise((resolve) => setTimeout(resolve, 2_000));
    }
    expect((await stack.vms.vm(ns.name, name))?.status?.printableStatus).toBe('Stopped');
  });

  it('RerunOnFailure: a guest that panics is started again in a new VMI', async () => {
    const name = 'rerun-panic';
    await createObject(
      stack,
      ns.name,
      'virtualmachines',
      testVm(name, 'RerunOnFailure', { userData: { panic_after: END_AFTER_S }, panicDevice: true }),
    );
    const first = await waitRunning(stack, ns.name, name);
    const uid = first.metadata?.uid ?? '';
    // The panicked VMI ends Failed before the VM controller replaces it.
    const second = await waitFailedThenReplaced(stack, ns.name, name, uid, 'after its guest panicked');
    expect(second.metadata?.uid).not.toBe(uid);
  });
});
