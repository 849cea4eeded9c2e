// devcluster against itself: runs inside the cluster's namespace under `devcluster test` (make integration).
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { connect } from 'node:net';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  AdmissionregistrationV1Api,
  ApiException,
  AppsV1Api,
  AuthenticationV1Api,
  DiscoveryV1Api,
  KubeConfig,
  VersionApi,
} from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createCertificateAuthority,
  expose,
  issueCertificate,
  NETWORK,
  type ClusterState,
} from '../src/index.ts';
import {
  apiServerReady,
  compactEtcd,
  devclusterState,
  eventually,
  kubeConfigFromEnv,
  kubeRequest,
  restartApiServer,
  useTestNamespace,
} from '../src/testing.ts';

const execFileAsync = promisify(execFile);
const ns = useTestNamespace('devcluster');
let state: ClusterState;

beforeAll(async () => {
  state = await devclusterState();
});

describe('the control plane', () => {
  it('runs the test inside the cluster namespace with the inside kubeconfig', () => {
    expect(process.env.KUBEVIRT_TS_INTEGRATION).toBe('1');
    expect(process.env.KUBECONFIG).toBe(state.kubeconfigs.admin);
    const addresses = networkInterfaces()[NETWORK.bridge]?.map((a) => a.address) ?? [];
    expect(addresses).toContain(NETWORK.controlPlaneAddress);
  });

  it('answers /readyz with ok', async () => {
    const res = await kubeRequest(kubeConfigFromEnv(), '/readyz');
    expect(res).toEqual({ status: 200, body: 'ok' });
  });

  it('reports the pinned release, not v0.0.0-master', async () => {
    const version = await kubeConfigFromEnv().makeApiClient(VersionApi).getCode();
    expect(version.gitVersion).toBe(state.versions.kubernetes);
  });

  it('leaves pods no node fits Pending and unschedulable (the controllers and scheduler act)', async () => {
    const apps = ns.kc.makeApiClient(AppsV1Api);
    const labels = { app: 'pending-web' };
    await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: 'pending-web' },
        spec: {
          replicas: 2,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            // No node has this label, whether devcluster runs nodes or not.
            spec: {
              nodeSelector: { 'kubevirt-ts.dev/no-such-node': 'true' },
              containers: [{ name: 'web', image: 'node:24' }],
            },
          },
        },
      },
    });
    // Two controllers (deployment, replicaset) then the scheduler must act: the controller-manager and scheduler work.
    const pods = await eventually(
      async () => {
        const list = await ns.core.listNamespacedPod({
          namespace: ns.name,
          labelSelector: 'app=pending-web',
        });
        const unschedulable = list.items.filter((pod) =>
          pod.status?.conditions?.some(
            (c) => c.type === 'PodScheduled' && c.status === 'False' && c.reason === 'Unschedulable',
          ),
        );
        return unschedulable.length === 2 ? list.items : undefined;
      },
      { timeoutMs: 90_000, description: 'two unschedulable pods' },
    );
    for (const pod of pods) {
      expect(pod.status?.phase).toBe('Pending');
      expect(pod.spec?.nodeName).toBeUndefined();
    }
  });
});

describe('the host forwarder', () => {
  it('serves the API server on 127.0.0.1 in the host network namespace', async () => {
    const supervisorPid = Number(
      (await readFile(join(state.stateDir, 'run', 'supervisor.pid'), 'utf8')).trim(),
    );
    // The supervisor runs on the host, so its network namespace is the host's.
    const { stdout } = await execFileAsync('nsenter', [
      `--net=/proc/${supervisorPid}/ns/net`,
      join(state.binDir, 'kubectl'),
      '--kubeconfig',
      state.kubeconfigs.adminHost,
      'get',
      '--raw',
      '/readyz',
    ]);
    expect(stdout.trim()).toBe('ok');
  });

  it('is not reachable from inside the namespace, whose loopback is its own', async () => {
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(state.apiserver.hostPort, '127.0.0.1');
      socket.once('connect', () => {
        socket.destroy();
        resolve(false);
      });
      socket.once('error', () => resolve(true));
    });
    expect(refused).toBe(true);
  });
});

describe('service-account kubeconfigs', () => {
  it('authenticate each service as its own ServiceAccount', async () => {
    for (const [name, path] of Object.entries(state.kubeconfigs.services)) {
      const kc = new KubeConfig();
      kc.loadFromFile(path);
      const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({ body: {} });
      expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:kubevirt:${name}`);
    }
    expect(Object.keys(state.kubeconfigs.services).sort()).toEqual([
      'virt-api',
      'virt-controller',
      'virt-handler',
    ]);
  });
});

describe('expose', () => {
  const service = 'deny-hook';
  const denyMessage = 'denied by the devcluster test webhook';
  let server: Server;
  let reviews = 0;
  let webhookName = '';

  beforeAll(async () => {
    // A validating webhook served by this test process, at the namespace address, with its own CA.
    const ca = await createCertificateAuthority('devcluster-test-webhook-ca');
    const host = `${service}.${ns.name}.svc`;
    const serving = await issueCertificate(ca, { commonName: host, usage: 'server', dnsNames: [host] });
    server = createServer({ cert: serving.certPem, key: serving.keyPem }, (req, res) => {
      let body = '';
      req.on('data', (chunk: Buffer) => (body += chunk.toString()));
      req.on('end', () => {
        reviews += 1;
        const review = JSON.parse(body) as {
          request: { uid: string; object?: { metadata?: { labels?: Record<string, string> } } };
        };
        const deny = review.request.object?.metadata?.labels?.deny === 'true';
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            apiVersion: 'admission.k8s.io/v1',
            kind: 'AdmissionReview',
            response: {
              uid: review.request.uid,
              allowed: !deny,
              ...(deny ? { status: { code: 403, message: denyMessage } } : {}),
            },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, NETWORK.controlPlaneAddress, resolve));
    const port = (server.address() as { port: number }).port;

    await expose(ns.kc, { name: service, namespace: ns.name, port: 443, targetPort: port });

    webhookName = `devcluster-test-${ns.name}`;
    await ns.kc.makeApiClient(AdmissionregistrationV1Api).createValidatingWebhookConfiguration({
      body: {
        metadata: { name: webhookName },
        webhooks: [
          {
            name: 'deny.devcluster.kubevirt-ts.dev',
            clientConfig: {
              service: { namespace: ns.name, name: service, port: 443, path: '/validate' },
              caBundle: Buffer.from(ca.certPem).toString('base64'),
            },
            rules: [
              { apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['configmaps'] },
            ],
            // Only this file's namespace, so other suites never meet this webhook.
            namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns.name } },
            failurePolicy: 'Fail',
            sideEffects: 'None',
            admissionReviewVersions: ['v1'],
            timeoutSeconds: 10,
          },
        ],
      },
    });
  });

  afterAll(async () => {
    if (webhookName) {
      await ns.kc
        .makeApiClient(AdmissionregistrationV1Api)
        .deleteValidatingWebhookConfiguration({ name: webhookName })
        .catch(() => undefined);
    }
    await new Promise((resolve) => server?.close(resolve));
  });

  it('creates a selector-less Service and an EndpointSlice for the address', async () => {
    const svc = await ns.core.readNamespacedService({ name: service, namespace: ns.name });
    expect(svc.spec?.selector).toBeUndefined();
    expect(svc.spec?.clusterIP).toMatch(/^10\.96\./);
    const slices = await ns.kc.makeApiClient(DiscoveryV1Api).listNamespacedEndpointSlice({
      namespace: ns.name,
      labelSelector: `kubernetes.io/service-name=${service}`,
    });
    expect(slices.items).toHaveLength(1);
    expect(slices.items[0]?.endpoints?.[0]?.addresses).toEqual([NETWORK.controlPlaneAddress]);
  });

  it('lets the API server call a webhook served from this process', async () => {
    // The webhook configuration reaches the API server's admission chain asynchronously: retry until it bites.
    let attempt = 0;
    const denial = await eventually(
      async () => {
        attempt += 1;
        const name = `denied-${attempt}`;
        try {
          await ns.core.createNamespacedConfigMap({
            namespace: ns.name,
            body: { metadata: { name, labels: { deny: 'true' } } },
          });
          await ns.core.deleteNamespacedConfigMap({ name, namespace: ns.name });
          return undefined;
        } catch (err) {
          if (err instanceof ApiException) return err;
          throw err;
        }
      },
      { timeoutMs: 60_000, description: 'the webhook to deny a ConfigMap' },
    );
    expect(denial.code).toBe(403);
    expect(String(denial.body)).toContain(denyMessage);

    const before = reviews;
    await ns.core.createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'allowed' } } });
    expect(reviews).toBe(before + 1);
  });
});

describe('restartApiServer and compactEtcd', () => {
  it('make a watch from an old resourceVersion fail with 410 Gone', async () => {
    const kc = kubeConfigFromEnv();
    const created = await ns.core.createNamespacedConfigMap({
      namespace: ns.name,
      body: { metadata: { name: 'history' }, data: { n: '0' } },
    });
    const oldVersion = created.metadata?.resourceVersion ?? '';
    for (let n = 1; n <= 3; n++) {
      await ns.core.replaceNamespacedConfigMap({
        name: 'history',
        namespace: ns.name,
        body: { metadata: { name: 'history' }, data: { n: String(n) } },
      });
    }
    const compactedTo = await compactEtcd();
    expect(compactedTo).toBeGreaterThan(Number(oldVersion));

    await restartApiServer();
    expect(await apiServerReady(kc)).toBe(true);

    const base = `/api/v1/namespaces/${ns.name}/configmaps`;
    const watch = await kubeRequest(kc, `${base}?watch=true&resourceVersion=${oldVersion}&timeoutSeconds=5`);
    // The API server says 410 either as the response status or as the watch's first (ERROR) event.
    const code =
      watch.status === 410
        ? 410
        : (JSON.parse(watch.body.split('\n')[0] ?? '{}') as { type?: string; object?: { code?: number } })
            .object?.code;
    expect(code).toBe(410);

    // The exact old version is gone from etcd itself, not only from the watch cache.
    const list = await kubeRequest(kc, `${base}?resourceVersion=${oldVersion}&resourceVersionMatch=Exact`);
    expect(list.status).toBe(410);
  });
});
