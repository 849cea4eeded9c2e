// The integration-test harness. Suites run inside the devcluster's namespace (`devcluster test -- vitest …`, as
// `make integration` does), which sets KUBECONFIG, KUBEVIRT_TS_DEVCLUSTER_STATE and KUBEVIRT_TS_INTEGRATION=1.
// Import from '@kubevirt-ts/devcluster/testing' (it uses vitest's hooks, so only in test files).
import { randomBytes } from 'node:crypto';
import type { RequestOptions } from 'node:https';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll } from 'vitest';
import { readClusterState } from './cluster.ts';
import { restartComponent } from './control.ts';
import { COMPONENT_NAMES } from './components.ts';
import { DevclusterError } from './errors.ts';
import { compactEtcdAt } from './etcd.ts';
import { defaultStateDir, ENV } from './layout.ts';
import { request } from './probe.ts';
import type { ClusterState } from './spec.ts';

/** The kubeconfig the test runner was given (KUBECONFIG), with a clear error when there is none. */
export function kubeConfigFromEnv(): KubeConfig {
  const path = process.env.KUBECONFIG;
  if (!path) {
    throw new DevclusterError(
      'KUBECONFIG is not set: integration tests need a running devcluster',
      'run them with `make integration` (or: pnpm devcluster test -- vitest run --config vitest.integration.config.ts)',
    );
  }
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** The running devcluster's description (cluster.json): addresses, kubeconfigs, binaries, sockets. */
export async function devclusterState(): Promise<ClusterState> {
  const stateDir = process.env[ENV.stateDir] ?? defaultStateDir();
  const state = await readClusterState(stateDir);
  if (!state) {
    throw new DevclusterError(`no devcluster state in ${stateDir}`, 'start one with: pnpm devcluster up');
  }
  return state;
}

export interface WaitOptions {
  timeoutMs?: number;
  intervalMs?: number;
  /** Named in the timeout error, e.g. 'the pod to be Pending'. */
  description?: string;
}

/**
 * Polls `check` until it returns a value other than undefined/false and resolves to it. The timeout is a generous
 * semantic bound for the test to fail with a message, never a speed assertion.
 */
export async function eventually<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  options: WaitOptions = {},
): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError: unknown;
  for (;;) {
    try {
      const value = await check();
      if (value !== undefined && value !== false) return value;
      lastError = undefined;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      const why = lastError instanceof Error ? `; last error: ${lastError.message}` : '';
      throw new Error(`timed out waiting for ${options.description ?? 'a condition'}${why}`);
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs ?? 250));
  }
}

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
 * One raw request to the API server with a kubeconfig's identity (for what typed clients hide: /readyz, a watch
 * from an old resourceVersion, status codes). The body is read whole; watches need `timeoutSeconds`.
 */
export async function kubeRequest(
  kc: KubeConfig,
  path: string,
  options: { method?: string; body?: unknown; timeoutMs?: number } = {},
): Promise<{ status: number; body: string }> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new DevclusterError('the kubeconfig has no current cluster');
  const url = new URL(cluster.server);
  const tlsOptions: RequestOptions = {};
  await kc.applyToHTTPSOptions(tlsOptions);
  const pem = (value: unknown) =>
    Buffer.isBuffer(value) ? value.toString('utf8') : typeof value === 'string' ? value : '';
  const token = kc.getCurrentUser()?.token;
  return request(
    {
      host: url.hostname,
      port: Number(url.port || 443),
      tls: {
        ca: pem(tlsOptions.ca),
        ...(tlsOptions.cert ? { cert: pem(tlsOptions.cert) } : {}),
        ...(tlsOptions.key ? { key: pem(tlsOptions.key) } : {}),
      },
      ...(token ? { headers: { authorization: `Bearer ${token}` } } : {}),
    },
    path,
    {
      ...(options.method ? { method: options.method } : {}),
      ...(options.body !== undefined ? { body: JSON.stringify(options.body) } : {}),
      timeoutMs: options.timeoutMs ?? 30_000,
    },
  );
}

/** GET /readyz; true on 200. */
export async function apiServerReady(kc: KubeConfig = kubeConfigFromEnv()): Promise<boolean> {
  try {
    return (await kubeRequest(kc, '/readyz', { timeoutMs: 5_000 })).status === 200;
  } catch {
    return false;
  }
}

/**
 * Restarts kube-apiserver through the supervisor and resolves once it is ready again. Its watch cache starts
 * empty, so after compactEtcd() a watch from an older resourceVersion gets 410 Gone.
 */
export async function restartApiServer(): Promise<void> {
  const state = await devclusterState();
  await restartComponent(state.controlSocket, COMPONENT_NAMES.apiserver);
  await eventually(() => apiServerReady(), {
    timeoutMs: 120_000,
    description: 'kube-apiserver /readyz after restart',
  });
}

/** Compacts etcd up to its current revision; returns that revision. */
export async function compactEtcd(): Promise<number> {
  const state = await devclusterState();
  return compactEtcdAt(state.etcd.socket);
}
