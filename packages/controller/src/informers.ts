// Informers for the kinds virt-controller watches. The runtime's Informer is typed against client-node's
// KubernetesObject, whose metadata types timestamps as Date; the schema package types our kinds as they are on
// the wire (strings), so custom kinds are cached as KubernetesObject and typed at the edge by `Cache`.
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import {
  createInformer,
  resourcePath,
  type Informer,
  type InformerHandlers,
  type Logger,
} from '@kubevirt-ts/runtime';
import { kindByName, type KindName } from '@kubevirt-ts/schema';
import type { KubeClient } from './kube.ts';

/** A typed view of an informer's cache. */
export class Cache<T> {
  readonly informer: Informer<KubernetesObject>;

  constructor(informer: Informer<KubernetesObject>) {
    this.informer = informer;
  }

  get(key: string): T | undefined {
    return this.informer.get(key) as T | undefined;
  }

  list(namespace?: string): T[] {
    return this.informer.list(namespace) as unknown as T[];
  }

  /** Handlers that receive the typed object; they must only enqueue (or observe expectations). */
  on(handlers: InformerHandlers<T>): () => void {
    return this.informer.addHandlers(handlers as unknown as InformerHandlers<KubernetesObject>);
  }
}

export interface InformerScope {
  kubeConfig: KubeConfig;
  client: KubeClient;
  log: Logger;
  /** Watch only this namespace (tests, single-namespace installs); all namespaces when undefined. */
  namespace?: string | undefined;
  resyncPeriodMs?: number | undefined;
}

function common(scope: InformerScope) {
  return {
    kubeConfig: scope.kubeConfig,
    log: scope.log,
    ...(scope.resyncPeriodMs !== undefined ? { resyncPeriodMs: scope.resyncPeriodMs } : {}),
  };
}

/** An informer on a namespaced kind of ours (VM, VMI, VMIRS, KubeVirt). */
export function customCache<T>(scope: InformerScope, kind: KindName, namespace = scope.namespace): Cache<T> {
  const info = kindByName(kind);
  const ref = { group: info.group, version: info.version, plural: info.plural };
  const custom = scope.client.custom;
  return new Cache<T>(
    createInformer<KubernetesObject>({
      ...common(scope),
      name: info.singular,
      path: resourcePath({ ...ref, ...(namespace !== undefined ? { namespace } : {}) }),
      list: async (o) =>
        (namespace !== undefined
          ? await custom.listNamespacedCustomObject({ ...ref, namespace, ...o })
          : await custom.listClusterCustomObject({ ...ref, ...o })) as KubernetesListObject<KubernetesObject>,
    }),
  );
}

/** An informer on pods with `labelSelector` (launcher pods: kubevirt.io=virt-launcher). */
export function podCache<T>(scope: InformerScope, labelSelector: string): Cache<T> {
  const core = scope.client.core;
  const ns = scope.namespace;
  return new Cache<T>(
    createInformer<KubernetesObject>({
      ...common(scope),
      name: 'pod',
      path: resourcePath({ version: 'v1', plural: 'pods', ...(ns !== undefined ? { namespace: ns } : {}) }),
      labelSelector,
      list: async (o) =>
        ns !== undefined
          ? await core.listNamespacedPod({ namespace: ns, ...o })
          : await core.listPodForAllNamespaces({ ...o }),
    }),
  );
}

export function pvcCache<T>(scope: InformerScope): Cache<T> {
  const core = scope.client.core;
  const ns = scope.namespace;
  return new Cache<T>(
    createInformer<KubernetesObject>({
      ...common(scope),
      name: 'persistentvolumeclaim',
      path: resourcePath({
        version: 'v1',
        plural: 'persistentvolumeclaims',
        ...(ns !== undefined ? { namespace: ns } : {}),
      }),
      list: async (o) =>
        ns !== undefined
          ? await core.listNamespacedPersistentVolumeClaim({ namespace: ns, ...o })
          : await core.listPersistentVolumeClaimForAllNamespaces({ ...o }),
    }),
  );
}

/** An informer on nodes, all of them or those `labelSelector` selects. */
export function nodeCache<T>(scope: InformerScope, labelSelector?: string): Cache<T> {
  const core = scope.client.core;
  return new Cache<T>(
    createInformer<KubernetesObject>({
      ...common(scope),
      name: 'node',
      path: resourcePath({ version: 'v1', plural: 'nodes' }),
      ...(labelSelector !== undefined ? { labelSelector } : {}),
      list: async (o) => core.listNode({ ...o }),
    }),
  );
}

/** ControllerRevisions the VM controller wrote (selected by their VM-UID label). */
export function revisionCache<T>(scope: InformerScope, labelSelector: string): Cache<T> {
  const apps = scope.client.apps;
  const ns = scope.namespace;
  return new Cache<T>(
    createInformer<KubernetesObject>({
      ...common(scope),
      name: 'controllerrevision',
      path: resourcePath({
        group: 'apps',
        version: 'v1',
        plural: 'controllerrevisions',
        ...(ns !== undefined ? { namespace: ns } : {}),
      }),
      labelSelector,
      list: async (o) =>
        ns !== undefined
          ? await apps.listNamespacedControllerRevision({ namespace: ns, ...o })
          : await apps.listControllerRevisionForAllNamespaces({ ...o }),
    }),
  );
}
