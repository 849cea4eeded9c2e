// A VM's life through the whole stack, as a user drives it: kubectl apply → Running (kubectl shows it, the VMI
// has a phase and a node) → the console shows the guest's cloud-init marker → virtctl stop → Stopped, launcher pod
// gone → virtctl start → Running → virtctl restart → a new VMI → delete → VMI and pod gone.
import { useTestNamespace, eventually } from '@kubevirt-ts/devcluster/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  consoleShowsMarker,
  ensureStack,
  kubectlOk,
  launcherPods,
  testVm,
  virtctlOk,
  waitReplacedAndRunning,
  waitRunning,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';
import { stringify } from 'yaml';

const ns = useTestNamespace('e2e-lifecycle');
const NAME = 'lifecycle-vm';
const MARKER = 'e2e lifecycle marker 7f3a';
let stack: Stack;
let firstUid = '';

beforeAll(async () => {
  stack = await ensureStack();
}, E2E_HOOK_TIMEOUT_MS);

describe('VM lifecycle', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('kubectl apply starts the VM: Running, with a phase and a node', async () => {
    const vm = testVm(NAME, 'Always', { userData: { marker: MARKER, hostname: NAME } });
    await kubectlOk(stack, ['apply', '-n', ns.name, '-f', '-'], stringify(vm));
    const vmi = await waitRunning(stack, ns.name, NAME);
    firstUid = vmi.metadata?.uid ?? '';
    expect(stack.nodes).toContain(vmi.status?.nodeName);

    const vmRow = await eventually(
      async () => {
        const out = await kubectlOk(stack, ['get', 'vm', NAME, '-n', ns.name]);
        return /\bRunning\b/.test(out) && /\bTrue\b/.test(out) ? out : undefined;
      },
      { timeoutMs: 60_000, description: 'kubectl get vm to show Running and Ready' },
    );
    expect(vmRow).toMatch(new RegExp(`^${NAME}\\s+\\S+\\s+Running\\s+True`, 'm'));
    const vmiRow = await kubectlOk(stack, ['get', 'vmi', NAME, '-n', ns.name, '-o', 'wide']);
    expect(vmiRow).toMatch(/\bRunning\b/);
    expect(vmiRow).toContain(vmi.status?.nodeName ?? '(no node)');
    const pods = await launcherPods(stack, ns.name, firstUid);
    expect(pods).toHaveLength(1);
    expect(pods[0]?.spec?.nodeName).toBe(vmi.status?.nodeName);
  });

  it('the console shows the marker from the cloud-init user-data', async () => {
    const text = await consoleShowsMarker(stack, ns.name, NAME, MARKER);
    expect(text).toContain(MARKER);
  });

  it('virtctl stop: the VM is Stopped, its VMI and launcher pod are gone', async () => {
    await virtctlOk(stack, ['stop', NAME, '-n', ns.name]);
    await eventually(
      async () => {
        const vm = await stack.vms.vm(ns.name, NAME);
        const vmi = await stack.vms.vmi(ns.name, NAME);
        return vm?.status?.printableStatus === 'Stopped' && vmi === undefined;
      },
      { timeoutMs: 120_000, intervalMs: 1_000, description: 'the VM to be Stopped without a VMI' },
    );
    await eventually(async () => (await launcherPods(stack, ns.name, firstUid)).length === 0, {
      timeoutMs: 120_000,
      description: 'the launcher pod to be deleted',
    });
    expect(await kubectlOk(stack, ['get', 'vm', NAME, '-n', ns.name])).toMatch(/\bStopped\b/);
  });

  it('virtctl start: Running again, in a new VMI', async () => {
    await virtctlOk(stack, ['start', NAME, '-n', ns.name]);
    const vmi = await waitReplacedAndRunning(stack, ns.name, NAME, firstUid);
    expect(vmi.metadata?.uid).not.toBe(firstUid);
    firstUid = vmi.metadata?.uid ?? '';
  });

  it('virtctl restart: a new VMI uid, Running', async () => {
    await virtctlOk(stack, ['restart', NAME, '-n', ns.name]);
    const vmi = await waitReplacedAndRunning(stack, ns.name, NAME, firstUid);
    expect(vmi.metadata?.uid).not.toBe(firstUid);
    // The old launcher pod goes; exactly one remains, the new VMI's.
    await eventually(async () => (await launcherPods(stack, ns.name, firstUid)).length === 0, {
      timeoutMs: 120_000,
      description: "the old VMI's launcher pod to be deleted",
    });
    firstUid = vmi.metadata?.uid ?? '';
    expect(await launcherPods(stack, ns.name, firstUid)).toHaveLength(1);
  });

  it('deleting the VM removes its VMI and launcher pod', async () => {
    await kubectlOk(stack, ['delete', 'vm', NAME, '-n', ns.name, '--wait=false']);
    await eventually(
      async () =>
        (await stack.vms.vm(ns.name, NAME)) === undefined &&
        (await stack.vms.vmi(ns.name, NAME)) === undefined &&
        (await launcherPods(stack, ns.name, firstUid)).length === 0,
      {
        timeoutMs: 120_000,
        intervalMs: 1_000,
        description: 'the VM, its VMI and its launcher pod to be gone',
      },
    );
  });
});
