// What tests and the CLI's test helpers need from a running devcluster, without vitest: its state, raw API
// requests, waiting, and provoking an API server restart or a 410. Test files import '@kubevirt-ts/devcluster/testing'.
import { readFile } from 'node:fs/promises';
import type { RequestOptions } from 'node:https';
import { KubeConfig } from '@kubernetes/client-node';
import { readClusterState } from './cluster.ts';
import { restartComponent } from './control.ts';
import { COMPONENT_NAMES } from './components.ts';
import { DevclusterError } from './errors.ts';
import { compactEtcdAt } from './etcd.ts';
import { defaultStateDir, ENV, statePaths } from './layout.ts';
import { pkiFiles } from './pki.ts';
import { request } from './probe.ts';
import { ensureServiceAccountKubeconfigs } from './serviceaccounts.ts';
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

/**
 * Puts back the services' ServiceAccounts that `up` created in the `kubevirt` namespace and mints fresh tokens into
 * their kubeconfigs, as `up` does. `helm uninstall` of the chart deletes those accounts (the chart adopts them on
 * install), and a token is bound to the account it was minted for, so without this the kubeconfigs of services run
 * from source stop working after a test uninstalled the chart.
 */
export async function restoreServiceAccounts(): Promise<void> {
  const stateDir = process.env[ENV.stateDir] ?? defaultStateDir();
  const state = await devclusterState();
  const paths = statePaths(stateDir);
  const admin = new KubeConfig();
  admin.loadFromFile(state.kubeconfigs.admin);
  await ensureServiceAccountKubeconfigs(admin, {
    dir: paths.kubeconfigs,
    caPem: await readFile(pkiFiles(paths.pki).ca.cert, 'utf8'),
    insideServer: state.apiserver.url,
    hostServer: state.apiserver.hostUrl,
  });
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
