// What a user does with a running VM through virtctl and the subresource API: type into the console, pause and
// unpause, soft-reboot, and read the guest's OS from its agent.
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { ConsoleSession } from '@kubevirt-ts/devcluster/stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GUEST_BOOT_TIMEOUT_MS,
  GUEST_READY_LINE,
  REPO_ROOT,
  ensureStack,
  startNamedTestVm,
  virtctl,
  virtctlOk,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';

const ns = useTestNamespace('e2e-operations');
const NAME = 'ops-vm';
let stack: Stack;
let guestConsole: ConsoleSession | undefined;

/** The console, attached once; the guest's shell answers on it after the ready line. */
function attachedConsole(): ConsoleSession {
  if (guestConsole && guestConsole.exitCode === undefined) return guestConsole;
  const session = ConsoleSession.attach(REPO_ROOT, ns.name, NAME, { kubeconfig: stack.kubeconfig });
  if (!session) throw new Error('virtctl is missing (packages/virtctl/src/main.ts)');
  guestConsole = session;
  return session;
}

/** Types a command and waits for `expected` in what follows. */
async function typeAndExpect(command: string, expected: string | RegExp, timeoutMs = 30_000): Promise<void> {
  const session = attachedConsole();
  const from = session.text.length;
  session.write(`${command}\r`);
  await session.waitFor(expected, timeoutMs, from);
}

beforeAll(async () => {
  stack = await ensureStack();
  await startNamedTestVm(stack, ns.name, NAME);
  // Attach while the guest boots and wait for its shell; if it booted already, Enter brings a prompt.
  const session = attachedConsole();
  await session.waitFor(GUEST_READY_LINE, GUEST_BOOT_TIMEOUT_MS).catch(() => undefined);
  session.write('\r');
}, E2E_HOOK_TIMEOUT_MS);

afterAll(async () => {
  await guestConsole?.close();
});

describe('operations on a running VM', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('console input reaches the guest and its answer comes back', async () => {
    // The guest computes it, so the answer cannot be the echo of what was typed.
    await typeAndExpect('echo "answer: $((6 * 7))"', 'answer: 42');
    await typeAndExpect('hostname', new RegExp(`^${NAME}\\s*$`, 'm'));
  });

  it('virtctl pause / unpause: the VMI shows Paused, then runs again and answers', async () => {
    await virtctlOk(stack, ['pause', 'vm', NAME, '-n', ns.name]);
    await eventually(
      async () =>
        (await stack.vms.vmi(ns.name, NAME))?.status?.conditions?.some(
          (c) => c.type === 'Paused' && c.status === 'True',
        ),
      { timeoutMs: 60_000, description: 'the VMI condition Paused=True' },
    );
    await eventually(async () => (await stack.vms.vm(ns.name, NAME))?.status?.printableStatus === 'Paused', {
      timeoutMs: 60_000,
      description: 'the VM to show Paused',
    });
    await virtctlOk(stack, ['unpause', 'vm', NAME, '-n', ns.name]);
    await eventually(
      async () =>
        !(await stack.vms.vmi(ns.name, NAME))?.status?.conditions?.some(
          (c) => c.type === 'Paused' && c.status === 'True',
        ),
      { timeoutMs: 60_000, description: 'the Paused condition to go' },
    );
    await typeAndExpect('echo "after unpause: $((40 + 2))"', 'after unpause: 42');
  });

  it('virtctl guestosinfo: the guest agent reports the test guest', async () => {
    const info = await eventually(
      async () => {
        const r = await virtctl(stack, ['guestosinfo', NAME, '-n', ns.name]);
        return r.code === 0
          ? (JSON.parse(r.stdout) as { os?: { id?: string; name?: string; version?: string } })
          : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 2_000, description: 'virtctl guestosinfo to answer' },
    );
    expect(info.os?.id).toBe('kubevirt-ts-guest');
    expect(info.os?.name).toBe('kubevirt-ts test guest');
    const vmi = await stack.vms.vmi(ns.name, NAME);
    expect(vmi?.status?.guestOSInfo?.id).toBe('kubevirt-ts-guest');
  });

  it('virtctl softreboot: the guest boots again in the same VMI', async () => {
    const uid = (await stack.vms.vmi(ns.name, NAME))?.metadata?.uid;
    const session = attachedConsole();
    const from = session.text.length;
    await virtctlOk(stack, ['softreboot', NAME, '-n', ns.name]);
    await session.waitFor(GUEST_READY_LINE, GUEST_BOOT_TIMEOUT_MS, from);
    const vmi = await stack.vms.vmi(ns.name, NAME);
    expect(vmi?.metadata?.uid).toBe(uid);
    expect(vmi?.status?.phase).toBe('Running');
  });
});
