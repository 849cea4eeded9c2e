// What every controller of virt-controller shares: the caches, the API client, events, expectations, metrics and
// the cluster configuration, bundled so each controller's constructor takes one object.
import type { V1ControllerRevision, V1Node, V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import type { Logger } from '@kubevirt-ts/runtime';
import type { ClusterConfig, VirtualMachine, VirtualMachineInstanceReplicaSet } from '@kubevirt-ts/schema';
import type { EventRecorder } from './events.ts';
import type { Cache } from './informers.ts';
import type { KubeClient } from './kube.ts';
import type { ControllerMetrics } from './metrics.ts';
import type { VMI } from './objects.ts';

export interface Caches {
  vmis: Cache<VMI>;
  vms: Cache<VirtualMachine>;
  replicaSets: Cache<VirtualMachineInstanceReplicaSet>;
  pods: Cache<V1Pod>;
  pvcs: Cache<V1PersistentVolumeClaim>;
  nodes: Cache<V1Node>;
  revisions: Cache<V1ControllerRevision>;
}

export interface ControllerKit {
  caches: Caches;
  client: KubeClient;
  recorder: EventRecorder;
  metrics: ControllerMetrics;
  log: Logger;
  config: () => ClusterConfig;
  now: () => Date;
}

/**
 * How soon to look again after a write lost an optimistic-concurrency race (409 Conflict): the winner's watch event
 * brings the key back anyway; this is the fallback. Such a race is normal, so it is no reconcile error.
 */
export const CONFLICT_REQUEUE_MS = 1000;

/** A failure worth retrying with backoff after the status that reports it was written. */
export class RetryableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RetryableError';
  }
}
