// virt-api's webhooks and virt-controller's certificate loop against the real API server (devcluster), both run
// as processes from source under their own service accounts. The suite registers webhook configurations limited
// to its namespace and the cluster's one `v1.subresources.kubevirt.io` APIService, then drives everything through
// kube-apiserver and kubectl as a user would.
import { execFile } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, readdirSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  ApiException,
  ApiregistrationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Secret,
} from '@kubernetes/client-node';
import { expose, type ClusterState } from '@kubevirt-ts/devcluster';
import { devclusterState, eventually, kubeRequest, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { jsonPatchOptions, mergePatchOptions, parseCertificates } from '@kubevirt-ts/runtime';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments, stringify } from 'yaml';
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
const ns = useTestNamespace('virt-api');
const FORCE_ROTATION = 'kubevirt-ts.dev/force-rotation';
const SECRETS = {
  ca: 'kubevirt-ca',
  api: 'kubevirt-virt-api-certs',
  handlerServer: 'kubevirt-virt-handler-server-certs',
  handlerClient: 'kubevirt-virt-handler-certs',
};
const API_SERVICE = 'v1.subresources.kubevirt.io';

let kc: KubeConfig;
let state: ClusterState;
let controller: ServiceProcess | undefined;
let api: ServiceProcess | undefined;
let apiPort: number;
let tmp: string;
let mutatingName: string;
let validatingName: string;
const cleanup: KubernetesObject[] = [];

const vmiGroup = { group: 'kubevirt.io', version: 'v1' };
const custom = () => kc.makeApiClient(CustomObjectsApi);

async function kubectl(
  args: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  const file =
    input === undefined ? undefined : path.join(tmp, `manifest-${Date.now()}-${Math.random()}.yaml`);
  if (file !== undefined && input !== undefined) writeFileSync(file, input);
  try {
    const { stdout, stderr } = await execFileAsync(
      path.join(state.binDir, 'kubectl'),
      [...args, ...(file === undefined ? [] : ['-f', file]), '-n', ns.name],
      { env: { ...process.env }, timeout: 60_000 },
    );
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function readSecret(name: string): Promise<V1Secret> {
  return kc.makeApiClient(CoreV1Api).readNamespacedSecret({ name, namespace: ns.name });
}

const decode = (s: V1Secret, key: string): string =>
  Buffer.from(s.data?.[key] ?? '', 'base64').toString('utf8');

/** The serial of the certificate virt-api presents right now, read with a TLS handshake. */
function servedSerial(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect(
      { host: state.network.controlPlaneAddress, port: apiPort, rejectUnauthorized: false },
      () => {
        resolve(socket.getPeerCertificate().serialNumber);
        socket.end();
      },
    );
    socket.on('error', reject);
  });
}

function vmiManifest(name: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name, namespace: ns.name },
    spec: {
      domain: { memory: { guest: '64Mi' }, devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
      volumes: [{ name: 'root', containerDisk: { image: 'registry.kubevirt-ts.dev/test-guest:latest' } }],
    },
    ...extra,
  };
}

function vmManifest(name: string, spec: Record<string, unknown> = {}) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace: ns.name },
    spec: { runStrategy: 'Halted', template: { spec: vmiManifest(name).spec }, ...spec },
  };
}

/** Every field of `manifest` must be in `stored` with the same value; returns the paths that are not. */
function missingFields(manifest: unknown, stored: unknown, at = ''): string[] {
  if (Array.isArray(manifest)) {
    if (!Array.isArray(stored) || stored.length !== manifest.length) return [at];
    return manifest.flatMap((v, i) => missingFields(v, stored[i], `${at}[${i}]`));
  }
  if (typeof manifest === 'object' && manifest !== null) {
    if (typeof stored !== 'object' || stored === null) return [at];
    return Object.entries(manifest).flatMap(([k, v]) =>
      missingFields(v, (stored as Record<string, unknown>)[k], at === '' ? k : `${at}.${k}`),
    );
  }
  return manifest === stored
    ? []
    : [`${at} (${JSON.stringify(manifest)} stored as ${JSON.stringify(stored)})`];
}

beforeAll(async () => {
  kc = ns.kc;
  state = await devclusterState();
  tmp = mkdtempSync(path.join(os.tmpdir(), 'virt-api-it-'));
  mutatingName = `test-virt-api-mutator-${ns.name}`;
  validatingName = `test-virt-api-validator-${ns.name}`;
  await installCrds(kc);
  const rbac = rbacObjects({
    namespace: ns.name,
    secrets: Object.values(SECRETS),
    mutating: mutatingName,
    validating: validatingName,
    apiService: API_SERVICE,
  });
  for (const obj of rbac) await apply(kc, obj);
  cleanup.push(
    ...rbac.filter((o) => o.kind?.startsWith('Cluster') || o.metadata?.namespace === 'kube-system'),
  );
  const hooks = webhookConfigurations(ns.name, mutatingName, validatingName);
  for (const obj of hooks) await apply(kc, obj);
  cleanup.push(...hooks);

  controller = startService('virt-controller', [
    `--kubeconfig=${state.kubeconfigs.services['virt-controller']}`,
    `--namespace=${ns.name}`,
    '--pod-name=it-controller',
    '--health-port=0',
    '--health-bind-address=127.0.0.1',
    `--mutating-webhook-configurations=${mutatingName}`,
    `--validating-webhook-configurations=${validatingName}`,
    `--api-services=${API_SERVICE}`,
  ]);
  api = startService('virt-api', [
    `--kubeconfig=${state.kubeconfigs.services['virt-api']}`,
    `--namespace=${ns.name}`,
    '--port=0',
    '--health-port=0',
    '--health-bind-address=127.0.0.1',
    `--privileged-service-accounts=${SERVICE_NAMESPACE}:virt-controller,${SERVICE_NAMESPACE}:virt-handler`,
  ]);
  const listening = await api.waitForLine(
    (l) => String(l.msg).startsWith('serving admission webhooks'),
    120_000,
  );
  apiPort = listening.port as number;
  // Instancetype/preference references are answered "retry" until virt-api's caches hold their first lists.
  await api.waitForLine((l) => l.msg === 'all caches synced', 120_000);
  await expose(kc, { name: 'virt-api', namespace: ns.name, port: 443, targetPort: apiPort });

  // The one APIService of the group: registered only now that virt-api answers, since an unavailable APIService
  // stalls namespace deletion in the whole cluster.
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

  // Admission works once the CA bundle is injected and the API server reaches virt-api.
  await eventually(
    async () => {
      const created = (await custom().createNamespacedCustomObject({
        ...vmiGroup,
        namespace: ns.name,
        plural: 'virtualmachineinstances',
        body: vmiManifest('probe'),
        dryRun: 'All',
      })) as { metadata?: { finalizers?: string[] } };
      return created.metadata?.finalizers?.includes('kubevirt.io/foregroundDeleteVirtualMachine') ?? false;
    },
    { timeoutMs: 120_000, description: 'the webhooks to answer through the API server' },
  );
}, 300_000);

afterAll(async () => {
  // VMIs carry our finalizer and no controller runs to drop it: clear it while the webhooks still answer.
  try {
    const list = (await custom().listNamespacedCustomObject({
      ...vmiGroup,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
    })) as { items: { metadata: { name: string } }[] };
    for (const item of list.items) {
      await custom().patchNamespacedCustomObject(
        {
          ...vmiGroup,
          namespace: ns.name,
          plural: 'virtualmachineinstances',
          name: item.metadata.name,
          body: [{ op: 'replace', path: '/metadata/finalizers', value: [] }],
        },
        jsonPatchOptions(),
      );
    }
  } finally {
    for (const obj of cleanup.reverse()) await remove(kc, obj);
    await Promise.all([api?.stop(), controller?.stop()]);
    rmSync(tmp, { recursive: true, force: true });
  }
}, 120_000);

describe('admission through the API server', () => {
  const examplesDir = new URL('../../../examples/', import.meta.url);
  const exampleFiles = readdirSync(examplesDir).filter((f) => f.endsWith('.yaml'));

  it.each(exampleFiles)('kubectl apply accepts examples/%s and stores every field', async (file) => {
    const text = readFileSync(new URL(file, examplesDir), 'utf8');
    const result = await kubectl(['apply'], text);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const client = KubernetesObjectApi.makeApiClient(kc);
    for (const doc of parseAllDocuments(text)) {
      const manifest = doc.toJS() as KubernetesObject;
      const stored = await client.read({
        apiVersion: manifest.apiVersion ?? '',
        kind: manifest.kind ?? '',
        metadata: { name: manifest.metadata?.name ?? '', namespace: ns.name },
      });
      expect(missingFields(manifest, JSON.parse(JSON.stringify(stored)))).toEqual([]);
    }
  });

  it('refuses a field kubevirt-ts does not support yet, naming its path', async () => {
    const vm = vmManifest('unsupported', { dataVolumeTemplates: [{ metadata: { name: 'dv' }, spec: {} }] });
    const result = await kubectl(['apply'], stringify(vm));
    expect(result.code).not.toBe(0);
    // kubectl prints a single cause inline, several as "* field: message" lines (next test).
    expect(result.stderr).toMatch(
      /^The VirtualMachine "unsupported" is invalid: spec\.dataVolumeTemplates: not supported yet by kubevirt-ts/,
    );
  });

  it('refuses a field nobody has, naming its path', async () => {
    const vm = vmManifest('unknown');
    (vm.spec.template.spec.domain as Record<string, unknown>).frobnicate = true;
    const result = await kubectl(['apply'], stringify(vm));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      'The VirtualMachine "unknown" is invalid: spec.template.spec.domain.frobnicate: unknown field "frobnicate"',
    );
  });

  it('lists each error of a bad manifest on its own line', async () => {
    const vm = vmManifest('bad', { running: true });
    vm.spec.template.spec.domain.devices.disks[0]!.name = 'nope';
    (vm.spec.template.spec as Record<string, unknown>).hostname = 'Not_A_Hostname';
    const result = await kubectl(['apply'], stringify(vm));
    expect(result.code).not.toBe(0);
    const lines = result.stderr.split('\n').filter((l) => l.startsWith('* '));
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines.some((l) => l.startsWith('* spec.running: '))).toBe(true);
    expect(lines.some((l) => l.startsWith('* spec.template.spec.hostname: '))).toBe(true);
    expect(result.stderr).toContain('The VirtualMachine "bad" is invalid');
  });

  it('refuses a VM whose instancetype does not exist', async () => {
    const vm = vmManifest('no-instancetype', {
      instancetype: { kind: 'VirtualMachineInstancetype', name: 'absent' },
    });
    delete (vm.spec.template.spec.domain as Record<string, unknown>).memory;
    const result = await kubectl(['apply'], stringify(vm));
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(
      'is invalid: spec.instancetype.name: VirtualMachineInstancetype "absent" not found',
    );
  });
});

describe('VirtualMachineInstance status and spec', () => {
  const controllerKc = () => {
    const c = new KubeConfig();
    c.loadFromFile(state.kubeconfigs.services['virt-controller'] ?? '');
    return c;
  };
  type Vmi = {
    metadata: { finalizers?: string[]; resourceVersion?: string };
    spec: { domain: Record<string, unknown> };
    status?: Record<string, unknown>;
  };
  const read = async (client: CustomObjectsApi, name: string) =>
    (await client.getNamespacedCustomObject({
      ...vmiGroup,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      name,
    })) as Vmi;
  const replace = (client: CustomObjectsApi, name: string, body: Vmi) =>
    client.replaceNamespacedCustomObject({
      ...vmiGroup,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      name,
      body,
    });

  it('starts Pending with the finalizer; status edits stick only for our controller', async () => {
    const user = custom();
    await user.createNamespacedCustomObject({
      ...vmiGroup,
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      body: vmiManifest('status-test', { status: { phase: 'Running', nodeName: 'fake' } }),
    });
    const created = await read(user, 'status-test');
    expect(created.metadata.finalizers).toEqual(['kubevirt.io/foregroundDeleteVirtualMachine']);
    expect(created.status?.phase).toBe('Pending');
    expect(created.status?.nodeName).toBeUndefined();

    const edited = structuredClone(created);
    edited.status = { ...edited.status, phase: 'Running' };
    await replace(user, 'status-test', edited);
    expect((await read(user, 'status-test')).status?.phase).toBe('Pending');

    const asController = controllerKc().makeApiClient(CustomObjectsApi);
    const latest = await read(asController, 'status-test');
    latest.status = { ...latest.status, phase: 'Scheduling' };
    await replace(asController, 'status-test', latest);
    expect((await read(user, 'status-test')).status?.phase).toBe('Scheduling');
  });

  it('refuses a spec change by a user, naming the field, and allows it to our controller', async () => {
    const user = custom();
    const vmi = await read(user, 'status-test');
    vmi.spec.domain.memory = { guest: '128Mi' };
    const err = await replace(user, 'status-test', vmi).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ApiException);
    expect((err as ApiException<string>).code).toBe(422);
    expect(String((err as ApiException<string>).body)).toContain('spec.domain.memory.guest');
    const asController = controllerKc().makeApiClient(CustomObjectsApi);
    const latest = await read(asController, 'status-test');
    latest.spec.domain.memory = { guest: '128Mi' };
    await replace(asController, 'status-test', latest);
    expect((await read(user, 'status-test')).spec.domain.memory).toEqual({ guest: '128Mi' });
  });
});

describe('subresources.kubevirt.io', () => {
  it('becomes Available and answers discovery and version through the aggregator', async () => {
    const registration = kc.makeApiClient(ApiregistrationV1Api);
    await eventually(
      async () =>
        (await registration.readAPIService({ name: API_SERVICE })).status?.conditions?.some(
          (c) => c.type === 'Available' && c.status === 'True',
        ) ?? false,
      { timeoutMs: 120_000, description: `APIService ${API_SERVICE} to be Available` },
    );
    const discovery = await kubeRequest(kc, '/apis/subresources.kubevirt.io/v1');
    expect(discovery.status).toBe(200);
    expect(discovery.body).toContain('"virtualmachines/start"');
    // Through the aggregator, with its front-proxy client certificate: exercises virt-api's authentication.
    const version = await kubeRequest(kc, '/apis/subresources.kubevirt.io/v1/version');
    expect(version.status).toBe(200);
    expect(JSON.parse(version.body)).toMatchObject({ gitVersion: expect.stringMatching(/^v\d/) as unknown });
  });
});

describe('certificate rotation', () => {
  const caBundleOfWebhooks = async () => {
    const hooks = await kc
      .makeApiClient(AdmissionregistrationV1Api)
      .readValidatingWebhookConfiguration({ name: validatingName });
    return (hooks.webhooks ?? []).map((w) =>
      Buffer.from(String(w.clientConfig.caBundle ?? ''), 'base64').toString(),
    );
  };

  it('keeps admission working after a forced rotation of the CA and of the serving certificate', async () => {
    const core = kc.makeApiClient(CoreV1Api);
    const oldCa = decode(await readSecret(SECRETS.ca), 'tls.crt');
    const oldServing = new X509Certificate(decode(await readSecret(SECRETS.api), 'tls.crt')).serialNumber;
    expect(await servedSerial()).toBe(oldServing);

    await core.patchNamespacedSecret(
      {
        name: SECRETS.ca,
        namespace: ns.name,
        body: { metadata: { annotations: { [FORCE_ROTATION]: 'now' } } },
      },
      mergePatchOptions(),
    );
    const newCa = await eventually(
      async () => {
        const pem = decode(await readSecret(SECRETS.ca), 'tls.crt');
        return pem !== oldCa ? pem : undefined;
      },
      { timeoutMs: 60_000, description: 'a new CA in the CA Secret' },
    );
    const newCaCert = new X509Certificate(newCa);
    // The bundle trusts both CAs while certificates of the old one may still be served.
    const bundle = await eventually(
      async () => {
        const [first] = await caBundleOfWebhooks();
        return first !== undefined && first.includes(newCa.trim()) ? first : undefined;
      },
      { timeoutMs: 60_000, description: 'the new CA bundle in the webhook configuration' },
    );
    expect(parseCertificates(bundle).map((c) => c.fingerprint256)).toEqual([
      newCaCert.fingerprint256,
      new X509Certificate(oldCa).fingerprint256,
    ]);
    // Every leaf is reissued under the new CA, and virt-api serves its new one without a restart.
    const serving = await eventually(
      async () => {
        const cert = new X509Certificate(decode(await readSecret(SECRETS.api), 'tls.crt'));
        return cert.checkIssued(newCaCert) ? cert : undefined;
      },
      { timeoutMs: 60_000, description: "virt-api's certificate reissued under the new CA" },
    );
    // The loop writes the leaves one after the other: the handlers' may land a moment after virt-api's.
    for (const name of [SECRETS.handlerServer, SECRETS.handlerClient]) {
      await eventually(
        async () => new X509Certificate(decode(await readSecret(name), 'tls.crt')).checkIssued(newCaCert),
        { timeoutMs: 60_000, description: `${name} reissued under the new CA` },
      );
    }
    await eventually(async () => (await servedSerial()) === serving.serialNumber, {
      timeoutMs: 60_000,
      description: 'virt-api to serve the reissued certificate',
    });
    expect(api?.lines.some((l) => l.msg === 'certificate reloaded')).toBe(true);

    const accepted = await kubectl(['apply'], stringify(vmManifest('after-rotation')));
    expect(accepted.stderr).toBe('');
    expect(accepted.code).toBe(0);

    // A rotation of the serving certificate alone.
    await core.patchNamespacedSecret(
      {
        name: SECRETS.api,
        namespace: ns.name,
        body: { metadata: { annotations: { [FORCE_ROTATION]: 'now' } } },
      },
      mergePatchOptions(),
    );
    await eventually(async () => (await servedSerial()) !== serving.serialNumber, {
      timeoutMs: 60_000,
      description: 'virt-api to serve a second new certificate',
    });
    const again = await kubectl(['apply'], stringify(vmManifest('after-second-rotation')));
    expect(again.code).toBe(0);
    expect((await readSecret(SECRETS.api)).metadata?.annotations?.[FORCE_ROTATION]).toBeUndefined();
  });
});
