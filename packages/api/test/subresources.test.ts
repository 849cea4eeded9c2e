// The subresources.kubevirt.io API through the real API server (devcluster): virt-api and virt-controller run as
// processes from source under their own service accounts with least RBAC, the aggregator proxies to virt-api, and
// virtctl (run as users run it), kubectl and a plain HTTP/websocket client call it. The suite shows: the API in
// discovery; start/stop/restart changing the VM object (run strategy, state change requests, the VMI's grace
// period through virt-api's own admission); RBAC deciding (a `view` user can read but not stop); console, VNC,
// pause and guest info reaching a virt-handler over mutual TLS, also after the client certificate is rotated.
//
// The last describe also runs virt-controller's VM and VMI controllers (in-process, packages/controller) to show
// the VMI appear, be replaced and go as start, restart and stop ask.
//
// The handler side is a handler.v1 server from packages/proto (serveHandler) with the certificate virt-controller
// issued for virt-handler, answering console/VNC by echoing bytes (VNC after an RFB greeting) and recording
// commands: a protocol peer standing in for virt-handler + launcher + guest, registered as the handler pod of a
// node the test also stands in for (it writes what a kubelet would: the pod's IP and Running phase). The same
// path against the real handler with a booted guest belongs to the e2e suite.
import { spawn } from 'node:child_process';
import { execFile } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import https from 'node:https';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ApiregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { expose, type ClusterState } from '@kubevirt-ts/devcluster';
import {
  devclusterState,
  eventually,
  kubeRequest,
  serviceAccountKubeconfig,
  useTestNamespace,
} from '@kubevirt-ts/devcluster/testing';
import { serveHandler, type RunningServer } from '@kubevirt-ts/proto';
import { Controllers } from '@kubevirt-ts/controller';
import { materialFromSecret, mergePatchOptions, silentLogger } from '@kubevirt-ts/runtime';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { parseAllDocuments } from 'yaml';
import {
  apply,
  installCrds,
  rbacObjects,
  remove,
  startService,
  SERVICE_NAMESPACE,
  webhookConfigurations,
  type ServiceProcess,
} from './harness.ts';

const execFileAsync = promisify(execFile);
const ns = useTestNamespace('subresources');
const API_SERVICE = 'v1.subresources.kubevirt.io';
const SECRETS = {
  ca: 'kubevirt-ca',
  api: 'kubevirt-virt-api-certs',
  handlerServer: 'kubevirt-virt-handler-server-certs',
  handlerClient: 'kubevirt-virt-handler-certs',
};
const FORCE_ROTATION = 'kubevirt-ts.dev/force-rotation';
const VIRTCTL = fileURLToPath(new URL('../../virtctl/src/main.ts', import.meta.url));
const CHART = fileURLToPath(new URL('../../../charts/kubevirt-ts', import.meta.url));
const group = { group: 'kubevirt.io', version: 'v1' };

let kc: KubeConfig;
let state: ClusterState;
let tmp: string;
let controller: ServiceProcess | undefined;
let api: ServiceProcess | undefined;
let apiPort: number;
let handler: RunningServer | undefined;
let nodeName: string;
const cleanup: KubernetesObject[] = [];
const kubeconfigs: Record<'admin' | 'viewer' | 'editor', string> = { admin: '', viewer: '', editor: '' };
/** What the stand-in handler saw: commands and streams, with the client certificate's serial. */
const handlerCalls: { rpc: string; namespace: string; name: string; uid: string; clientSerial?: string }[] =
  [];

const custom = () => kc.makeApiClient(CustomObjectsApi);
const core = () => kc.makeApiClient(CoreV1Api);

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * virtctl as a user runs it: node with the source condition, its own process, a kubeconfig; `input`, when given,
 * is written to its stdin, which is then closed.
 */
function virtctl(args: string[], as: keyof typeof kubeconfigs = 'admin', input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      ['--conditions=@kubevirt-ts/source', VIRTCTL, ...args, '-n', ns.name, '--kubeconfig', kubeconfigs[as]],
      {
        stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
        env: { ...process.env, KUBECONFIG: '' },
      },
    );
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('exit', (code) => resolve({ code: code ?? -1, stdout, stderr }));
    if (input !== undefined) child.stdin?.end(input);
  });
}

async function kubectl(args: string[], as: keyof typeof kubeconfigs = 'admin'): Promise<Run> {
  try {
    const { stdout, stderr } = await execFileAsync(
      path.join(state.binDir, 'kubectl'),
      [...args, '--kubeconfig', kubeconfigs[as]],
      { timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

const vmiSpec = () => ({
  domain: { memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
  volumes: [{ name: 'root', containerDisk: { image: 'registry.kubevirt-ts.dev/test-guest:latest' } }],
});

async function createVM(name: string, runStrategy: string): Promise<VirtualMachine> {
  return (await custom().createNamespacedCustomObject({
    ...group,
    namespace: ns.name,
    plural: 'virtualmachines',
    body: {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name },
      spec: { runStrategy, template: { spec: vmiSpec() } },
    },
  })) as VirtualMachine;
}

async function readVM(name: string): Promise<VirtualMachine> {
  return (await custom().getNamespacedCustomObject({
    ...group,
    namespace: ns.name,
    plural: 'virtualmachines',
    name,
  })) as VirtualMachine;
}

async function readVMI(name: string): Promise<VirtualMachineInstance> {
  return (await custom().getNamespacedCustomObject({
    ...group,
    namespace: ns.name,
    plural: 'virtualmachineinstances',
    name,
  })) as VirtualMachineInstance;
}

/**
 * A VMI in the state virt-handler reports once its guest runs on our stand-in node: created by the user, its
 * status written with virt-handler's identity (our webhook reverts anyone else's status edits).
 */
async function runningVMI(
  name: string,
  conditions: { type: string; status: string }[] = [],
  extra: { spec?: Record<string, unknown>; status?: Record<string, unknown> } = {},
) {
  await custom().createNamespacedCustomObject({
    ...group,
    namespace: ns.name,
    plural: 'virtualmachineinstances',
    body: {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name },
      spec: extra.spec ?? vmiSpec(),
    },
  });
  const asHandler = new KubeConfig();
  asHandler.loadFromFile(state.kubeconfigs.services['virt-handler'] ?? '');
  await asHandler.makeApiClient(CustomObjectsApi).patchNamespacedCustomObject(
    {
      ...group,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      name,
      body: { status: { phase: 'Running', nodeName, conditions, ...extra.status } },
    },
    mergePatchOptions(),
  );
  return eventually(
    async () => {
      const vmi = await readVMI(name);
      return vmi.status?.phase === 'Running' ? vmi : undefined;
    },
    { timeoutMs: 30_000, description: `VMI ${name} to be Running` },
  );
}

/** A kubeconfig for a ServiceAccount of the test namespace, with a token from the TokenRequest API. */
function userKubeconfig(account: string): Promise<string> {
  return serviceAccountKubeconfig(kc, ns.name, account, path.join(tmp, `${account}.kubeconfig`));
}

async function readSecretMaterial(name: string) {
  return eventually(
    async () => {
      try {
        return materialFromSecret(await core().readNamespacedSecret({ name, namespace: ns.name }));
      } catch {
        return undefined;
      }
    },
    { timeoutMs: 120_000, description: `virt-controller to issue Secret ${name}` },
  );
}

/** The chart's user roles (kubevirt.io:admin/edit/view), rendered by helm, aggregated into admin/edit/view. */
async function applyChartUserRoles(): Promise<void> {
  const { stdout } = await execFileAsync(
    path.join(state.binDir, 'helm'),
    [
      'template',
      'kubevirt-ts',
      CHART,
      '--namespace',
      SERVICE_NAMESPACE,
      '--show-only',
      'templates/user-roles.yaml',
    ],
    { timeout: 60_000 },
  );
  const client = KubernetesObjectApi.makeApiClient(kc);
  for (const doc of parseAllDocuments(stdout)) {
    const obj = doc.toJS() as KubernetesObject | null;
    if (obj === null) continue;
    const existed = await client.read(obj as KubernetesObject & { metadata: { name: string } }).then(
      () => true,
      () => false,
    );
    await apply(kc, obj);
    // A chart installed by someone else keeps its roles; only what this suite created is removed afterwards.
    if (!existed) cleanup.push(obj);
  }
}

beforeAll(async () => {
  kc = ns.kc;
  state = await devclusterState();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'virt-api-subresources-'));
  kubeconfigs.admin = process.env.KUBECONFIG ?? state.kubeconfigs.admin;
  nodeName = `${ns.name}-node`;
  const mutating = `test-virt-api-mutator-${ns.name}`;
  const validating = `test-virt-api-validator-${ns.name}`;

  await installCrds(kc);
  // The certificate loop runs under an account of this namespace: devcluster's virt-controller account may hold
  // the chart's cluster-wide rights (other suites grant them), and its VM controllers would then act on this suite's
  // VMs while it checks what the API alone writes. The last describe runs the VM controllers on purpose.
  const certificateKubeconfig = await userKubeconfig('certificates');
  const rbac = rbacObjects({
    namespace: ns.name,
    secrets: Object.values(SECRETS),
    mutating,
    validating,
    apiService: API_SERVICE,
    handlerClientSecret: SECRETS.handlerClient,
    certificateAccount: { name: 'certificates', namespace: ns.name },
  });
  // The stand-in for virt-handler writes VMI status with virt-handler's identity.
  rbac.push(
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'Role',
      metadata: { name: 'test-virt-handler', namespace: ns.name },
      rules: [
        { apiGroups: ['kubevirt.io'], resources: ['virtualmachineinstances'], verbs: ['get', 'patch'] },
      ],
    } as KubernetesObject,
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: 'test-virt-handler', namespace: ns.name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'test-virt-handler' },
      subjects: [{ kind: 'ServiceAccount', name: 'virt-handler', namespace: SERVICE_NAMESPACE }],
    } as KubernetesObject,
  );
  for (const obj of rbac) await apply(kc, obj);
  cleanup.push(
    ...rbac.filter((o) => o.kind?.startsWith('Cluster') || o.metadata?.namespace === 'kube-system'),
  );
  const hooks = webhookConfigurations(ns.name, mutating, validating);
  for (const obj of hooks) await apply(kc, obj);
  cleanup.push(...hooks);
  await applyChartUserRoles();

  controller = startService('virt-controller', [
    `--kubeconfig=${certificateKubeconfig}`,
    `--namespace=${ns.name}`,
    '--pod-name=it-controller',
    '--health-port=0',
    '--health-bind-address=127.0.0.1',
    `--mutating-webhook-configurations=${mutating}`,
    `--validating-webhook-configurations=${validating}`,
    `--api-services=${API_SERVICE}`,
  ]);
  api = startService('virt-api', [
    `--kubeconfig=${state.kubeconfigs.services['virt-api']}`,
    `--namespace=${ns.name}`,
    '--port=0',
    '--health-port=0',
    '--health-bind-address=127.0.0.1',
    `--privileged-service-accounts=${['virt-controller', 'virt-handler', 'virt-api'].map((s) => `${SERVICE_NAMESPACE}:${s}`).join(',')}`,
  ]);
  const listening = await api.waitForLine(
    (l) => String(l.msg).startsWith('serving admission webhooks'),
    120_000,
  );
  apiPort = listening.port as number;
  await expose(kc, { name: 'virt-api', namespace: ns.name, port: 443, targetPort: apiPort });
  const apiService = {
    apiVersion: 'apiregistration.k8s.io/v1',
    kind: 'APIService',
    metadata: { name: API_SERVICE },
    spec: {
      group: 'subresources.kubevirt.io',
      version: 'v1',
      groupPriorityMinimum: 1000,
      versionPriority: 15,
      service: { name: 'virt-api', namespace: ns.name, port: 443 },
    },
  };
  await apply(kc, apiService);
  cleanup.push(apiService);
  const registration = kc.makeApiClient(ApiregistrationV1Api);
  await eventually(
    async () =>
      (await registration.readAPIService({ name: API_SERVICE })).status?.conditions?.some(
        (c) => c.type === 'Available' && c.status === 'True',
      ) ?? false,
    { timeoutMs: 120_000, description: `APIService ${API_SERVICE} to be Available` },
  );
  // Admission answers once the CA bundle is in the webhooks.
  await eventually(
    async () => {
      await custom().createNamespacedCustomObject({
        ...group,
        namespace: ns.name,
        plural: 'virtualmachines',
        body: {
          apiVersion: 'kubevirt.io/v1',
          kind: 'VirtualMachine',
          metadata: { name: 'probe' },
          spec: { runStrategy: 'Halted', template: { spec: vmiSpec() } },
        },
        dryRun: 'All',
      });
      return true;
    },
    { timeoutMs: 120_000, description: 'the webhooks to answer through the API server' },
  );

  // Users: one bound to the aggregated `view` role, one to `edit`, in this namespace only.
  kubeconfigs.viewer = await userKubeconfig('viewer');
  kubeconfigs.editor = await userKubeconfig('editor');
  for (const [account, role] of [
    ['viewer', 'view'],
    ['editor', 'edit'],
  ] as const) {
    await apply(kc, {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: `${account}-${role}`, namespace: ns.name },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
      subjects: [{ kind: 'ServiceAccount', name: account, namespace: ns.name }],
    } as KubernetesObject);
  }
  // kube-controller-manager folds kubevirt.io:view into view (and edit) asynchronously.
  await eventually(
    async () =>
      (await kubectl(['auth', 'can-i', 'get', 'virtualmachines.kubevirt.io', '-n', ns.name], 'viewer'))
        .code === 0,
    { timeoutMs: 60_000, description: 'the kubevirt.io:view rules to be aggregated into view' },
  );

  // The stand-in for virt-handler: handler.v1 with the certificate virt-controller issued for it.
  const serving = await readSecretMaterial(SECRETS.handlerServer);
  await readSecretMaterial(SECRETS.handlerClient);
  handler = await serveHandler(
    { host: '0.0.0.0', port: 0, tls: { key: serving.key, cert: serving.cert, ca: serving.ca ?? '' } },
    {
      pause: (ref, call) => {
        handlerCalls.push({
          rpc: 'Pause',
          ...ref,
          clientSerial: call.getAuthContext().sslPeerCertificate?.serialNumber,
        });
        return { success: true, message: '' };
      },
      unpause: (ref) => {
        handlerCalls.push({ rpc: 'Unpause', ...ref });
        return { success: true, message: '' };
      },
      softReboot: (ref) => {
        handlerCalls.push({ rpc: 'SoftReboot', ...ref });
        return { success: true, message: '' };
      },
      guestOSInfo: (ref) => {
        handlerCalls.push({ rpc: 'GuestOSInfo', ...ref });
        return {
          success: true,
          message: '',
          guestOsInfoJson: Buffer.from(
            JSON.stringify({ guestAgentVersion: '7.2', os: { name: 'Debian GNU/Linux' } }),
          ),
        };
      },
      console: (ref, stream, call) => {
        handlerCalls.push({
          rpc: 'Console',
          ...ref,
          clientSerial: call.getAuthContext().sslPeerCertificate?.serialNumber,
        });
        stream.pipe(stream);
      },
      vnc: (ref, stream) => {
        handlerCalls.push({ rpc: 'VNC', ...ref });
        stream.write(Buffer.from('RFB 003.008\n'));
        stream.pipe(stream);
      },
    },
    { shutdownGraceMs: 1_000 },
  );
  // The node and the handler pod on it, as the node's kubelet would report them.
  const node = {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: { name: nodeName, labels: { 'kubevirt-ts.dev/test': ns.name } },
  };
  await apply(kc, node as KubernetesObject);
  cleanup.push(node);
  const pod: V1Pod = {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name: 'virt-handler-test', namespace: ns.name, labels: { 'kubevirt.io': 'virt-handler' } },
    spec: {
      nodeName,
      tolerations: [{ operator: 'Exists' }],
      containers: [
        {
          name: 'virt-handler',
          image: 'registry.kubevirt-ts.dev/virt-handler:test',
          ports: [{ name: 'grpc', containerPort: handler.port ?? 0 }],
        },
      ],
    },
  };
  await core().createNamespacedPod({ namespace: ns.name, body: pod });
  await core().patchNamespacedPodStatus(
    {
      name: 'virt-handler-test',
      namespace: ns.name,
      body: {
        status: {
          phase: 'Running',
          podIP: state.network.controlPlaneAddress,
          podIPs: [{ ip: state.network.controlPlaneAddress }],
          conditions: [{ type: 'Ready', status: 'True' }],
        },
      },
    },
    mergePatchOptions(),
  );
}, 400_000);

afterAll(async () => {
  try {
    // VMIs carry our finalizer and no VMI controller runs to drop it.
    const list = (await custom().listNamespacedCustomObject({
      ...group,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
    })) as { items: { metadata: { name: string } }[] };
    for (const item of list.items) {
      await custom().patchNamespacedCustomObject(
        {
          ...group,
          namespace: ns.name,
          plural: 'virtualmachineinstances',
          name: item.metadata.name,
          body: { metadata: { finalizers: null } },
        },
        mergePatchOptions(),
      );
    }
  } finally {
    for (const obj of cleanup.reverse()) await remove(kc, obj);
    await Promise.all([api?.stop(), controller?.stop(), handler?.shutdown(1_000)]);
    rmSync(tmp, { recursive: true, force: true });
  }
}, 120_000);

describe('the aggregated API', () => {
  it('appears in kubectl api-versions and api-resources, and answers virtctl version', async () => {
    const versions = await kubectl(['api-versions']);
    expect(versions.stdout.split('\n')).toContain('subresources.kubevirt.io/v1');
    // kubectl lists no subresources (names with a slash); the group's one plain resource is expand-vm-spec.
    const resources = await kubectl(['api-resources', '--api-group=subresources.kubevirt.io', '-o', 'name']);
    expect(resources.stderr).toBe('');
    expect(resources.stdout.split('\n')).toContain('expand-vm-spec.subresources.kubevirt.io');
    const version = await virtctl(['version']);
    expect(version).toMatchObject({ code: 0, stderr: '' });
    expect(version.stdout).toMatch(
      /^Client Version: v\d+\.\d+\.\d+\nServer Version: v\d+\.\d+\.\d+ \(linux\//,
    );
  });
});

describe('start, stop and restart change the VirtualMachine', () => {
  it('start and stop a Halted VM flip its run strategy; a second of each is refused with the reason', async () => {
    await createVM('flip', 'Halted');
    expect(await virtctl(['start', 'flip'])).toEqual({
      code: 0,
      stdout: 'VM flip was scheduled to start\n',
      stderr: '',
    });
    expect((await readVM('flip')).spec.runStrategy).toBe('Always');
    const again = await virtctl(['start', 'flip']);
    expect(again.code).toBe(1);
    expect(again.stderr).toBe(
      `virtctl: cannot start VirtualMachine ${ns.name}/flip: Always does not support manual start requests (the VM controller keeps it running)\n`,
    );
    expect(await virtctl(['stop', 'flip'])).toMatchObject({
      code: 0,
      stdout: 'VM flip was scheduled to stop\n',
    });
    expect((await readVM('flip')).spec.runStrategy).toBe('Halted');
    const stopped = await virtctl(['stop', 'flip']);
    expect(stopped).toMatchObject({
      code: 1,
      stderr: `virtctl: cannot stop VirtualMachine ${ns.name}/flip: VM is not running\n`,
    });
  });

  it('a plain HTTP client through the API server: start of a Manual VM adds a Start request to a VM without status', async () => {
    await createVM('manual', 'Manual');
    expect((await readVM('manual')).status).toBeUndefined();
    const path = `/apis/subresources.kubevirt.io/v1/namespaces/${ns.name}/virtualmachines/manual/start`;
    const started = await kubeRequest(kc, path, { method: 'PUT', body: {} });
    expect(started.status).toBe(202);
    expect((await readVM('manual')).status?.stateChangeRequests).toEqual([{ action: 'Start' }]);
    const pending = await kubeRequest(kc, path, { method: 'PUT', body: { dryRun: ['All'] } });
    expect(pending.status).toBe(409);
    expect(JSON.parse(pending.body)).toMatchObject({
      kind: 'Status',
      reason: 'Conflict',
      details: { name: 'manual', kind: 'virtualmachine' },
    });
    expect((JSON.parse(pending.body) as { message: string }).message).toContain(
      'stop/start already underway (pending: Start)',
    );
  });

  it('a paused start of a Halted VM asks the controller, with paused=true', async () => {
    await createVM('paused', 'Halted');
    expect((await virtctl(['start', 'paused', '--paused'])).code).toBe(0);
    const vm = await readVM('paused');
    expect(vm.spec.runStrategy).toBe('Halted');
    expect(vm.status?.stateChangeRequests).toEqual([{ action: 'Start', data: { paused: 'true' } }]);
  });

  it('a forced stop of a Manual VM shortens its VMI’s grace period (admitted for virt-api) and asks to stop that VMI', async () => {
    await createVM('manual-run', 'Manual');
    const vmi = await runningVMI('manual-run');
    const stopped = await virtctl(['stop', 'manual-run', '--grace-period=0', '--force']);
    expect(stopped).toMatchObject({ code: 0, stderr: '' });
    expect((await readVMI('manual-run')).spec.terminationGracePeriodSeconds).toBe(0);
    const vm = await readVM('manual-run');
    expect(vm.spec.runStrategy).toBe('Manual');
    expect(vm.status?.stateChangeRequests).toEqual([{ action: 'Stop', uid: vmi.metadata?.uid }]);
  });

  it('restart of a running Always VM asks to stop its VMI and start again; a dry run changes nothing', async () => {
    await createVM('always-run', 'Always');
    const vmi = await runningVMI('always-run');
    const dry = await virtctl(['restart', 'always-run', '--dry-run']);
    expect(dry).toMatchObject({
      code: 0,
      stdout: 'Dry Run execution\nVM always-run was scheduled to restart\n',
    });
    expect((await readVM('always-run')).status?.stateChangeRequests).toBeUndefined();
    expect((await virtctl(['restart', 'always-run'])).code).toBe(0);
    expect((await readVM('always-run')).status?.stateChangeRequests).toEqual([
      { action: 'Stop', uid: vmi.metadata?.uid },
      { action: 'Start' },
    ]);
  });

  it('says so when the VM does not exist', async () => {
    expect(await virtctl(['stop', 'nope'])).toMatchObject({
      code: 1,
      stderr: `virtctl: VirtualMachine "nope" not found in namespace "${ns.name}"\n`,
    });
  });
});

describe('RBAC decides', () => {
  it('a user bound to view reads the VM but gets a clear forbidden from virtctl stop; edit may stop it', async () => {
    await createVM('guarded', 'Always');
    const read = await kubectl(['get', 'vm', 'guarded', '-n', ns.name, '-o', 'name'], 'viewer');
    expect(read).toMatchObject({ code: 0, stdout: 'virtualmachine.kubevirt.io/guarded\n' });
    const denied = await virtctl(['stop', 'guarded'], 'viewer');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(
      `virtctl: forbidden: you may not stop VirtualMachine ${ns.name}/guarded: this needs verb "update" on ` +
        `"virtualmachines/stop" in API group "subresources.kubevirt.io" in namespace "${ns.name}"`,
    );
    expect(denied.stderr).toContain(
      `User "system:serviceaccount:${ns.name}:viewer" cannot update resource "virtualmachines/stop"`,
    );
    expect((await readVM('guarded')).spec.runStrategy).toBe('Always');
    expect(await virtctl(['stop', 'guarded'], 'editor')).toMatchObject({ code: 0 });
    expect((await readVM('guarded')).spec.runStrategy).toBe('Halted');
  });

  it('virt-api asks RBAC itself: a front-proxy request naming the viewer is refused by its SubjectAccessReview', async () => {
    await createVM('direct', 'Always');
    const pki = path.join(state.stateDir, 'pki');
    const ca = (await readSecretMaterial(SECRETS.ca)).cert;
    const call = (user: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = https.request(
          {
            host: state.network.controlPlaneAddress,
            port: apiPort,
            method: 'PUT',
            path: `/apis/subresources.kubevirt.io/v1/namespaces/${ns.name}/virtualmachines/direct/stop`,
            ca,
            servername: `virt-api.${ns.name}.svc`,
            cert: readFileSync(path.join(pki, 'front-proxy-client.crt')),
            key: readFileSync(path.join(pki, 'front-proxy-client.key')),
            headers: {
              'X-Remote-User': `system:serviceaccount:${ns.name}:${user}`,
              'X-Remote-Group': [
                'system:serviceaccounts',
                `system:serviceaccounts:${ns.name}`,
                'system:authenticated',
              ],
            },
            agent: false,
          },
          (res) => {
            let body = '';
            res.on('data', (c: Buffer) => (body += c.toString()));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          },
        );
        req.on('error', reject);
        req.end();
      });
    const denied = await call('viewer');
    expect(denied.status).toBe(403);
    expect((JSON.parse(denied.body) as { message: string }).message).toContain(
      `virtualmachines.subresources.kubevirt.io "direct" is forbidden: User "system:serviceaccount:${ns.name}:viewer" ` +
        `cannot update resource "virtualmachines/stop" in API group "subresources.kubevirt.io" in the namespace "${ns.name}"`,
    );
    expect((await readVM('direct')).spec.runStrategy).toBe('Always');
    expect((await call('editor')).status).toBe(202);
    expect((await readVM('direct')).spec.runStrategy).toBe('Halted');
  });
});

function untilOutput(stream: NodeJS.ReadableStream, pattern: RegExp, timeoutMs = 30_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(
      () => reject(new Error(`no ${String(pattern)} within ${timeoutMs} ms; got ${JSON.stringify(seen)}`)),
      timeoutMs,
    );
    const onData = (c: Buffer) => {
      seen += c.toString();
      if (pattern.test(seen)) {
        clearTimeout(timer);
        stream.off('data', onData);
        resolve(seen);
      }
    };
    stream.on('data', onData);
  });
}

describe('console, VNC, pause and guest info through virt-handler', () => {
  let vmi: VirtualMachineInstance;

  beforeAll(async () => {
    vmi = await runningVMI('guest', [{ type: 'AgentConnected', status: 'True' }]);
  });

  /** virtctl console with a pipe: the input reaches the handler's stream, what it sends back is printed. */
  async function consoleRoundTrip(line: string): Promise<Run> {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@kubevirt-ts/source',
        VIRTCTL,
        'console',
        'guest',
        '-n',
        ns.name,
        '--kubeconfig',
        kubeconfigs.admin,
      ],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    child.stdin.write(`${line}\n`);
    const stdout = await untilOutput(child.stdout, new RegExp(line));
    child.stdin.end();
    return { code: await exited, stdout, stderr };
  }

  it('virtctl console carries input to the VMI’s console and prints what comes back', async () => {
    const run = await consoleRoundTrip('hello-guest');
    expect(run).toEqual({ code: 0, stdout: 'hello-guest\n', stderr: '' });
    expect(handlerCalls.filter((c) => c.rpc === 'Console').at(-1)).toMatchObject({
      namespace: ns.name,
      name: 'guest',
      uid: vmi.metadata?.uid,
    });
  });

  it('a websocket client through the API server speaks plain.kubevirt.io to the console', async () => {
    const opts: https.RequestOptions = {};
    await kc.applyToHTTPSOptions(opts);
    const url = new URL(kc.getCurrentCluster()?.server ?? '');
    url.protocol = 'wss:';
    url.pathname = `/apis/subresources.kubevirt.io/v1/namespaces/${ns.name}/virtualmachineinstances/guest/console`;
    const ws = new WebSocket(url, ['plain.kubevirt.io'], opts);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    expect(ws.protocol).toBe('plain.kubevirt.io');
    const echoed = new Promise<string>((resolve) => ws.once('message', (d: Buffer) => resolve(d.toString())));
    ws.send(Buffer.from('ping\n'));
    expect(await echoed).toBe('ping\n');
    ws.close();
  });

  it('virtctl vnc --proxy-only prints a port that answers with the RFB handshake', async () => {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@kubevirt-ts/source',
        VIRTCTL,
        'vnc',
        'guest',
        '--proxy-only',
        '-n',
        ns.name,
        '--kubeconfig',
        kubeconfigs.admin,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
    );
    const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
    const line = await untilOutput(child.stdout, /\}\n/);
    const { port } = JSON.parse(line) as { port: number };
    const socket = net.connect(port, '127.0.0.1');
    const greeting = await untilOutput(socket, /\n/);
    expect(greeting).toBe('RFB 003.008\n');
    socket.write('RFB 003.008\n');
    expect(await untilOutput(socket, /RFB 003\.008\n/)).toBe('RFB 003.008\n');
    socket.end();
    expect(await exited).toBe(0);
  });

  it('pause, unpause, softreboot and guestosinfo reach the handler with the VMI’s UID', async () => {
    handlerCalls.length = 0;
    expect(await virtctl(['pause', 'vmi', 'guest'])).toMatchObject({
      code: 0,
      stdout: 'VMI guest was scheduled to pause\n',
    });
    expect(await virtctl(['softreboot', 'guest'])).toMatchObject({ code: 0 });
    const info = await virtctl(['guestosinfo', 'guest']);
    expect(info.code).toBe(0);
    expect(JSON.parse(info.stdout)).toEqual({ guestAgentVersion: '7.2', os: { name: 'Debian GNU/Linux' } });
    expect(handlerCalls.map((c) => [c.rpc, c.uid])).toEqual([
      ['Pause', vmi.metadata?.uid],
      ['SoftReboot', vmi.metadata?.uid],
      ['GuestOSInfo', vmi.metadata?.uid],
    ]);
    // Not paused (the stand-in reports no Paused condition): unpause is refused before the handler is called.
    const unpause = await virtctl(['unpause', 'vmi', 'guest']);
    expect(unpause).toMatchObject({
      code: 1,
      stderr: `virtctl: cannot unpause VirtualMachineInstance ${ns.name}/guest: VMI is not paused\n`,
    });
  });

  it('says why a console cannot open: no such VMI, or not running', async () => {
    expect(await virtctl(['console', 'ghost', '--timeout=0'])).toMatchObject({
      code: 1,
      stderr: expect.stringContaining(
        `VirtualMachineInstance "ghost" not found in namespace "${ns.name}"`,
      ) as unknown,
    });
    await custom().createNamespacedCustomObject({
      ...group,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      body: {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstance',
        metadata: { name: 'pending' },
        spec: vmiSpec(),
      },
    });
    expect(await virtctl(['console', 'pending', '--timeout=0'])).toMatchObject({
      code: 1,
      stderr: `virtctl: cannot open the console of VirtualMachineInstance ${ns.name}/pending: VMI is not running\n`,
    });
  });

  it('still opens the console after virt-api’s client certificate for virt-handler is rotated', async () => {
    const before = await readSecretMaterial(SECRETS.handlerClient);
    await consoleRoundTrip('before-rotation');
    const oldSerial = handlerCalls.filter((c) => c.rpc === 'Console').at(-1)?.clientSerial;
    expect(oldSerial).toBeDefined();
    await core().patchNamespacedSecret(
      {
        name: SECRETS.handlerClient,
        namespace: ns.name,
        body: { metadata: { annotations: { [FORCE_ROTATION]: 'now' } } },
      },
      mergePatchOptions(),
    );
    await eventually(async () => (await readSecretMaterial(SECRETS.handlerClient)).cert !== before.cert, {
      timeoutMs: 60_000,
      description: 'virt-controller to reissue the handler client certificate',
    });
    // virt-api reloads the Secret through its watch; the next console dials with the new certificate.
    const serial = await eventually(
      async () => {
        const run = await consoleRoundTrip('after-rotation');
        expect(run.code).toBe(0);
        const latest = handlerCalls.filter((c) => c.rpc === 'Console').at(-1)?.clientSerial;
        return latest !== oldSerial ? latest : undefined;
      },
      { timeoutMs: 60_000, description: 'the console to open with the rotated client certificate' },
    );
    expect(serial).toBeDefined();
  });
});

describe('port-forward: virt-api dials the VMI’s pod address itself', () => {
  let guest: net.Server;
  let guestPort = 0;

  beforeAll(async () => {
    // The stand-in guest: a TCP server in this network namespace, where the virt-api process also runs; the VMI's
    // status names 127.0.0.1 as its pod address. It greets, then echoes, and closes after the client's bye.
    guest = net.createServer((socket) => {
      socket.write('hello from the stand-in guest\n');
      let seen = '';
      socket.on('data', (d: Buffer) => {
        socket.write(d);
        seen += d.toString();
        if (seen.includes('bye\n')) socket.end();
      });
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => guest.listen(0, '127.0.0.1', resolve));
    guestPort = (guest.address() as net.AddressInfo).port;
    // The address virt-handler would report for the pod network: here the test's own guest stand-in.
    await runningVMI('pf-guest', [], {
      spec: {
        ...vmiSpec(),
        domain: {
          ...vmiSpec().domain,
          devices: { ...vmiSpec().domain.devices, interfaces: [{ name: 'default', masquerade: {} }] },
        },
        networks: [{ name: 'default', pod: {} }],
      },
      status: { interfaces: [{ name: 'default', ipAddress: '127.0.0.1', ipAddresses: ['127.0.0.1'] }] },
    });
  });

  afterAll(() => new Promise<void>((resolve) => guest.close(() => resolve())));

  /** `virtctl port-forward --stdio` with `input` on stdin, until the guest ends the connection. */
  const stdio = (args: string[], input: string, as: keyof typeof kubeconfigs = 'admin') =>
    virtctl(['port-forward', '--stdio=true', ...args], as, input);

  it('virtctl port-forward --stdio carries bytes through the aggregator, virt-api and its own dial', async () => {
    const run = await stdio([`vmi/pf-guest.${ns.name}`, String(guestPort)], 'ping\nbye\n');
    expect(run).toEqual({
      code: 0,
      stdout: 'hello from the stand-in guest\nping\nbye\n',
      stderr: '',
    });
  });

  it('view may not port-forward; a refused port and a VMI that is not running say why', async () => {
    const denied = await stdio([`vmi/pf-guest.${ns.name}`, String(guestPort)], '', 'viewer');
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(
      `virtctl: forbidden: you may not forward TCP port ${guestPort} of VirtualMachineInstance ${ns.name}/pf-guest: ` +
        `this needs verb "get" on "virtualmachineinstances/portforward"`,
    );
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const closedPort = (closed.address() as net.AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refused = await stdio([`vmi/pf-guest.${ns.name}`, String(closedPort)], '', 'editor');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toBe(
      `virtctl: cannot forward TCP port ${closedPort} of VirtualMachineInstance ${ns.name}/pf-guest: dialing VM: ` +
        `TCP port ${closedPort} of the VMI at 127.0.0.1: connect ECONNREFUSED 127.0.0.1:${closedPort}; nothing in ` +
        'the guest accepts connections on that port\n',
    );
    await custom().createNamespacedCustomObject({
      ...group,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      body: {
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstance',
        metadata: { name: 'pf-pending' },
        spec: vmiSpec(),
      },
    });
    const pending = await stdio([`vmi/pf-pending.${ns.name}`, '22'], '');
    expect(pending.code).toBe(1);
    expect(pending.stderr).toMatch(
      new RegExp(
        `^virtctl: cannot forward TCP port 22 of VirtualMachineInstance ${ns.name}/pf-pending: VMI is not running \\(phase `,
      ),
    );
  });
});

describe('with the VM controller running', () => {
  let controllers: Controllers | undefined;
  const abort = new AbortController();
  let running: Promise<void> | undefined;

  beforeAll(async () => {
    // The chart's RBAC for virt-controller (shared with the controller's suites, which apply the same), and what
    // its Role grants in an install namespace, here in this one.
    const { stdout } = await execFileAsync(
      path.join(state.binDir, 'helm'),
      [
        'template',
        'kubevirt-ts',
        CHART,
        '--namespace',
        SERVICE_NAMESPACE,
        '--show-only',
        'templates/controller-rbac.yaml',
      ],
      { timeout: 60_000 },
    );
    for (const doc of parseAllDocuments(stdout)) {
      const obj = doc.toJS() as KubernetesObject | null;
      if (obj !== null) await apply(kc, obj);
    }
    const installRole = [
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'Role',
        metadata: { name: 'test-vm-controller-install', namespace: ns.name },
        rules: [
          { apiGroups: ['kubevirt.io'], resources: ['kubevirts'], verbs: ['get', 'list', 'watch'] },
          { apiGroups: ['kubevirt.io'], resources: ['kubevirts/status'], verbs: ['update', 'patch'] },
        ],
      },
      {
        apiVersion: 'rbac.authorization.k8s.io/v1',
        kind: 'RoleBinding',
        metadata: { name: 'test-vm-controller-install', namespace: ns.name },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'test-vm-controller-install' },
        subjects: [{ kind: 'ServiceAccount', name: 'virt-controller', namespace: SERVICE_NAMESPACE }],
      },
    ];
    for (const obj of installRole) await apply(kc, obj as KubernetesObject);
    const asController = new KubeConfig();
    asController.loadFromFile(state.kubeconfigs.services['virt-controller'] ?? '');
    const started = new Controllers({
      kubeConfig: asController,
      log: silentLogger(),
      installNamespace: ns.name,
      namespace: ns.name,
      launcherImage: 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0',
    });
    controllers = started;
    running = started.run(abort.signal);
    await eventually(() => started.synced, {
      timeoutMs: 60_000,
      description: 'the controllers’ caches to sync',
    });
  }, 120_000);

  afterAll(async () => {
    abort.abort();
    await running;
  });

  const vmiOf = async (name: string) => {
    try {
      return await readVMI(name);
    } catch {
      return undefined;
    }
  };

  it('virtctl start makes the controller create the VMI; restart replaces it; stop removes it', async () => {
    expect(controllers?.synced).toBe(true);
    const vm = await createVM('controlled', 'Halted');
    expect((await virtctl(['start', 'controlled'])).code).toBe(0);
    const first = await eventually(
      async () => {
        const vmi = await vmiOf('controlled');
        return vmi?.metadata?.uid !== undefined ? vmi : undefined;
      },
      { timeoutMs: 60_000, description: 'the VM controller to create the VMI' },
    );
    expect(first.metadata?.ownerReferences?.[0]).toMatchObject({
      kind: 'VirtualMachine',
      uid: vm.metadata?.uid,
    });

    expect((await virtctl(['restart', 'controlled'])).code).toBe(0);
    await eventually(
      async () => {
        const vmi = await vmiOf('controlled');
        return vmi?.metadata?.uid !== undefined && vmi.metadata.uid !== first.metadata?.uid;
      },
      { timeoutMs: 90_000, description: 'the restart to replace the VMI with a new one' },
    );

    expect((await virtctl(['stop', 'controlled'])).code).toBe(0);
    expect((await readVM('controlled')).spec.runStrategy).toBe('Halted');
    await eventually(
      async () => {
        const vmi = await vmiOf('controlled');
        return vmi === undefined || vmi.metadata?.deletionTimestamp !== undefined;
      },
      { timeoutMs: 90_000, description: 'the stop to delete the VMI' },
    );
  });
});
