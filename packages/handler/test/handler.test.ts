// virt-handler against the real API server (devcluster), on a devcluster node, driving real launchers that boot the
// test guest under QEMU.
//
// Everything runs as pods on one devcluster node (dc-node-1), which the node agent runs as processes with the
// kubelet's layout under its node root:
// - virt-handler is a pod like the chart's DaemonSet pod (harness.ts: handlerPod): its own ServiceAccount with the
//   chart's RBAC, the node's /var/lib/kubelet/pods mounted at /pods through a hostPath, so it reaches each launcher's
//   sockets folder at /pods/<podUID>/volumes/kubernetes.io~empty-dir/sockets/ as on a real node (DESIGN.md §4a);
//   the kubelet's device-plugin folder, where its device plugins register with the node agent, which then
//   advertises devices.kubevirt.io/* on the Node as a kubelet does; the node's /dev read-only; hostPID as in the
//   chart. Its state dir (checkpoints) is a hostPath, so the handler pod that replaces it (the restart case) finds
//   them. A pod rather than a process from source, so the suite exercises the same mounts, identity (a projected
//   ServiceAccount token) and device-plugin registration as the DaemonSet. The test reaches it at its pod IP:
//   handler.v1 (mutual TLS) and the health port, and reads its log from the node.
// - Each launcher is the pod virt-controller renders (packages/controller/src/vmi/launcher-pod.ts, with
//   useEmulation), placed by the real scheduler on the node where the handler advertises devices.kubevirt.io/tun
//   and labels the Node schedulable, and run by the node agent from the launcher image (its own libvirt daemon,
//   the test guest's kernel from the node's image store as an image volume).
// Until virt-controller runs launcher pods end to end, a fixture plays its part as virt-controller's
// ServiceAccount: it creates the VMI's launcher pod, moves the VMI Pending → Scheduling (activePods) → Scheduled
// (nodeName, node label) once the pod's compute container runs, and at the end of each case deletes the VMI's
// pods and releases its finalizer, as the controller does for a final VMI. The test reads the containers' logs and
// exit codes from the node (log files under the node root, a watch of the node's pods) and finds QEMU and the
// launcher among the machine's processes (pods share its PID space as seen from here).
import { randomBytes } from 'node:crypto';
import { access, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type CoreV1Event } from '@kubernetes/client-node';
import { dialHandler, type HandlerConnection } from '@kubevirt-ts/proto';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '@kubevirt-ts/runtime/pki';
import { DEFAULT_CLUSTER_CONFIG, parseQuantity, type VirtualMachineInstance } from '@kubevirt-ts/schema';
import {
  devclusterNodes,
  devclusterState,
  eventually,
  kubeConfigFromEnv,
  useTestNamespace,
  waitForPod,
  type TestNode,
} from '@kubevirt-ts/devcluster/testing';
import { TEST_GUEST_IMAGE } from '@kubevirt-ts/devcluster/stack';
import { podVolumeDir, type ClusterState } from '@kubevirt-ts/devcluster';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderLauncherPod } from '../../controller/src/vmi/launcher-pod.ts';
import { buildTestGuest, type TestGuest } from '../../devcluster/src/guest/build.ts';
import {
  HANDLER_GRPC_PORT,
  HANDLER_HEALTH_PORT,
  HANDLER_STATE_DIR,
  LAUNCHER_IMAGE,
  NodePodWatch,
  PodLog,
  SERVICE_NAMESPACE,
  apply,
  handlerPod,
  installCrds,
  kubectl,
  launcherPids,
  qemuPids,
  rbacObjects,
  remove,
} from './harness.ts';

type VMI = VirtualMachineInstance;

const ns = useTestNamespace('virt-handler');
const SERVER_SECRET = 'kubevirt-virt-handler-server-certs';
const CLIENT_NAME = 'kubevirt.io:system:client:virt-handler';
const COMPUTE = 'compute';
const DAY = 24 * 3_600_000;
/** A guest boots in about 8 s under TCG; this bounds a wait semantically, with slack for a busy 2-core machine. */
const BOOT_MS = 120_000;
/** A pod to start on a devcluster node: scheduling, sandbox, the image volume, the process. */
const POD_START_MS = 120_000;
const UNRESPONSIVE_TIMEOUT_S = 10;
const VMI_FINALIZER = 'kubevirt.io/foregroundDeleteVirtualMachine';

let kc: KubeConfig;
let controllerKc: KubeConfig;
let state: ClusterState;
let guest: TestGuest;
let node: TestNode;
let nodeName: string;
/** The handler's state dir as the node root holds it (the hostPath behind --state-dir). */
let handlerState: string;
let ca: CertificateAuthority;
let clientPem: { key: string; cert: string; ca: string };
let pods: NodePodWatch;
const logs: PodLog[] = [];
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

/** A virt-handler pod on the test node, and what the test reads of it. */
interface HandlerPod {
  name: string;
  uid: string;
  ip: string;
  log: PodLog;
  /** Deletes the pod as the DaemonSet controller would on a rollout and waits until it is gone; its exit code. */
  stop(): Promise<number>;
}

let handler: HandlerPod | undefined;
let handlerGeneration = 0;

async function startHandler(): Promise<HandlerPod> {
  handlerGeneration += 1;
  const manifest = await handlerPod({
    helm: join(state.binDir, 'helm'),
    kubeconfig: state.kubeconfigs.admin,
    name: `virt-handler-${ns.name.slice(-6)}-${handlerGeneration}`,
    node: nodeName,
    certsNamespace: ns.name,
    stateHostPath: `${HANDLER_STATE_DIR}-${ns.name}`,
    unresponsiveTimeout: `${UNRESPONSIVE_TIMEOUT_S}s`,
    testLabel: ns.name,
  });
  const created = await core().createNamespacedPod({ namespace: SERVICE_NAMESPACE, body: manifest });
  const name = created.metadata!.name!;
  const uid = created.metadata!.uid!;
  const ready = await waitForPod(
    core(),
    SERVICE_NAMESPACE,
    name,
    (p) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false,
    { timeoutMs: POD_START_MS, description: 'virt-handler to be Ready' },
  );
  const log = new PodLog(`virt-handler pod ${name}`, node, ready, 'virt-handler');
  logs.push(log);
  await log.waitForLine((l) => l.msg === 'serving handler.v1 over mutual TLS');
  return {
    name,
    uid,
    ip: ready.status!.podIP!,
    log,
    async stop() {
      await core()
        .deleteNamespacedPod({ name, namespace: SERVICE_NAMESPACE })
        .catch((err: { code?: number }) => {
          if (err.code !== 404) throw err;
        });
      const code = await pods.exitCode(uid, 'virt-handler', 60_000);
      await pods.waitFor(() => pods.gone(uid) || undefined, 60_000, `pod ${name} to be gone`);
      return code;
    },
  };
}

function dial(pem = clientPem): HandlerConnection {
  return dialHandler(
    { host: handler!.ip, port: HANDLER_GRPC_PORT, tls: { ...pem, serverName: 'virt-handler' } },
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

/** The launcher pod of a VMI, as the test sees it on the node. */
interface LauncherPod {
  name: string;
  uid: string;
  log: PodLog;
  /** The compute container runs now. */
  readonly running: boolean;
  /** The exit code of the compute container, once it ended. */
  exited(): Promise<number>;
}

interface RunningVM {
  name: string;
  uid: string;
  podUid: string;
  domain: string;
  launcher: LauncherPod;
  marker: string;
}

function rfc3339(date = new Date()): string {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/** A read-modify-replace of a VMI as virt-controller, retried on conflicts. */
async function asController(name: string, what: string, change: (vmi: VMI) => void): Promise<void> {
  await eventually(
    async () => {
      const vmi = (await custom(controllerKc).getNamespacedCustomObject(vmiRef(name))) as VMI;
      change(vmi);
      await custom(controllerKc).replaceNamespacedCustomObject({ ...vmiRef(name), body: vmi });
      return true;
    },
    { timeoutMs: 30_000, description: `the controller fixture to ${what} ${name}` },
  );
}

/**
 * A VMI with its launcher pod on the test node: the VMI as a user creates it, then the VMI controller's part
 * (reference §2.1), as its ServiceAccount: the rendered launcher pod, Scheduling with activePods, and Scheduled
 * with the node once the pod's compute container runs.
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
    // A containerDisk whose image volume the (fixture) pod leaves out: the launcher cannot prepare it.
    disks.push({ name: 'rootdisk', disk: { bus: 'virtio' } });
    volumes.push({ name: 'rootdisk', containerDisk: { image: 'example.org/missing:1' } });
  }
  const manifest: VMI = {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: ns.name },
    spec: {
      terminationGracePeriodSeconds: opts.grace ?? 30,
      // The node this suite's handler runs on (the launcher pod inherits it).
      nodeSelector: { 'kubernetes.io/hostname': nodeName },
      domain: {
        cpu: { cores: 1 },
        memory: { guest: '256Mi' },
        firmware: {
          kernelBoot: {
            kernelArgs: guest.kernelArgs,
            container: { image: TEST_GUEST_IMAGE, ...guest.kernelBootPaths },
          },
        },
        devices: { disks, autoattachGraphicsDevice: opts.graphics ?? false },
      },
      volumes,
    },
  };
  const created = (await custom().createNamespacedCustomObject({ ...vmiRef(name), body: manifest })) as VMI;
  const uid = created.metadata!.uid!;

  const rendered = renderLauncherPod(created, {
    launcherImage: LAUNCHER_IMAGE,
    config: { ...DEFAULT_CLUSTER_CONFIG, useEmulation: true },
  });
  // Marked as the fixture's work, so nobody mistakes it for virt-controller's.
  rendered.metadata!.labels = { ...rendered.metadata!.labels, 'kubevirt-ts.dev/fixture': 'virt-controller' };
  if (opts.unmountedContainerDisk) {
    rendered.spec!.volumes = rendered.spec!.volumes!.filter((v) => v.name !== 'rootdisk');
    const compute = rendered.spec!.containers[0]!;
    compute.volumeMounts = compute.volumeMounts!.filter((m) => m.name !== 'rootdisk');
  }
  const pod = await core(controllerKc).createNamespacedPod({ namespace: ns.name, body: rendered });
  const podName = pod.metadata!.name!;
  const podUid = pod.metadata!.uid!;
  const pending = rfc3339();
  await asController(name, 'mark Scheduling', (vmi) => {
    vmi.metadata!.finalizers = [...(vmi.metadata!.finalizers ?? []), VMI_FINALIZER];
    vmi.status = {
      ...vmi.status,
      phase: 'Scheduling',
      activePods: { [podUid]: '' },
      launcherContainerImageVersion: LAUNCHER_IMAGE,
      phaseTransitionTimestamps: [
        { phase: 'Pending', phaseTransitionTimestamp: pending },
        { phase: 'Scheduling', phaseTransitionTimestamp: rfc3339() },
      ],
    };
  });
  // KubeVirt's isPodReady: the pod Running with its compute container started (not yet Ready: the guest is not).
  const runningPod = await waitForPod(
    core(controllerKc),
    ns.name,
    podName,
    (p) =>
      p.status?.phase === 'Running' &&
      (p.status.containerStatuses ?? []).some((c) => c.name === COMPUTE && c.state?.running !== undefined),
    { timeoutMs: POD_START_MS, description: `the launcher pod of ${name} to run` },
  );
  const podNode = runningPod.spec!.nodeName!;
  expect(podNode, 'the scheduler placed the launcher pod on the handler node').toBe(nodeName);
  await asController(name, 'mark Scheduled', (vmi) => {
    vmi.metadata!.labels = { ...vmi.metadata!.labels, 'kubevirt.io/nodeName': podNode };
    vmi.status = {
      ...vmi.status,
      phase: 'Scheduled',
      nodeName: podNode,
      activePods: { [podUid]: podNode },
      migrationTransport: 'Unix',
      phaseTransitionTimestamps: [
        ...(vmi.status?.phaseTransitionTimestamps ?? []),
        { phase: 'Scheduled', phaseTransitionTimestamp: rfc3339() },
      ],
    };
  });
  const log = new PodLog(`virt-launcher pod ${ns.name}/${podName}`, node, runningPod, COMPUTE);
  logs.push(log);
  const launcher: LauncherPod = {
    name: podName,
    uid: podUid,
    log,
    get running() {
      return pods.running(podUid, COMPUTE);
    },
    exited: () => pods.exitCode(podUid, COMPUTE),
  };
  return { name, uid, podUid, domain: `${ns.name}_${name}`, launcher, marker };
}

/**
 * The controller fixture's last step for a final (or deleted) VMI: its pods deleted (each with its own grace
 * period), and once they are gone, the finalizer released.
 */
async function releaseFinalizer(name: string): Promise<void> {
  const vmi = await getVMI(name);
  const owned = (
    await core(controllerKc).listNamespacedPod({
      namespace: ns.name,
      labelSelector: `kubevirt.io/created-by=${vmi.metadata!.uid!}`,
    })
  ).items;
  for (const p of owned) {
    await core(controllerKc)
      .deleteNamespacedPod({ name: p.metadata!.name!, namespace: ns.name })
      .catch((err: { code?: number }) => {
        if (err.code !== 404) throw err;
      });
  }
  for (const p of owned) {
    await pods.waitFor(
      () => pods.gone(p.metadata!.uid!) || undefined,
      120_000,
      `pod ${p.metadata!.name} of ${name} to be gone`,
    );
  }
  await asController(name, 'release the finalizer of', (v) => {
    v.metadata!.finalizers = (v.metadata!.finalizers ?? []).filter((f) => f !== VMI_FINALIZER);
  });
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

/** The handler's checkpoints on the node. */
async function checkpoints(): Promise<string[]> {
  return readdir(join(handlerState, 'ghost-records')).catch(() => []);
}

beforeAll(async () => {
  guest = await buildTestGuest();
  kc = kubeConfigFromEnv();
  state = await devclusterState();
  controllerKc = new KubeConfig();
  controllerKc.loadFromFile(state.kubeconfigs.services['virt-controller']!);
  await installCrds(kc, join(state.binDir, 'kubectl'));

  node = (await devclusterNodes(kc, 1))[0]!;
  nodeName = node.name;
  // Another handler on the node (the chart's DaemonSet, installed by the e2e suite) would drive the same VMIs.
  const others = await core().listPodForAllNamespaces({
    labelSelector: 'app.kubernetes.io/component=handler',
    fieldSelector: `spec.nodeName=${nodeName}`,
  });
  if (others.items.length > 0) {
    const names = others.items.map((p) => `${p.metadata?.namespace}/${p.metadata?.name}`).join(', ');
    throw new Error(
      `virt-handler pods already run on ${nodeName} (${names}); this suite runs its own handler there: ` +
        'uninstall the chart (helm uninstall kubevirt-ts -n kubevirt) or use a fresh devcluster',
    );
  }
  handlerState = join(node.paths.root, `${HANDLER_STATE_DIR}-${ns.name}`);
  pods = new NodePodWatch(kc, nodeName);
  await pods.start();

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

  handler = await startHandler();
}, 600_000);

afterAll(async () => {
  if (handler) await handler.stop().catch(() => undefined);
  // Every launcher pod left (a failed case) goes with its processes before the namespace does.
  if (pods) {
    const left =
      (
        await core()
          .listNamespacedPod({ namespace: ns.name })
          .catch(() => undefined)
      )?.items ?? [];
    for (const p of left) {
      await core()
        .deleteNamespacedPod({ name: p.metadata!.name!, namespace: ns.name, gracePeriodSeconds: 5 })
        .catch(() => undefined);
    }
    for (const p of left) {
      await pods
        .waitFor(() => pods.gone(p.metadata!.uid!) || undefined, 60_000, `pod ${p.metadata!.name} to go`)
        .catch(() => undefined);
    }
    pods.stop();
  }
  // VMIs a failed case left keep their finalizer, which would keep the namespace from going.
  if (controllerKc) {
    const left = (await custom(controllerKc)
      .listNamespacedCustomObject({
        group: 'kubevirt.io',
        version: 'v1',
        plural: 'virtualmachineinstances',
        namespace: ns.name,
      })
      .catch(() => undefined)) as { items?: VMI[] } | undefined;
    for (const vmi of left?.items ?? []) {
      if (!vmi.metadata?.finalizers?.includes(VMI_FINALIZER)) continue;
      await asController(vmi.metadata.name!, 'release the finalizer of', (v) => {
        v.metadata!.finalizers = (v.metadata!.finalizers ?? []).filter((f) => f !== VMI_FINALIZER);
      }).catch(() => undefined);
    }
  }
  for (const log of logs) log.stop();
  for (const obj of clusterObjects.reverse()) await remove(kc, obj);
  if (handlerState) await rm(handlerState, { recursive: true, force: true });
}, 180_000);

describe('virt-handler with a real launcher', () => {
  let vm: RunningVM;

  it('keeps the node heartbeat and advertises devices.kubevirt.io resources through the node agent', async () => {
    let seen: unknown;
    const nodeObject = await eventually(
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
    expect(nodeObject.metadata?.annotations?.['kubevirt.io/heartbeat']).toMatch(
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/,
    );
    expect(nodeObject.metadata?.labels?.['kubevirt-ts.dev/kvm-usable']).toMatch(/^(true|false)$/);
    // The API server stores quantities canonically (1000 reads back as 1k).
    for (const r of ['kvm', 'tun', 'vhost-net']) {
      expect(parseQuantity(nodeObject.status?.capacity?.[`devices.kubevirt.io/${r}`])).toBe(1000);
    }
    // A slot is allocatable while its device node exists on this machine (/dev/net/tun always does here).
    expect(parseQuantity(nodeObject.status?.allocatable?.['devices.kubevirt.io/tun'])).toBe(1000);
    const vhost = await access('/dev/vhost-net').then(
      () => 1000,
      () => 0,
    );
    expect(parseQuantity(nodeObject.status?.allocatable?.['devices.kubevirt.io/vhost-net'])).toBe(vhost);
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
      const health = `http://${handler!.ip}:${HANDLER_HEALTH_PORT}`;
      expect((await fetch(`${health}/readyz`)).status).toBe(200);
      const metrics = await (await fetch(`${health}/metrics`)).text();
      expect(metrics).toMatch(
        new RegExp(`kubevirt_vmi_phase_count\\{node="${nodeName}",phase="Running"\\} 1`),
      );
      expect(metrics).toMatch(
        /kubevirt_handler_vmi_sync_duration_seconds_count\{action="sync",result="success"\} [1-9]/,
      );
      // The handler reached the launcher pod's sockets folder through its /pods mount of the node's kubelet pods
      // folder, where that path is short enough for unix sockets (no link in its state dir was needed), and
      // serves its notify socket there.
      const sockets = await readdir(podVolumeDir(node.paths, vm.podUid, 'empty-dir', 'sockets'));
      expect(sockets).toEqual(expect.arrayContaining(['launcher-sock', 'notify-sock']));
      await expect(access(join(handlerState, 's', vm.podUid))).rejects.toThrow();
      expect(await checkpoints()).toEqual([`${vm.uid}.json`]);
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
    const launcherBefore = await launcherPids(vm.uid);
    expect(launcherBefore).toHaveLength(1);
    const before = await getVMI('vm1');
    // A rollout: the DaemonSet's pod is deleted and a new one takes its place on the node.
    expect(await handler!.stop()).toBe(0);
    handler = undefined;
    const stopped = await core().readNode({ name: nodeName });
    expect(stopped.metadata?.labels?.['kubevirt.io/schedulable']).toBe('false');

    handler = await startHandler();
    await handler.log.waitForLine((l) => l.msg === 'checkpoints loaded' && l.launchers === 1);
    await handler.log.waitForLine((l) => l.msg === 'connected to the launcher' && l.name === 'vm1', 30_000);
    // Give it time to act on what it found: it must find nothing to change.
    await new Promise((r) => setTimeout(r, 5_000));
    const after = await getVMI('vm1');
    expect(after.status).toEqual(before.status);
    expect(after.metadata?.resourceVersion).toBe(before.metadata?.resourceVersion);
    expect(await qemuPids(vm.domain)).toEqual(qemuBefore);
    expect(await launcherPids(vm.uid)).toEqual(launcherBefore);
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
  }, 180_000);

  it('deleting the VMI shuts the guest down gracefully: Succeeded, domain deleted, launcher gone', async () => {
    await custom().deleteNamespacedCustomObject(vmiRef('vm1'));
    const vmi = await waitForPhase('vm1', 'Succeeded', 60_000);
    expect(vmi.status?.reason).toBeUndefined();
    expect(condition(vmi, 'Ready')).toMatchObject({ status: 'False' });
    expect(await vm.launcher.exited()).toBe(0);
    expect(vm.launcher.running).toBe(false);
    expect(await qemuPids(vm.domain)).toEqual([]);
    const byReason = new Map((await events('vm1')).map((e) => [e.reason, e]));
    expect(byReason.get('ShuttingDown')?.message).toBe('Signaled Graceful Shutdown');
    expect(byReason.get('Stopped')).toMatchObject({
      type: 'Normal',
      message: 'The VirtualMachineInstance was shut down.',
    });
    // The launcher saw the guest power itself off, not a kill.
    await vm.launcher.log.refresh();
    expect(vm.launcher.log.lines.length, vm.launcher.log.describe()).toBeGreaterThan(0);
    expect(
      vm.launcher.log.lines.some((l) => l.msg === 'destroying the domain'),
      'the launcher destroyed the domain instead of letting it power off',
    ).toBe(false);
    await eventually(async () => (await checkpoints()).length === 0, {
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
      await vm2.launcher.exited();
      expect(vm2.launcher.running).toBe(false);
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
      // The node agent stops the pod's containers with SIGTERM, as the kubelet does for a deleted or evicted pod.
      await core().deleteNamespacedPod({ name: vm6.launcher.name, namespace: ns.name });
      const vmi = await waitForPhase('vm6', 'Succeeded', 60_000);
      expect(vmi.status?.reason).toBeUndefined();
      expect(await vm6.launcher.exited()).toBe(0);
      expect(await qemuPids(vm6.domain)).toEqual([]);
      await eventually(async () => !(await checkpoints()).includes(`${vm6.uid}.json`), {
        timeoutMs: 30_000,
        description: 'the handler to let go of vm6',
      });
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
    await eventually(async () => !(await checkpoints()).some((f) => f.startsWith(vmi.metadata!.uid!)), {
      timeoutMs: 60_000,
      description: 'the handler to let go of vm5',
    });
    await releaseFinalizer('vm5');
  });

  it(
    `a launcher that stops answering is marked unresponsive and its VMI Failed (timeout ${UNRESPONSIVE_TIMEOUT_S} s here)`,
    async () => {
      const vm3 = await createVM('vm3');
      await waitForPhase('vm3', 'Running');
      // The launcher process dies (its container and everything in it with it; the pod is Failed and keeps its
      // folders until it is deleted): its socket stays in the sockets folder but answers nobody.
      const [pid] = await launcherPids(vm3.uid);
      expect(pid).toBeDefined();
      process.kill(pid!, 'SIGKILL');
      const failed = await waitForPhase('vm3', 'Failed', (UNRESPONSIVE_TIMEOUT_S + 60) * 1000);
      expect(failed.status?.reason).toBe('LauncherUnresponsive');
      await access(
        join(podVolumeDir(node.paths, vm3.podUid, 'empty-dir', 'sockets'), 'launcher-unresponsive'),
      );
      expect(await vm3.launcher.exited()).not.toBe(0);
      await releaseFinalizer('vm3');
    },
    BOOT_MS + 120_000,
  );

  it('the handler exits cleanly and leaves the node unschedulable', async () => {
    expect(await handler!.stop()).toBe(0);
    handler = undefined;
    const stopped = await core().readNode({ name: nodeName });
    expect(stopped.metadata?.labels?.['kubevirt.io/schedulable']).toBe('false');
  });
});
