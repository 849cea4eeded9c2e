// Kubernetes client plumbing shared by every service: finding a kubeconfig, object keys, resource paths, explicit
// patch content types and reading API errors. client-node 2.x is the client.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import {
  KubeConfig,
  PatchStrategy,
  setHeaderOptions,
  type ConfigurationOptions,
} from '@kubernetes/client-node';

export { KubeConfig, PatchStrategy } from '@kubernetes/client-node';

const serviceAccountDir = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface LoadKubeConfigOptions {
  /** A path given with --kubeconfig; wins over everything else. */
  kubeconfig?: string | undefined;
  /** Prefix of the in-cluster service-account paths (tests point it at a temporary directory). */
  inClusterPathPrefix?: string;
}

export type KubeConfigSource = 'flag' | 'env' | 'in-cluster' | 'home';

/**
 * Loads the client configuration: the --kubeconfig path, else $KUBECONFIG (a path list, merged), else the pod's
 * service account when running in a cluster, else ~/.kube/config. Unlike client-node's loadFromDefault it never
 * falls back to an unauthenticated http://localhost:8080, and it says what it tried when nothing is there.
 */
export function loadKubeConfig(opts: LoadKubeConfigOptions = {}): {
  kubeConfig: KubeConfig;
  source: KubeConfigSource;
} {
  // client-node's loaders read process.env themselves, so this does too: one source of truth.
  const env = process.env;
  const kc = new KubeConfig();
  let source: KubeConfigSource;
  if (opts.kubeconfig) {
    if (!fs.existsSync(opts.kubeconfig)) {
      throw new Error(`kubeconfig ${opts.kubeconfig} (from --kubeconfig) does not exist`);
    }
    kc.loadFromFile(opts.kubeconfig);
    source = 'flag';
  } else if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(path.delimiter).filter((f) => f !== '');
    const missing = files.filter((f) => !fs.existsSync(f));
    if (missing.length > 0) {
      throw new Error(
        `KUBECONFIG names files that do not exist: ${missing.join(', ')}; fix or unset KUBECONFIG`,
      );
    }
    kc.loadFromDefault();
    source = 'env';
  } else if (
    env.KUBERNETES_SERVICE_HOST &&
    fs.existsSync(`${opts.inClusterPathPrefix ?? ''}${serviceAccountDir}/token`)
  ) {
    kc.loadFromCluster(opts.inClusterPathPrefix);
    source = 'in-cluster';
  } else {
    const home = path.join(os.homedir(), '.kube', 'config');
    if (!fs.existsSync(home)) {
      throw new Error(
        'no Kubernetes client configuration found: pass --kubeconfig PATH, set KUBECONFIG, ' +
          `run in a pod with a service account, or create ${home}`,
      );
    }
    kc.loadFromFile(home);
    source = 'home';
  }
  if (kc.getCurrentCluster() === null) {
    throw new Error(
      `the kubeconfig (from ${source}) has no current context with a cluster; set current-context`,
    );
  }
  return { kubeConfig: kc, source };
}

/** The cache key of an object: `namespace/name`, or `name` for cluster-scoped objects (client-go's convention). */
export function objectKey(obj: {
  metadata?: { name?: string | undefined; namespace?: string | undefined };
}): string {
  const name = obj.metadata?.name ?? '';
  const ns = obj.metadata?.namespace;
  return ns ? `${ns}/${name}` : name;
}

export function splitKey(key: string): { namespace?: string; name: string } {
  const slash = key.indexOf('/');
  return slash === -1 ? { name: key } : { namespace: key.slice(0, slash), name: key.slice(slash + 1) };
}

export interface ResourceRef {
  /** Empty or absent for the core group. */
  group?: string;
  version: string;
  plural: string;
  namespace?: string;
}

/** The collection URL path of a resource, e.g. `/apis/kubevirt.io/v1/namespaces/ns/virtualmachineinstances`. */
export function resourcePath(ref: ResourceRef): string {
  const base = ref.group ? `/apis/${ref.group}/${ref.version}` : `/api/${ref.version}`;
  const ns = ref.namespace ? `/namespaces/${encodeURIComponent(ref.namespace)}` : '';
  return `${base}${ns}/${ref.plural}`;
}

/**
 * Request options that set the patch Content-Type. Pass them as the generated API's second argument, e.g.
 * `api.patchNamespacedPod({ name, namespace, body }, mergePatchOptions())`. Never rely on the default: custom
 * resources reject strategic merge patch.
 */
export function mergePatchOptions(): ConfigurationOptions {
  return setHeaderOptions('Content-Type', PatchStrategy.MergePatch);
}

export function jsonPatchOptions(): ConfigurationOptions {
  return setHeaderOptions('Content-Type', PatchStrategy.JsonPatch);
}

/** Server-side apply; also pass `fieldManager` (one per service) and usually `force: true` in the request. */
export function applyPatchOptions(): ConfigurationOptions {
  return setHeaderOptions('Content-Type', PatchStrategy.ServerSideApply);
}

/** One RFC 6902 operation. A `test` op first makes a JSON patch conditional, like an optimistic lock. */
export type JsonPatchOperation =
  | { op: 'add' | 'replace' | 'test'; path: string; value: unknown }
  | { op: 'remove'; path: string }
  | { op: 'move' | 'copy'; from: string; path: string };

/** A JSON pointer from path segments, escaping `~` and `/` (label keys such as `kubevirt.io/created-by`). */
export function jsonPointer(...segments: (string | number)[]): string {
  return segments.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');
}

/** A merge patch body: a partial object; `null` deletes a field (RFC 7386). */
export type MergePatch<T> = { [K in keyof T]?: T[K] extends object ? MergePatch<T[K]> | null : T[K] | null };

/** The HTTP status of a failed API call (client-node's ApiException or a watch error), if it has one. */
export function apiErrorCode(err: unknown): number | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  // A DOMException (an aborted request) has a numeric code of its own that is not an HTTP status.
  if (err instanceof DOMException) return undefined;
  const e = err as { code?: unknown; statusCode?: unknown };
  if (typeof e.code === 'number') return e.code;
  if (typeof e.statusCode === 'number') return e.statusCode;
  return undefined;
}

export const isNotFound = (err: unknown): boolean => apiErrorCode(err) === 404;
export const isConflict = (err: unknown): boolean => apiErrorCode(err) === 409;
export const isAlreadyExists = (err: unknown): boolean => apiErrorCode(err) === 409;
export const isGone = (err: unknown): boolean => apiErrorCode(err) === 410;

/** A one-line description of an API error: status code, reason and the server's message when it sent a Status. */
export function describeApiError(err: unknown): string {
  const code = apiErrorCode(err);
  const body = (err as { body?: unknown } | null)?.body;
  let status: { reason?: string; message?: string } | undefined;
  if (typeof body === 'string') {
    try {
      status = JSON.parse(body) as typeof status;
    } catch {
      status = { message: body };
    }
  } else if (typeof body === 'object' && body !== null) {
    status = body;
  }
  const parts: string[] = [];
  if (code !== undefined) parts.push(`HTTP ${code}`);
  if (status?.reason) parts.push(status.reason);
  if (status?.message) parts.push(status.message);
  else if (err instanceof Error) parts.push(err.message);
  else if (parts.length === 0) parts.push(String(err));
  return parts.join(': ');
}
