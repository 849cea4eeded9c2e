// What every end-to-end file shares: the chart installed once per cluster (helm, namespace kubevirt, the services
// as pods on the devcluster nodes), the test guest in the nodes' image store, and small helpers to run kubectl and
// virtctl as a user would and to build test-guest VMs. Files run serially inside the cluster's namespace
// (`devcluster test`), each in a test namespace of its own (useTestNamespace).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { AppsV1Api, CoreV1Api, CustomObjectsApi, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { devclusterState, eventually, kubeConfigFromEnv } from '@kubevirt-ts/devcluster/testing';
import {
  CHART_NAMESPACE,
  ConsoleSession,
  consoleLines,
  VmClient,
  ensureStack as ensureStackInstalled,
  runVirtctl,
  TEST_GUEST_IMAGE,
  waitForVmiRunning,
  type VirtctlRun,
  type VmiView,
} from '@kubevirt-ts/devcluster/stack';
import { defaultCacheRoot, type ClusterState } from '@kubevirt-ts/devcluster';

export const REPO_ROOT = join(import.meta.dirname, '..', '..', '..');
export const GUEST_READY_LINE = 'kubevirt-ts-guest: ready';
/** Generous bounds for a guest under software emulation on a busy 2-core machine; never speed assertions. */
export const VM_RUNNING_TIMEOUT_MS = 240_000;
export const GUEST_BOOT_TIMEOUT_MS = 180_000;

export interface Stack {
  state: ClusterState;
  kc: KubeConfig;
  kubeconfig: string;
  nodes: string[];
  vms: VmClient;
  core: CoreV1Api;
  apps: AppsV1Api;
  custom: CustomObjectsApi;
}

let cached: Promise<Stack> | undefined;

/**
 * The stack, installed and Ready (see ensureStack in @kubevirt-ts/devcluster/stack): calling it from every file
 * costs one helm list and one readiness check once the chart is installed.
 */
export function ensureStack(): Promise<Stack> {
  cached ??= setUp();
  return cached;
}

async function setUp(): Promise<Stack> {
  const state = await devclusterState();
  const kubeconfig = process.env.KUBECONFIG ?? state.kubeconfigs.admin;
  const kc = kubeConfigFromEnv();
  const nodes = state.nodes?.nodes.map((n) => n.name) ?? [];
  if (nodes.length < 2) {
    throw new Error(
      `the e2e suite needs a devcluster with 2 nodes; this one has ${nodes.length} (devcluster down, then run the suite through make integration)`,
    );
  }
  await ensureStackInstalled({
    binDir: state.binDir,
    kubeconfig,
    kc,
    repoRoot: REPO_ROOT,
    nodes,
    cacheRoot: defaultCacheRoot(),
  });
  return {
    state,
    kc,
    kubeconfig,
    nodes,
    vms: new VmClient(kc),
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
  };
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** kubectl from the devcluster's binaries, as the user runs it; resolves with its output whatever the exit code. */
export async function kubectl(stack: Stack, args: string[], input?: string): Promise<CommandResult> {
  return new Promise((resolve) => {
    const child = execFile(
      join(stack.state.binDir, 'kubectl'),
      args,
      { env: { ...process.env, KUBECONFIG: stack.kubeconfig }, timeout: 120_000 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
    child.stdin?.end(input ?? '');
  });
}

/** kubectl that must succeed. */
export async function kubectlOk(stack: Stack, args: string[], input?: string): Promise<string> {
  const r = await kubectl(stack, args, input);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

/** virtctl from source, as the user runs it. */
export function virtctl(stack: Stack, args: string[], timeoutMs = 60_000): Promise<VirtctlRun> {
  return runVirtctl(REPO_ROOT, args, { kubeconfig: stack.kubeconfig, timeoutMs });
}

export async function virtctlOk(stack: Stack, args: string[]): Promise<string> {
  const r = await virtctl(stack, args);
  if (r.code !== 0)
    throw new Error(`virtctl ${args.join(' ')} failed (${String(r.code)}): ${r.stderr || r.stdout}`);
  return r.stdout;
}

export interface GuestOptions {
  /** `#cloud-config` keys for the test guest (marker, hostname, poweroff_after, panic_after). */
  userData?: Record<string, string | number>;
  labels?: Record<string, string>;
  /** A pvpanic device, so a kernel panic ends the domain Crashed (panic_after). */
  panicDevice?: boolean;
  memory?: string;
  terminationGracePeriodSeconds?: number;
}

/** The spec of a test-guest VMI: containerDisk root disk, optional cloud-init NoCloud user-data. */
export function guestSpec(options: GuestOptions = {}): Record<string, unknown> {
  const disks: Record<string, unknown>[] = [{ name: 'rootdisk', disk: { bus: 'virtio' } }];
  const volumes: Record<string, unknown>[] = [
    { name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } },
  ];
  if (options.userData) {
    const lines = Object.entries(options.userData).map(([k, v]) => `${k}: ${String(v)}`);
    disks.push({ name: 'cloudinitdisk', cdrom: { bus: 'sata' } });
    volumes.push({
      name: 'cloudinitdisk',
      cloudInitNoCloud: { userData: ['#cloud-config', ...lines, ''].join('\n') },
    });
  }
  return {
    domain: {
      resources: { requests: { memory: options.memory ?? '256Mi' } },
      devices: { disks, ...(options.panicDevice ? { panicDevices: [{ model: 'isa' }] } : {}) },
    },
    terminationGracePeriodSeconds: options.terminationGracePeriodSeconds ?? 10,
    volumes,
  };
}

export function testVm(
  name: string,
  runStrategy: string,
  options: GuestOptions = {},
): Record<string, unknown> & { metadata: { name: string; labels: Record<string, string> } } {
  const labels = { 'kubevirt-ts.dev/e2e-vm': name, ...options.labels };
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, labels },
    spec: { runStrategy, template: { metadata: { labels }, spec: guestSpec(options) } },
  };
}

/** Creates a kubevirt.io/v1 object in the namespace (as `kubectl create` does). */
export async function createObject(
  stack: Stack,
  namespace: string,
  plural: string,
  body: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  return (await stack.custom.createNamespacedCustomObject({
    group: 'kubevirt.io',
    version: 'v1',
    namespace,
    plural,
    body,
  })) as Record<string, unknown>;
}

export async function waitRunning(stack: Stack, namespace: string, name: string): Promise<VmiView> {
  return waitForVmiRunning(stack.vms, namespace, name, { timeoutMs: VM_RUNNING_TIMEOUT_MS });
}

/**
 * Creates the test-guest VM `name` with runStrategy Always and hostname `name`, and waits for its VMI to run: the
 * VM the suites that operate on one running guest share.
 */
export async function startNamedTestVm(stack: Stack, namespace: string, name: string): Promise<VmiView> {
  await createObject(
    stack,
    namespace,
    'virtualmachines',
    testVm(name, 'Always', { userData: { hostname: name } }),
  );
  return waitRunning(stack, namespace, name);
}

/**
 * Waits for the VMI `uid` to end Failed (or to be replaced already, when the VM controller was quicker than the
 * poll), then for its replacement to run; returns the replacement. `why` names the failure in the wait's message.
 */
export async function waitFailedThenReplaced(
  stack: Stack,
  namespace: string,
  name: string,
  uid: string,
  why: string,
): Promise<VmiView> {
  await eventually(
    async () => {
      const vmi = await stack.vms.vmi(namespace, name);
      return vmi?.metadata?.uid !== uid || vmi?.status?.phase === 'Failed';
    },
    { timeoutMs: 120_000, intervalMs: 500, description: `the VMI to fail ${why}` },
  );
  return waitReplacedAndRunning(stack, namespace, name, uid);
}

/** Waits for a VMI of that name whose uid differs from `oldUid`, Running. */
export async function waitReplacedAndRunning(
  stack: Stack,
  namespace: string,
  name: string,
  oldUid: string,
  timeoutMs = VM_RUNNING_TIMEOUT_MS,
): Promise<VmiView> {
  return eventually(
    async () => {
      const vmi = await stack.vms.vmi(namespace, name);
      return vmi?.metadata?.uid !== oldUid && vmi?.status?.phase === 'Running' ? vmi : undefined;
    },
    { timeoutMs, intervalMs: 1_000, description: `a new VMI ${namespace}/${name} (not ${oldUid}) to run` },
  );
}

export async function launcherPods(stack: Stack, namespace: string, vmiUid: string): Promise<V1Pod[]> {
  return stack.vms.launcherPods(namespace, vmiUid);
}

/** Every launcher pod in the namespace that is not terminal. */
export async function liveLauncherPods(stack: Stack, namespace: string): Promise<V1Pod[]> {
  const pods = await stack.core.listNamespacedPod({ namespace, labelSelector: 'kubevirt.io=virt-launcher' });
  return pods.items.filter((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed');
}

/**
 * Attaches `virtctl console` and shows that the guest booted with its user-data: the marker line either on the
 * console as the guest prints it during boot, or, when the guest printed it before the console attached, as the
 * guest's own copy of its user-data read back through the console's shell. Returns the console text.
 */
export async function consoleShowsMarker(
  stack: Stack,
  namespace: string,
  name: string,
  marker: string,
): Promise<string> {
  const session = ConsoleSession.attach(REPO_ROOT, namespace, name, { kubeconfig: stack.kubeconfig });
  if (!session)
    throw new Error('virtctl is missing (packages/virtctl/src/main.ts): the console cannot be attached');
  try {
    const deadline = Date.now() + GUEST_BOOT_TIMEOUT_MS;
    let asked = false;
    let nudged = 0;
    while (!session.text.includes(marker)) {
      if (session.exitCode !== undefined) {
        throw new Error(
          `virtctl console exited (${String(session.exitCode)}): ${session.stderr || session.text.slice(-500)}`,
        );
      }
      if (Date.now() > deadline) {
        throw new Error(
          `the console did not show ${JSON.stringify(marker)}; it showed: ${session.text.slice(-1500)}`,
        );
      }
      // The guest's shell prompt (busybox: "~ # ") or its ready line without the marker: it booted before we
      // attached, so ask it for its user-data. Until then an Enter now and then brings up a prompt.
      const booted = session.text.includes(GUEST_READY_LINE) || atPrompt(session.text);
      if (booted && !asked) {
        session.write("grep '^marker:' /run/cidata/user-data\r");
        asked = true;
      } else if (!booted && Date.now() - nudged > 3_000) {
        session.write('\r');
        nudged = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    return session.text;
  } finally {
    await session.close();
  }
}

/**
 * Shows that a VMI's guest booted to its shell: attaches `virtctl console`, presses Enter now and then until the
 * guest's prompt or ready line shows, then has the guest compute something and waits for the answer.
 */
export async function guestAnswers(stack: Stack, namespace: string, name: string): Promise<void> {
  const session = ConsoleSession.attach(REPO_ROOT, namespace, name, { kubeconfig: stack.kubeconfig });
  if (!session)
    throw new Error('virtctl is missing (packages/virtctl/src/main.ts): the console cannot be attached');
  try {
    const deadline = Date.now() + GUEST_BOOT_TIMEOUT_MS;
    let nudged = 0;
    for (;;) {
      if (session.exitCode !== undefined) {
        throw new Error(
          `virtctl console exited (${String(session.exitCode)}): ${session.stderr || session.text.slice(-500)}`,
        );
      }
      if (session.text.includes(GUEST_READY_LINE) || atPrompt(session.text)) break;
      if (Date.now() > deadline) {
        throw new Error(
          `the guest of ${namespace}/${name} showed no prompt; its console: ${session.text.slice(-1500)}`,
        );
      }
      if (Date.now() - nudged > 3_000) {
        session.write('\r');
        nudged = Date.now();
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    const from = session.text.length;
    session.write('\recho "booted: $((20 + 22))"\r');
    await session.waitFor('booted: 42', 30_000, from);
  } finally {
    await session.close();
  }
}

/** The guest's shell shows its prompt (busybox: `/ # `, followed by a cursor-position query we ignore). */
function atPrompt(text: string): boolean {
  return /[#$]$/.test(consoleLines(text).join('\n').trimEnd());
}

/** The node agent's record of a pod: the running container's init pid (see packages/devcluster/src/node/records.ts). */
export async function containerInitPid(
  stack: Stack,
  node: string,
  podUid: string,
  container: string,
): Promise<number | undefined> {
  const summary = stack.state.nodes?.nodes.find((n) => n.name === node);
  if (!summary) return undefined;
  const file = join(summary.root, 'var', 'lib', 'devcluster-node', 'pods', `${podUid}.json`);
  const record = JSON.parse(await readFile(file, 'utf8')) as {
    containers: Record<string, { current?: { initPid: number } }>;
  };
  return record.containers[container]?.current?.initPid;
}

/** The namespace of the chart's services. */
export const SERVICES_NAMESPACE = CHART_NAMESPACE;

/** Per-test and per-hook bounds of the e2e files (a test waits for several guest boots; a hook may install the chart). */
export const E2E_TEST_TIMEOUT_MS = 900_000;
export const E2E_HOOK_TIMEOUT_MS = 900_000;
