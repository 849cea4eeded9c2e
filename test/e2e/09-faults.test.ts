// Faults while VMs run and while a VM starts: restarting virt-controller, virt-handler, virt-api and a node agent
// loses no VM and duplicates none (same VMI uids, one launcher pod each) and the starting VM converges; a killed
// launcher fails its VMI and the VM (runStrategy Always) comes back; a restarted kube-apiserver is reconnected to
// by every service; a create while virt-api is down is refused cleanly and succeeds once it is back.
import { readFileSync, readdirSync } from 'node:fs';
import { ApiException } from '@kubernetes/client-node';
import { eventually, restartApiServer, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { waitForStack } from '@kubevirt-ts/devcluster/stack';
import { beforeAll, describe, expect, it } from 'vitest';
import { restartComponent } from '../../packages/devcluster/src/control.ts';
import {
  SERVICES_NAMESPACE,
  containerInitPid,
  createObject,
  ensureStack,
  launcherPods,
  liveLauncherPods,
  testVm,
  virtctlOk,
  waitFailedThenReplaced,
  waitRunning,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';

const ns = useTestNamespace('e2e-faults');
const STEADY = ['steady-a', 'steady-b'];
let stack: Stack;
/** VM name → the uid of its VMI that must survive the restarts. */
const uids = new Map<string, string>();
let started = 0;

beforeAll(async () => {
  stack = await ensureStack();
  for (const name of STEADY) await createObject(stack, ns.name, 'virtualmachines', testVm(name, 'Always'));
  for (const name of STEADY) uids.set(name, (await waitRunning(stack, ns.name, name)).metadata?.uid ?? '');
}, E2E_HOOK_TIMEOUT_MS);

/** No VM lost, none duplicated: each tracked VM has its VMI (same uid) Running and exactly one live launcher pod. */
async function assertNothingLostOrDuplicated(): Promise<void> {
  for (const [name, uid] of uids) {
    const vmi = await stack.vms.vmi(ns.name, name);
    expect(vmi?.metadata?.uid, `VMI of ${name}`).toBe(uid);
    expect(vmi?.status?.phase, `phase of ${name}`).toBe('Running');
    const pods = (await launcherPods(stack, ns.name, uid)).filter((p) => !p.metadata?.deletionTimestamp);
    expect(pods.length, `launcher pods of ${name}`).toBe(1);
  }
  const vmis = await stack.vms.vmis(ns.name);
  expect(vmis.length, 'VMIs in the namespace').toBe(uids.size);
  expect((await liveLauncherPods(stack, ns.name)).length, 'live launcher pods in the namespace').toBe(
    uids.size,
  );
}

/** Starts a VM, runs the fault while it starts, and adds it to the tracked VMs once it converged. */
async function startingDuring(fault: () => Promise<void>): Promise<void> {
  const name = `starting-${++started}`;
  // Tracked from its creation, so that a VM that never converges fails this test and not only the next ones.
  uids.set(name, '(not converged)');
  await createObject(stack, ns.name, 'virtualmachines', testVm(name, 'Always'));
  await fault();
  const vmi = await waitRunning(stack, ns.name, name);
  uids.set(name, vmi.metadata?.uid ?? '');
}

async function restartPods(labelSelector: string): Promise<void> {
  const pods = await stack.core.listNamespacedPod({ namespace: SERVICES_NAMESPACE, labelSelector });
  expect(pods.items.length, `pods matching ${labelSelector}`).toBeGreaterThan(0);
  const old = new Set(pods.items.map((p) => p.metadata?.uid));
  for (const pod of pods.items) {
    await stack.core.deleteNamespacedPod({ namespace: SERVICES_NAMESPACE, name: pod.metadata?.name ?? '' });
  }
  await eventually(
    async () => {
      const now = await stack.core.listNamespacedPod({ namespace: SERVICES_NAMESPACE, labelSelector });
      return now.items.every((p) => !old.has(p.metadata?.uid));
    },
    { timeoutMs: 120_000, description: `the old ${labelSelector} pods to be gone` },
  );
  await waitForStack(stack.kc, { nodes: stack.nodes, timeoutMs: 300_000 });
}

describe('faults', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('restarting virt-controller loses and duplicates nothing; a VM starting meanwhile converges', async () => {
    await startingDuring(() => restartPods('app.kubernetes.io/component=controller'));
    await assertNothingLostOrDuplicated();
  });

  it('restarting virt-handler loses and duplicates nothing; a VM starting meanwhile converges', async () => {
    await startingDuring(() => restartPods('app.kubernetes.io/component=handler'));
    await assertNothingLostOrDuplicated();
  });

  it('restarting virt-api loses and duplicates nothing; a VM starting meanwhile converges', async () => {
    await startingDuring(() => restartPods('app.kubernetes.io/component=api'));
    await assertNothingLostOrDuplicated();
  });

  it('restarting a node agent loses and duplicates nothing; a VM starting meanwhile converges', async () => {
    const node = stack.nodes[0] ?? 'dc-node-1';
    await startingDuring(async () => {
      await restartComponent(stack.state.controlSocket, node);
    });
    await assertNothingLostOrDuplicated();
  });

  it('a killed launcher fails its VMI, and the VM (Always) comes back in a new one', async () => {
    const name = STEADY[0] ?? '';
    const uid = uids.get(name) ?? '';
    const pod = (await launcherPods(stack, ns.name, uid))[0];
    const node = pod?.spec?.nodeName ?? '';
    const init = await containerInitPid(stack, node, pod?.metadata?.uid ?? '', 'compute');
    expect(init, 'the launcher container of the node agent').toBeGreaterThan(0);
    const launcher = launcherProcess(init ?? 0);
    process.kill(launcher, 'SIGKILL');
    const vmi = await waitFailedThenReplaced(stack, ns.name, name, uid, 'after its launcher was killed');
    uids.set(name, vmi.metadata?.uid ?? '');
    await eventually(async () => (await launcherPods(stack, ns.name, uid)).length === 0, {
      timeoutMs: 120_000,
      description: "the killed launcher's pod to be removed",
    });
    await assertNothingLostOrDuplicated();
  });

  it('after a kube-apiserver restart every service reconnects: VMs keep running, a new VM starts and stops', async () => {
    await restartApiServer();
    await waitForStack(stack.kc, { nodes: stack.nodes, timeoutMs: 300_000 });
    await assertNothingLostOrDuplicated();
    const name = 'after-apiserver';
    await createObject(stack, ns.name, 'virtualmachines', testVm(name, 'Always'));
    const vmi = await waitRunning(stack, ns.name, name);
    await virtctlOk(stack, ['stop', name, '-n', ns.name]);
    await eventually(async () => (await stack.vms.vm(ns.name, name))?.status?.printableStatus === 'Stopped', {
      timeoutMs: 120_000,
      description: `${name} to stop`,
    });
    await eventually(async () => (await launcherPods(stack, ns.name, vmi.metadata?.uid ?? '')).length === 0, {
      timeoutMs: 120_000,
      description: `${name}'s launcher pod to go`,
    });
    await stack.custom.deleteNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'virtualmachines',
      name,
    });
  });

  it('a create while virt-api is down is refused cleanly, and succeeds once it is back', async () => {
    const scale = await stack.apps.readNamespacedDeploymentScale({
      name: 'virt-api',
      namespace: SERVICES_NAMESPACE,
    });
    const replicas = scale.spec?.replicas ?? 2;
    const setReplicas = (n: number) =>
      stack.apps.replaceNamespacedDeploymentScale({
        name: 'virt-api',
        namespace: SERVICES_NAMESPACE,
        body: { metadata: { name: 'virt-api', namespace: SERVICES_NAMESPACE }, spec: { replicas: n } },
      });
    await setReplicas(0);
    try {
      await eventually(
        async () =>
          (
            await stack.core.listNamespacedPod({
              namespace: SERVICES_NAMESPACE,
              labelSelector: 'app.kubernetes.io/component=api',
            })
          ).items.length === 0,
        { timeoutMs: 120_000, description: 'the virt-api pods to be gone' },
      );
      const name = 'while-api-down';
      const refusal = await createObject(stack, ns.name, 'virtualmachines', testVm(name, 'Always')).then(
        () => undefined,
        (err: unknown) => err,
      );
      expect(refusal, 'the create to be refused').toBeInstanceOf(ApiException);
      const error = refusal as ApiException<unknown>;
      expect(error.code).toBeGreaterThanOrEqual(500);
      expect(String(error.body)).toMatch(/webhook|virt-api/);
      expect(await stack.vms.vm(ns.name, name)).toBeUndefined();

      await setReplicas(replicas);
      await waitForStack(stack.kc, { nodes: stack.nodes, timeoutMs: 300_000 });
      await eventually(
        () => createObject(stack, ns.name, 'virtualmachines', testVm(name, 'Always')).then(() => true),
        {
          timeoutMs: 60_000,
          intervalMs: 1_000,
          description: 'the create to succeed with virt-api back',
        },
      );
      uids.set(name, (await waitRunning(stack, ns.name, name)).metadata?.uid ?? '');
    } finally {
      await setReplicas(replicas);
    }
    await assertNothingLostOrDuplicated();
  });
});

/** The virt-launcher process under a launcher container's init (the image runs it behind a tiny init). */
function launcherProcess(initPid: number): number {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), pid]);
    } catch {
      // Gone meanwhile.
    }
  }
  const queue = [initPid];
  while (queue.length > 0) {
    const pid = queue.shift() ?? 0;
    const cmdline = (() => {
      try {
        return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
      } catch {
        return '';
      }
    })();
    if (/launcher[/\\]src[/\\]main\.ts|virt-launcher/.test(cmdline)) return pid;
    queue.push(...(children.get(pid) ?? []));
  }
  throw new Error(`no virt-launcher process under pid ${initPid}`);
}
