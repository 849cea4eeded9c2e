// The integration-test harness. Suites run inside the devcluster's namespace (`devcluster test -- vitest …`, as
// `make integration` does), which sets KUBECONFIG, KUBEVIRT_TS_DEVCLUSTER_STATE and KUBEVIRT_TS_INTEGRATION=1.
// Import from '@kubevirt-ts/devcluster/testing' (it uses vitest's hooks, so only in test files).
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import type { RequestOptions } from 'node:https';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { eventually, kubeConfigFromEnv } from './harness.ts';

export * from './harness.ts';
export * from './crds.ts';
// Nodes that run pods (devcluster part 2): finding them, pinning pods to one, waiting for pods.
export * from './node/testing.ts';

export interface TestNamespace {
  /** Unique per test file, e.g. `informer-3f9a1c`. */
  readonly name: string;
  readonly kc: KubeConfig;
  readonly core: CoreV1Api;
}

/**
 * A Kubernetes namespace of its own for the calling test file: created (with its `default` ServiceAccount ready,
 * so pods can be created at once) before the file's tests, deleted after them.
 */
export function useTestNamespace(prefix = 'test'): TestNamespace {
  const safe = prefix
    .toLowerCase()
    .replace(/[^a-z0-9-]/g, '-')
    .slice(0, 40)
    .replace(/-+$/, '');
  const name = `${safe}-${randomBytes(3).toString('hex')}`;
  let kc: KubeConfig | undefined;
  let core: CoreV1Api | undefined;
  const handle: TestNamespace = {
    name,
    get kc() {
      if (!kc) throw new Error('useTestNamespace: the namespace exists only inside tests (after beforeAll)');
      return kc;
    },
    get core() {
      if (!core)
        throw new Error('useTestNamespace: the namespace exists only inside tests (after beforeAll)');
      return core;
    },
  };
  beforeAll(async () => {
    kc = kubeConfigFromEnv();
    core = kc.makeApiClient(CoreV1Api);
    const api = core;
    await api.createNamespace({
      body: {
        metadata: { name, labels: { 'kubevirt-ts.dev/test': 'true', 'kubevirt-ts.dev/test-file': safe } },
      },
    });
    // The ServiceAccount admission plugin rejects pods until the controller-manager made the `default` account.
    await eventually(() => api.readNamespacedServiceAccount({ name: 'default', namespace: name }), {
      timeoutMs: 60_000,
      description: `the default ServiceAccount in namespace ${name}`,
    });
  });
  afterAll(async () => {
    if (!core) return;
    try {
      await core.deleteNamespace({ name, propagationPolicy: 'Background' });
    } catch (err) {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    }
  });
  return handle;
}

/**
 * Creates ServiceAccount `account` in `namespace` and writes a kubeconfig that acts as it (a one-hour token from the
 * TokenRequest API, the cluster's address and CA from `kc`, `namespace` as the context's default) to `file`; returns
 * `file`. What a test needs to call the API as a user with only the rights it then binds to that account.
 */
export async function serviceAccountKubeconfig(
  kc: KubeConfig,
  namespace: string,
  account: string,
  file: string,
): Promise<string> {
  const core = kc.makeApiClient(CoreV1Api);
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name: account } } });
  const token = await core.createNamespacedServiceAccountToken({
    name: account,
    namespace,
    body: { spec: { expirationSeconds: 3600 } },
  });
  const tls: RequestOptions = {};
  await kc.applyToHTTPSOptions(tls);
  writeFileSync(
    file,
    JSON.stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'devcluster',
          cluster: {
            server: kc.getCurrentCluster()?.server,
            'certificate-authority-data': Buffer.from(String(tls.ca)).toString('base64'),
          },
        },
      ],
      users: [{ name: account, user: { token: token.status?.token } }],
      contexts: [{ name: account, context: { cluster: 'devcluster', user: account, namespace } }],
      'current-context': account,
    }),
  );
  return file;
}
