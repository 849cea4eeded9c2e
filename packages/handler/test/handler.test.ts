// virt-handler against the real API server (devcluster) and real launchers booting the test guest under QEMU.
//
// Until devcluster's node agent runs launcher pods, the suite plays the parts around the handler itself: it
// registers a Node, creates each VMI and its launcher pod object (bound to that Node), starts the launcher as a
// process in its own mount namespace with the pod's sockets folder at the kubelet's path under a temporary pods
// folder, and marks the VMI Scheduled with status.activePods as virt-controller does (as virt-controller's
// ServiceAccount), releasing the finalizer at the end as the controller would. The device-plugin registration on the
// node is served by devcluster's kubelet-side device manager, whose counts the suite writes into the Node's status
// as a kubelet would. virt-handler itself runs from source as its own ServiceAccount with the chart's RBAC.
import { randomBytes } from 'node:crypto';
import { access, mkdir, mkdtemp, readdir, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type CoreV1Event } from '@kubernetes/client-node';
import { dialHandler, type HandlerConnection } from '@kubevirt-ts/proto';
import { mergePatchOptions, silentLogger } from '@kubevirt-ts/runtime';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '@kubevirt-ts/runtime/pki';
import { parseQuantity, type VirtualMachineInstance } from '@kubevirt-ts/schema';
import {
  devclusterState,
  eventually,
  kubeConfigFromEnv,
  useTestNamespace,
} from '@kubevirt-ts/devcluster/testing';
import type { ClusterState } from '@kubevirt-ts/devcluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTestGuest, type TestGuest } from '../../devcluster/src/guest/build.ts';
import { DeviceManager } from '../../devcluster/src/node/deviceplugin/manager.ts';
import { ensureCapabilityCache } from '../../launcher/src/capabilities-cache.ts';
import {
  apply,
  emptyDir,
  installCrds,
  killQemu,
  kubectl,
  qemuPids,
  rbacObjects,
  remove,
  startHandler,
  startLauncher,
  type HandlerProcess,
  type LoggedProcess,
} from './harness.ts';

type VMI = VirtualMachineInstance;

const ns = useTestNamespace('virt-handler');
const SERVER_SECRET = 'kubevirt-virt-handler-server-certs';
const CLIENT_NAME = 'kubevirt.io:system:client:virt-handler';
const DAY = 24 * 3_600_000;
/** A guest boots in about 8 s under TCG; this bounds a wait semantically, with slack for a busy 2-core machine. */
const BOOT_MS = 120_000;
const UNRESPONSIVE_TIMEOUT_S = 10;

let kc: KubeConfig;
let controllerKc: KubeConfig;
let state: ClusterState;
let guest: TestGuest;
let capabilitiesSeed: string;
let root: string;
let podsDir: string;
let handlerState: string;
let dpDir: string;
let nodeName: string;
let ca: CertificateAuthority;
let clientPem: { key: string; cert: string; ca: string };
let handler: HandlerProcess | undefined;
/** Every handler process started, for the debug logs. */
const handlers: HandlerProcess[] = [];
let deviceManager: DeviceManager | undefined;
const launchers: { process: LoggedProcess; domain: string; stateDir: string }[] = [];
const pods: { name: string; namespace: string }[] = [];
const clusterObjects: { apiVersion: string; kind: string; metadata: { name: string } }[] = [];

const custom = (config = kc) => config.makeApiClient(CustomObjectsApi);
const core = (config = kc) => config.makeApiClient(CoreV1Api);
const vmiRef = (name: string) => ({
  group: 'kubevirt.io',
  version: 'v1',
  plural: 'virtualmachineinstances',
  namespace: ns.name,
  name,
});

async function getVMI(name: string): Promise<VMI> {
  return (await custom().getNamespacedCustomObject(vmiRef(name))) as VMI;
}

function handlerArgs() {
  return {
    kubeconfig: state.kubeconfigs.services['virt-handler']!,
    node: nodeName,
    podsDir,
    stateDir: handlerState,
    devicePluginsDir: dpDir,
    certsNamespace: ns.name,
    unresponsiveTimeout: `${UNRESPONSIVE_TIMEOUT_S}s`,
  };
}

function dial(pem = clientPem): HandlerConnection {
  return dialHandler(
    { host: '127.0.0.1', port: handler!.grpcPort, tls: { ...pem, serverName: 'virt-handler' } },
    { deadlinesMs: { short: 10_000, normal: 20_000 } },
  );
}

async function events(name: string): Promise<CoreV1Event[]> {
  const list = await core().listNamespacedEvent({
    namespace: ns.name,
    fieldSelector: `involvedObject.name=${name},involvedObject.kind=VirtualMachineInstance`,
  });
  return list.items;
}

function condition(vmi: VMI, type: string) {
  return vmi.status?.conditions?.find((c) => c.type === type);
}

interface RunningVM {
  name: string;
  uid: string;
  podUid: string;
  domain: string;
  launcher: LoggedProcess;
  marker: string;
}

/**
 * A VMI on the test node with its launcher: the VMI and its pod object in the API server, the launcher process with
 * the pod's folders, and the VMI marked Scheduled with activePods by the controller fixture.
 */
async function createVM(
  name: string,
  opts: { graphics?: boolean; grace?: number; userData?: string; unmountedContainerDisk?: boolean } = {},
): Promise<RunningVM> {
  const marker = `handler-marker-${randomBytes(4).toString('hex')}`;
  const disks: NonNullable<VMI['spec']['domain']['devices']['disks']> = [
    { name: 'cloudinitdisk', cdrom: { bus: 'sata' } },
  ];
  const volumes: NonNullable<VMI['spec']['volumes']> = [
    {
      name: 'cloudinitdisk',
      cloudInitNoCloud: {
        userData: opts.userData ?? `#cloud-config\nhostname: ${name}\nmarker: ${marker}\n`,
      },
    },
  ];
  if (opts.unmountedContainerDisk) {
    // A containerDisk whose image volume the (fixture) pod never mounts: the launcher cannot prepare it.
    disks.push({ name: 'rootdisk', disk: { bus: 'virtio' } });
    volumes.push({ name: 'rootdisk', containerDisk: { image: 'example.org/missing:1' } });
  }
  const manifest: VMI = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: ns.name },
    spec: {
      terminationGracePeriodSeconds: opts.grace ?? 30,
      domain: {
        cpu: { cores: 1 },
        memory: { guest: '256Mi' },
        firmware: {
          kernelBoot: {
            kernelArgs: guest.kernelArgs,
            container: { image: 'kubevirt-ts/test-guest:kernel', ...guest.kernelBootPaths },
          },
        },
        devices: { disks, autoattachGraphicsDevice: opts.graphics ?? false },
      },
      volumes,
    },
  };
  const created = (await custom().createNamespacedCustomObject({ ...vmiRef(name), body: manifest })) as VMI;
  const uid = created.metadata!.uid!;
  const pod = await core().createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: {
        generateName: `virt-launcher-${name}-`,
        labels: { 'kubevirt.io': 'virt-launcher', 'kubevirt.io/created-by': uid },
        ownerReferences: [
          {
            apiVersion: 'kubevirt.io/v1',
            kind: 'VirtualMachineInstance',
            name,
            uid,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        nodeName,
        restartPolicy: 'Never',
        // The test node has no kubelet and never gets Ready: keep the taint manager from evicting the pod.
        tolerations: [{ operator: 'Exists' }],
        containers: [{ name: 'compute', image: 'ghcr.io/kubevirt-ts/virt-launcher:test' }],
      },
    },
  });
  const podUid = pod.metadata!.uid!;
  pods.push({ name: pod.metadata!.name!, namespace: ns.name });
  const stateDir = join(root, `launcher-${name}`);
  const launcher = await startLauncher({
    podsDir,
    podUid,
    stateDir,
    name,
    namespace: ns.name,
    uid,
    gracePeriodSeconds: 45,
    kernelBootImage: guest.kernelBootImage,
    capabilitiesSeed,
  });
  const domain = `${ns.name}_${name}`;
  launchers.push({ process: launcher, domain, stateDir });
  await launcher.waitForLine((l) => String(l.msg).startsWith('launcher ready'), 60_000);

  // The VMI controller's part (reference §2.1: Scheduling → Scheduled once the pod runs), as its ServiceAccount.
  await eventually(
    async () => {
      const vmi = (await custom(controllerKc).getNamespacedCustomObject(vmiRef(name))) as VMI;
      vmi.metadata!.labels = { ...vmi.metadata!.labels, 'kubevirt.io/nodeName': nodeName };
      vmi.metadata!.finalizers = [
        ...(vmi.metadata!.finalizers ?? []),
        'kubevirt.io/foregroundDeleteVirtualMachine',
      ];
      const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
      vmi.status = {
        ...vmi.status,
        phase: 'Scheduled',
        nodeName,
        activePods: { [podUid]: nodeName },
        launcherContainerImageVersion: 'ghcr.io/kubevirt-ts/virt-launcher:test',
        phaseTransitionTimestamps: [
          { phase: 'Pending', phaseTransitionTimestamp: now },
          { phase: 'Scheduling', phaseTransitionTimestamp: now },
          { phase: 'Scheduled', phaseTransitionTimestamp: now },
        ],
      };
      await custom(controllerKc).replaceNamespacedCustomObject({ ...vmiRef(name), body: vmi });
      return true;
    },
    { timeoutMs: 30_000, description: `the controller fixture to mark ${name} Scheduled` },
  );
  return { name, uid, podUid, domain, launcher, marker };
}

/** The controller fixture's last step: a final VMI without pods loses its finalizer. */
async function releaseFinalizer(name: string): Promise<void> {
  await eventually(
    async () => {
      const vmi = (await custom(controllerKc).getNamespacedCustomObject(vmiRef(name))) as VMI;
      vmi.metadata!.finalizers = (vmi.metadata!.finalizers ?? []).filter(
        (f) => f !== 'kubevirt.io/foregroundDeleteVirtualMachine',
      );
      await custom(controllerKc).replaceNamespacedCustomObject({ ...vmiRef(name), body: vmi });
      return true;
    },
    { timeoutMs: 30_000, description: `releasing the finalizer of ${name}` },
  );
}

async function waitForPhase(name: string, phase: string, timeoutMs = BOOT_MS): Promise<VMI> {
  return eventually(
    async () => {
      const vmi = await getVMI(name);
      return vmi.status?.phase === phase ? vmi : undefined;
    },
    { timeoutMs, intervalMs: 250, description: `VMI ${name} to be ${phase}` },
  );
}

let publishing: Promise<void> = Promise.resolve();

/**
 * Publishes the device manager's counts in the Node's status, as a kubelet does: one patch at a time, each with
 * the counts of the moment it is sent, so an older patch never lands after a newer one.
 */
function publishDevices(): Promise<void> {
  publishing = publishing.then(patchDeviceCounts, patchDeviceCounts);
  return publishing;
}

async function patchDeviceCounts(): Promise<void> {
  if (!deviceManager) return;
  const capacity: Record<string, string> = {};
  const allocatable: Record<string, string> = {};
  for (const [resource, counts] of deviceManager.resources()) {
    capacity[resource] = String(counts.capacity);
    allocatable[resource] = String(counts.allocatable);
  }
  await core().patchNodeStatus(
    { name: nodeName, body: { status: { capacity, allocatable } } },
    mergePatchOptions(),
  );
}

beforeAll(async () => {
  guest = await buildTestGuest();
  capabilitiesSeed = await ensureCapabilityCache();
  kc = kubeConfigFromEnv();
  state = await devclusterState();
  controllerKc = new KubeConfig();
  controllerKc.loadFromFile(state.kubeconfigs.services['virt-controller']!);
  await installCrds(kc, join(state.binDir, 'kubectl'));

  // Short paths: the kubelet layout below them is deep, and the handler links to it from its state dir.
  root = await mkdtemp(join(tmpdir(), 'kvh-'));
  podsDir = join(root, 'pods');
  handlerState = join(root, 'st');
  dpDir = join(root, 'dp');
  await mkdir(podsDir, { recursive: true });

  nodeName = `kvh-${ns.name.slice(-6)}`;
  await core().createNode({
    body: { metadata: { name: nodeName, labels: { 'kubernetes.io/hostname': nodeName } } },
  });
  clusterObjects.push({ apiVersion: 'v1', kind: 'Node', metadata: { name: nodeName } });
  for (const obj of rbacObjects(ns.name, SERVER_SECRET)) {
    await apply(kc, obj);
    if (obj.metadata?.namespace === undefined) {
      clusterObjects.push({
        apiVersion: obj.apiVersion!,
        kind: obj.kind!,
        metadata: { name: obj.metadata!.name! },
      });
    }
  }

  // The certificate loop's output (DESIGN.md §4b): the handler's server certificate and the CA bundle.
  ca = await createCertificateAuthority({ commonName: 'kubevirt.io', validityMs: 7 * DAY });
  const server = await issueCertificate(ca, {
    commonName: 'kubevirt.io:system:node:virt-handler',
    usages: ['server', 'client'],
    dnsNames: ['virt-handler'],
    validityMs: DAY,
  });
  const client = await issueCertificate(ca, { commonName: CLIENT_NAME, usages: ['client'], validityMs: DAY });
  clientPem = { key: client.keyPem, cert: client.certPem, ca: ca.certPem };
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  await core().createNamespacedSecret({
    namespace: ns.name,
    body: {
      metadata: { name: SERVER_SECRET },
      type: 'kubernetes.io/tls',
      data: { 'tls.crt': b64(server.certPem), 'tls.key': b64(server.keyPem), 'ca.crt': b64(ca.certPem) },
    },
  });

  deviceManager = new DeviceManager({
    dir: dpDir,
    log: silentLogger(),
    onChange: () => void publishDevices().catch(() => undefined),
  });
  await deviceManager.start();

  handler = await startHandler(handlerArgs());
  handlers.push(handler);
}, 600_000);

afterAll(async () => {
  await handler?.stop();
  // KVH_DEBUG_LOGS=<dir>: keep every process's log lines for a post-mortem.
  const debugDir = process.env.KVH_DEBUG_LOGS;
  if (debugDir) {
    await mkdir(debugDir, { recursive: true });
    for (const p of [...handlers, ...launchers.map((l) => l.process)]) {
      await writeFile(
        join(debugDir, `${p.name.replaceAll(/[^a-z0-9-]+/gi, '_')}-${p.child.pid}.log`),
        p.lines.map((l) => JSON.stringify(l)).join('\n'),
      );
    }
  }
  for (const l of launchers) {
    await l.process.stop(5_000);
    await killQemu(l.domain);
  }
  await deviceManager?.stop();
  const api = core();
  for (const p of pods) {
    // No kubelet confirms their end: remove them outright so the namespace can go.
    await api.deleteNamespacedPod({ ...p, gracePeriodSeconds: 0 }).catch(() => undefined);
  }
  for (const obj of clusterObjects.reverse()) await remove(kc, obj);
  if (root) await rm(root, { recursive: true, force: true });
}, 120_000);

describe('virt-handler with a real launcher', () => {
  let vm: RunningVM;

  it('keeps the node heartbeat and advertises devices.kubevirt.io resources through the kubelet', async () => {
    let seen: unknown;
    const node = await eventually(
      async () => {
        const n = await core().readNode({ name: nodeName });
        seen = { labels: n.metadata?.labels, capacity: n.status?.capacity };
        const ok =
          n.metadata?.labels?.['kubevirt.io/schedulable'] === 'true' &&
          ['kvm', 'tun', 'vhost-net'].every(
            (r) => parseQuantity(n.status?.capacity?.[`devices.kubevirt.io/${r}`]) === 1000,
          );
        return ok ? n : undefined;
      },
      { timeoutMs: 60_000, description: 'the node to be schedulable with device-plugin capacity' },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; the node had ${JSON.stringify(seen)}`);
    });
    expect(node.metadata?.annotations?.['kubevirt.io/heartbeat']).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    expect(node.metadata?.labels?.['kubevirt-ts.dev/kvm-usable']).toMatch(/^(true|false)$/);
    // The API server stores quantities canonically (1000 reads back as 1k).
    for (const r of ['kvm', 'tun', 'vhost-net']) {
      expect(parseQuantity(node.status?.capacity?.[`devices.kubevirt.io/${r}`])).toBe(1000);
    }
    // A slot is allocatable while its device node exists on this machine (/dev/net/tun always does here).
    expect(parseQuantity(node.status?.allocatable?.['devices.kubevirt.io/tun'])).toBe(1000);
    const vhost = await access('/dev/vhost-net').then(
      () => 1000,
      () => 0,
    );
    expect(parseQuantity(node.status?.allocatable?.['devices.kubevirt.io/vhost-net'])).toBe(vhost);
  });

  it(
    'brings a Scheduled VMI to Running, and kubectl get vmi shows its phase and node',
    async () => {
      vm = await createVM('vm1', { graphics: true });
      const vmi = await waitForPhase('vm1', 'Running');
      expect(vmi.status?.phaseTransitionTimestamps?.map((t) => t.phase)).toEqual([
        'Pending',
        'Scheduling',
        'Scheduled',
        'Running',
      ]);
      expect(vmi.status?.launcherContainerImageVersion).toBe('ghcr.io/kubevirt-ts/virt-launcher:test');
      const { stdout } = await kubectl(join(state.binDir, 'kubectl'), ['get', 'vmi', 'vm1', '-n', ns.name]);
      const [header, row] = stdout.trim().split('\n');
      expect(header).toMatch(/^NAME\s+AGE\s+PHASE\s+IP\s+NODENAME\s+READY/);
      expect(row).toMatch(new RegExp(`^vm1\\s+\\S+\\s+Running\\s+.*${nodeName}`));
      await eventually(async () => (await events('vm1')).some((e) => e.reason === 'Started'), {
        description: 'a Started event',
      });
      const reasons = (await events('vm1')).map((e) => e.reason);
      expect(reasons).toContain('Created');
      const health = `http://127.0.0.1:${handler!.healthPort}`;
      expect((await fetch(`${health}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${health}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(`kubevirt_vmi_phase_count\\{node="${nodeName}",phase="Running"\\} 1`),
      );
      expect(metrics).toMatch(
        /kubevirt_handler_vmi_sync_duration_seconds_count\{action="sync",result="success"\} [1-9]/,
      );
      // The handler reached the deep pod folder through a link in its state dir.
      expect(await readlink(join(handlerState, 's', vm.podUid))).toBe(
        emptyDir(podsDir, vm.podUid, 'sockets'),
      );
      expect(await readdir(join(handlerState, 'ghost-records'))).toEqual([`${vm.uid}.json`]);
    },
    BOOT_MS + 60_000,
  );

  it(
    'reports the guest OS and AgentConnected from the guest agent, and serves guestosinfo',
    async () => {
      const vmi = await eventually(
        async () => {
          const v = await getVMI('vm1');
          return condition(v, 'AgentConnected')?.status === 'True' && v.status?.guestOSInfo?.id
            ? v
            : undefined;
        },
        { timeoutMs: BOOT_MS, description: 'guestOSInfo and AgentConnected' },
      );
      expect(vmi.status?.guestOSInfo).toMatchObject({
        id: guest.os.id,
        name: guest.os.name,
        prettyName: guest.os.prettyName,
        versionId: guest.os.versionId,
        kernelRelease: guest.kernelRelease,
      });
      const c = dial();
      try {
        const answer = await c.guestOSInfo({ namespace: ns.name, name: 'vm1', uid: vm.uid });
        expect(answer.success).toBe(true);
        expect(JSON.parse(answer.guestOsInfoJson.toString())).toMatchObject({
          hostname: 'vm1',
          os: { id: guest.os.id },
        });
      } finally {
        c.close();
      }
    },
    BOOT_MS + 30_000,
  );

  it('streams the serial console and the VNC display through handler.v1', async () => {
    const c = dial();
    try {
      const consoleStream = c.console({ namespace: ns.name, name: 'vm1' });
      let text = '';
      consoleStream.on('data', (b: Buffer) => (text += b.toString()));
      const word = `handler-console-${randomBytes(3).toString('hex')}`;
      consoleStream.write(`\necho ${word}-$((6*7))\n`);
      await eventually(() => text.includes(`${word}-42`), {
        timeoutMs: 30_000,
        description: `console output ${word}-42`,
      });
      consoleStream.end();

      const vnc = c.vnc({ namespace: ns.name, name: 'vm1' });
      const greeting = await new Promise<string>((resolve, reject) => {
        let got = '';
        vnc.on('data', (b: Buffer) => {
          got += b.toString('latin1');
          if (got.length >= 12) resolve(got.slice(0, 12));
        });
        vnc.on('error', reject);
      });
      expect(greeting).toBe('RFB 003.008\n');
      vnc.destroy();
    } finally {
      c.close();
    }
  });

  it('pauses and unpauses through handler.v1, shown by the Paused condition', async () => {
    const c = dial();
    try {
      expect(await c.pause({ namespace: ns.name, name: 'vm1', uid: vm.uid })).toEqual({
        success: true,
        message: '',
      });
      const paused = await eventually(
        async () => {
          const v = await getVMI('vm1');
          return condition(v, 'Paused')?.status === 'True' ? v : undefined;
        },
        { timeoutMs: 30_000, description: 'the Paused condition' },
      );
      expect(condition(paused, 'Paused')).toMatchObject({
        reason: 'PausedByUser',
        message: 'VMI was paused by user',
      });
      expect(paused.status?.phase).toBe('Running');
      expect(await c.unpause({ namespace: ns.name, name: 'vm1' })).toEqual({ success: true, message: '' });
      await eventually(async () => condition(await getVMI('vm1'), 'Paused') === undefined, {
        timeoutMs: 30_000,
        description: 'the Paused condition to go',
      });
    } finally {
      c.close();
    }
  });

  it('refuses handler.v1 callers without the right client certificate', async () => {
    const otherName = await issueCertificate(ca, {
      commonName: 'virt-api.kubevirt.svc',
      usages: ['client'],
      validityMs: DAY,
    });
    const wrongName = dial({ key: otherName.keyPem, cert: otherName.certPem, ca: ca.certPem });
    const stranger = await createCertificateAuthority({ commonName: 'stranger', validityMs: DAY });
    const strangerCert = await issueCertificate(stranger, {
      commonName: CLIENT_NAME,
      usages: ['client'],
      validityMs: DAY,
    });
    const wrongCa = dial({ key: strangerCert.keyPem, cert: strangerCert.certPem, ca: ca.certPem });
    try {
      await expect(wrongName.pause({ namespace: ns.name, name: 'vm1' })).rejects.toMatchObject({
        code: grpcStatus.PERMISSION_DENIED,
      });
      await expect(wrongCa.pause({ namespace: ns.name, name: 'vm1' })).rejects.toMatchObject({
        code: grpcStatus.UNAVAILABLE,
      });
    } finally {
      wrongName.close();
      wrongCa.close();
    }
    // Neither reached the guest.
    expect(condition(await getVMI('vm1'), 'Paused')).toBeUndefined();
  });

  it('restarting the handler mid-run changes nothing for the running VM', async () => {
    const qemuBefore = await qemuPids(vm.domain);
    expect(qemuBefore).toHaveLength(1);
    const before = await getVMI('vm1');
    expect(await handler!.stop()).toBe(0);
    const node = await core().readNode({ name: nodeName });
    expect(node.metadata?.labels?.['kubevirt.io/schedulable']).toBe('false');

    handler = await startHandler(handlerArgs());
    handlers.push(handler);
    await handler.waitForLine((l) => l.msg === 'checkpoints loaded' && l.launchers === 1);
    await handler.waitForLine((l) => l.msg === 'connected to the launcher' && l.name === 'vm1', 30_000);
    // Give it time to act on what it found: it must find nothing to change.
    await new Promise((r) => setTimeout(r, 5_000));
    const after = await getVMI('vm1');
    expect(after.status).toEqual(before.status);
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(await qemuPids(vm.domain)).toEqual(qemuBefore);
    expect(vm.launcher.running).toBe(true);
    // The new handler drives the same guest: the notify stream came back, so a pause shows again.
    const c = dial();
    try {
      expect((await c.pause({ namespace: ns.name, name: 'vm1' })).success).toBe(true);
      await eventually(async () => condition(await getVMI('vm1'), 'Paused')?.status === 'True', {
        timeoutMs: 30_000,
        description: 'Paused after the restart',
      });
      expect((await c.unpause({ namespace: ns.name, name: 'vm1' })).success).toBe(true);
      await eventually(async () => condition(await getVMI('vm1'), 'Paused') === undefined, {
        timeoutMs: 30_000,
        description: 'unpaused after the restart',
      });
    } finally {
      c.close();
    }
    await eventually(
      async () =>
        (await core().readNode({ name: nodeName })).metadata?.labels?.['kubevirt.io/schedulable'] === 'true',
      { timeoutMs: 30_000, description: 'the node to be schedulable again' },
    );
  }, 120_000);

  it('deleting the VMI shuts the guest down gracefully: Succeeded, domain deleted, launcher gone', async () => {
    await custom().deleteNamespacedCustomObject(vmiRef('vm1'));
    const vmi = await waitForPhase('vm1', 'Succeeded', 60_000);
    expect(vmi.status?.reason).toBeUndefined();
    expect(condition(vmi, 'Ready')).toMatchObject({ status: 'False' });
    await eventually(() => !vm.launcher.running, { timeoutMs: 60_000, description: 'the launcher to exit' });
    expect(await vm.launcher.exited).toBe(0);
    expect(await qemuPids(vm.domain)).toEqual([]);
    const byReason = new Map((await events('vm1')).map((e) => [e.reason, e]));
    expect(byReason.get('ShuttingDown')?.message).toBe('Signaled Graceful Shutdown');
    expect(byReason.get('Stopped')).toMatchObject({
      type: 'Normal',
      message: 'The VirtualMachineInstance was shut down.',
    });
    // The launcher saw the guest power itself off, not a kill.
    expect(
      vm.launcher.lines.some((l) => l.msg === 'destroying the domain'),
      'the launcher destroyed the domain instead of letting it power off',
    ).toBe(false);
    await eventually(async () => (await readdir(join(handlerState, 'ghost-records'))).length === 0, {
      timeoutMs: 30_000,
      description: 'the checkpoint to be removed',
    });
    await releaseFinalizer('vm1');
    await eventually(
      async () =>
        getVMI('vm1').then(
          () => false,
          (err: { code?: number }) => err.code === 404,
        ),
      { description: 'the VMI to be gone' },
    );
  }, 120_000);

  it(
    'killing QEMU makes the VMI Failed with a reason',
    async () => {
      const vm2 = await createVM('vm2');
      await waitForPhase('vm2', 'Running');
      const [qemu] = await qemuPids(vm2.domain);
      expect(qemu).toBeDefined();
      process.kill(qemu!, 'SIGKILL');
      const failed = await waitForPhase('vm2', 'Failed', 60_000);
      expect(failed.status?.reason).toBe('GuestCrashed');
      expect(condition(failed, 'Ready')?.status).toBe('False');
      await eventually(
        async () =>
          (await events('vm2')).find(
            (e) => e.reason === 'Stopped' && e.type === 'Warning' && /GuestCrashed/.test(e.message ?? ''),
          ),
        { description: 'a Warning Stopped event naming the reason' },
      );
      // The launcher's own report, relayed through notify-sock as a Kubernetes Event on the VMI.
      await eventually(
        async () => (await events('vm2')).find((e) => e.reason === 'QemuFailed' && e.type === 'Warning'),
        {
          description: "the launcher's QemuFailed event",
        },
      );
      // The final VMI's domain is deleted, so the launcher ends.
      await eventually(() => !vm2.launcher.running, {
        timeoutMs: 60_000,
        description: 'the launcher to exit',
      });
      await releaseFinalizer('vm2');
    },
    BOOT_MS + 120_000,
  );

  it(
    'a launcher whose pod is going away (SIGTERM) shuts the guest down: Succeeded',
    async () => {
      const vm6 = await createVM('vm6');
      await waitForPhase('vm6', 'Running');
      // A guest that has booted (its agent is up), so its power button is heard.
      await eventually(async () => condition(await getVMI('vm6'), 'AgentConnected')?.status === 'True', {
        timeoutMs: BOOT_MS,
        description: 'vm6 to boot',
      });
      // What the kubelet does when the pod is deleted or evicted.
      vm6.launcher.child.kill('SIGTERM');
      const vmi = await waitForPhase('vm6', 'Succeeded', 60_000);
      expect(vmi.status?.reason).toBeUndefined();
      expect(await vm6.launcher.exited).toBe(0);
      expect(await qemuPids(vm6.domain)).toEqual([]);
      await eventually(
        async () => !(await readdir(join(handlerState, 'ghost-records'))).includes(`${vm6.uid}.json`),
        { timeoutMs: 30_000, description: 'the handler to let go of vm6' },
      );
      await releaseFinalizer('vm6');
    },
    BOOT_MS + 60_000,
  );

  it(
    'a guest that ignores the ACPI shutdown is killed when its grace period is over: Failed',
    async () => {
      const word = `acpid-stopped-${randomBytes(3).toString('hex')}`;
      // The guest's power-button daemon goes away, so the shutdown request reaches nobody.
      await createVM('vm4', { grace: 5, userData: `#!/bin/sh\nkillall acpid && echo ${word}\n` });
      await waitForPhase('vm4', 'Running');
      const c = dial();
      try {
        const consoleStream = c.console({ namespace: ns.name, name: 'vm4' });
        let text = '';
        consoleStream.on('data', (b: Buffer) => (text += b.toString()));
        await eventually(() => text.includes(word), {
          timeoutMs: BOOT_MS,
          description: `the guest to print ${word}`,
        });
        consoleStream.destroy();
      } finally {
        c.close();
      }
      const deleted = Date.now();
      await custom().deleteNamespacedCustomObject(vmiRef('vm4'));
      const failed = await waitForPhase('vm4', 'Failed', 60_000);
      expect(Date.now() - deleted).toBeGreaterThanOrEqual(4_000);
      expect(failed.status?.reason).toBe('GuestShutdownTimedOut');
      expect((await events('vm4')).map((e) => e.reason)).toContain('ShuttingDown');
      await releaseFinalizer('vm4');
    },
    BOOT_MS + 120_000,
  );

  it('reports a failing sync in Synchronized=False and a SyncFailed event, and keeps the VMI Scheduled', async () => {
    await createVM('vm5', { unmountedContainerDisk: true });
    const vmi = await eventually(
      async () => {
        const v = await getVMI('vm5');
        return condition(v, 'Synchronized')?.status === 'False' ? v : undefined;
      },
      { timeoutMs: 60_000, description: 'Synchronized=False' },
    );
    expect(vmi.status?.phase).toBe('Scheduled');
    expect(condition(vmi, 'Synchronized')).toMatchObject({
      reason: 'Synchronizing with the Domain failed.',
      message: expect.stringContaining('containerDisk image is not mounted') as unknown,
    });
    const failures = (await events('vm5')).filter((e) => e.reason === 'SyncFailed');
    expect(failures.length).toBeGreaterThan(0);
    expect(failures[0]).toMatchObject({ type: 'Warning' });
    await custom().deleteNamespacedCustomObject(vmiRef('vm5'));
    // Nothing ran, so nothing needs shutting down; the VMI leaves the handler's hands once it is final.
    await eventually(
      async () =>
        !(await readdir(join(handlerState, 'ghost-records'))).some((f) => f.startsWith(vmi.metadata!.uid!)),
      {
        timeoutMs: 60_000,
        description: 'the handler to let go of vm5',
      },
    );
    await releaseFinalizer('vm5');
  });

  it(
    `a launcher that stops answering is marked unresponsive and its VMI Failed (timeout ${UNRESPONSIVE_TIMEOUT_S} s here)`,
    async () => {
      const vm3 = await createVM('vm3');
      await waitForPhase('vm3', 'Running');
      // The launcher dies; its libvirt daemons and QEMU live on in its namespace, its socket stays but answers nobody.
      const mnt = await readlink(`/proc/${vm3.launcher.child.pid}/ns/mnt`);
      vm3.launcher.child.kill('SIGKILL');
      const failed = await waitForPhase('vm3', 'Failed', (UNRESPONSIVE_TIMEOUT_S + 60) * 1000);
      expect(failed.status?.reason).toBe('LauncherUnresponsive');
      await access(join(emptyDir(podsDir, vm3.podUid, 'sockets'), 'launcher-unresponsive'));
      // Clean up what the dead launcher left: every process of its mount namespace (its daemons and QEMU).
      for (const entry of await readdir('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        if ((await readlink(`/proc/${entry}/ns/mnt`).catch(() => '')) === mnt) {
          try {
            process.kill(Number(entry), 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
      await releaseFinalizer('vm3');
    },
    BOOT_MS + 120_000,
  );

  it('the handler exits cleanly and leaves the node unschedulable', async () => {
    expect(await handler!.stop()).toBe(0);
    handler = undefined;
    const node = await core().readNode({ name: nodeName });
    expect(node.metadata?.labels?.['kubevirt.io/schedulable']).toBe('false');
  });
});
