// The cluster configuration virt-controller works from (DESIGN.md §4b): the KubeVirt custom resource in the install
// namespace, with KubeVirt's defaults while there is none. It is watched, so a change (useEmulation,
// cpuAllocationRatio, memoryOvercommit, feature gates, …) applies to every launcher pod rendered from then on,
// without a restart. The CR has no admission webhook (it would deadlock the install), so the leader validates it
// here and reports what is wrong in the CR's status: condition Degraded, True with the causes, False when valid.
import type { KubeConfig } from '@kubernetes/client-node';
import {
  describeApiError,
  objectKey,
  runWorkers,
  WorkQueue,
  type JsonPatchOperation,
  type Logger,
  type Registry,
} from '@kubevirt-ts/runtime';
import {
  clusterConfigFrom,
  DEFAULT_CLUSTER_CONFIG,
  validateKubeVirt,
  type ClusterConfig,
  type Condition,
  type KubeVirt,
} from '@kubevirt-ts/schema';
import { customCache, type Cache } from './informers.ts';
import type { KubeClient } from './kube.ts';
import { jsonEqual, rfc3339, timeMs } from './objects.ts';

export const DEGRADED = 'Degraded';
export const REASON_VALID = 'ConfigurationValid';
export const REASON_INVALID = 'InvalidConfiguration';
export const REASON_IGNORED = 'IgnoredDuplicate';

/** With several KubeVirt CRs in the namespace, the oldest (then the first by name) is the one in effect. */
export function activeKubeVirt(crs: readonly KubeVirt[]): KubeVirt | undefined {
  const live = crs.filter((c) => c.metadata?.deletionTimestamp === undefined);
  return [...live].sort((a, b) => {
    const ta = timeMs(a.metadata?.creationTimestamp) ?? 0;
    const tb = timeMs(b.metadata?.creationTimestamp) ?? 0;
    if (ta !== tb) return ta - tb;
    return (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '');
  })[0];
}

/** The Degraded condition a KubeVirt CR should carry. */
export function degradedCondition(cr: KubeVirt, active: KubeVirt | undefined, now: Date): Condition {
  const t = rfc3339(now);
  if (active !== undefined && active.metadata?.uid !== cr.metadata?.uid) {
    return {
      type: DEGRADED,
      status: 'True',
      reason: REASON_IGNORED,
      message:
        `KubeVirt ${active.metadata?.name ?? ''} in this namespace is older and is the one in effect; ` +
        'delete this one or merge its settings into that one',
      lastProbeTime: t,
      lastTransitionTime: t,
    };
  }
  const causes = validateKubeVirt(cr);
  if (causes.length === 0) {
    return {
      type: DEGRADED,
      status: 'False',
      reason: REASON_VALID,
      message: 'the configuration is valid and in effect',
      lastProbeTime: t,
      lastTransitionTime: t,
    };
  }
  return {
    type: DEGRADED,
    status: 'True',
    reason: REASON_INVALID,
    message:
      `${causes.map((c) => `${c.field}: ${c.message}`).join('; ')}. ` +
      'Fields that are invalid are ignored (their defaults apply); fix them in the KubeVirt CR.',
    lastProbeTime: t,
    lastTransitionTime: t,
  };
}

/**
 * The JSON patch of /status that puts `condition` and observedGeneration on the CR, guarded by a `test` of the
 * conditions it replaces; undefined when the status already says so.
 */
export function kubevirtStatusPatch(cr: KubeVirt, condition: Condition): JsonPatchOperation[] | undefined {
  const status = cr.status;
  const current = status?.conditions ?? [];
  const existing = current.find((c) => c.type === condition.type);
  const generation = cr.metadata?.generation;
  const sameCondition =
    existing !== undefined &&
    existing.status === condition.status &&
    existing.reason === condition.reason &&
    existing.message === condition.message;
  if (sameCondition && (generation === undefined || status?.observedGeneration === generation))
    return undefined;
  const next = sameCondition ? current : [...current.filter((c) => c.type !== condition.type), condition];
  if (status === undefined) {
    return [
      {
        op: 'add',
        path: '/status',
        value: { conditions: next, ...(generation !== undefined ? { observedGeneration: generation } : {}) },
      },
    ];
  }
  const ops: JsonPatchOperation[] = [];
  if (status.conditions === undefined) ops.push({ op: 'add', path: '/status/conditions', value: next });
  else if (!jsonEqual(current, next)) {
    ops.push(
      { op: 'test', path: '/status/conditions', value: current },
      { op: 'replace', path: '/status/conditions', value: next },
    );
  }
  if (generation !== undefined && status.observedGeneration !== generation) {
    ops.push({
      op: status.observedGeneration === undefined ? 'add' : 'replace',
      path: '/status/observedGeneration',
      value: generation,
    });
  }
  return ops;
}

export interface ClusterConfigOptions {
  kubeConfig: KubeConfig;
  client: KubeClient;
  /** The install namespace, which holds the KubeVirt CR. */
  namespace: string;
  log: Logger;
  registry?: Registry | undefined;
  now?: () => Date;
}

export class ClusterConfigSource {
  readonly cache: Cache<KubeVirt>;
  readonly #o: ClusterConfigOptions;
  readonly #log: Logger;
  readonly #listeners = new Set<(config: ClusterConfig) => void>();
  #config: ClusterConfig = DEFAULT_CLUSTER_CONFIG;
  #source = 'defaults';

  constructor(opts: ClusterConfigOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'cluster-config' });
    this.cache = customCache<KubeVirt>(
      { kubeConfig: opts.kubeConfig, client: opts.client, log: opts.log },
      'KubeVirt',
      opts.namespace,
    );
    this.cache.on({
      add: () => this.#refresh(),
      update: () => this.#refresh(),
      delete: () => this.#refresh(),
    });
  }

  /** The configuration in effect now. */
  current(): ClusterConfig {
    return this.#config;
  }

  /** Where the configuration comes from: `defaults` or `namespace/name` of the KubeVirt CR. */
  source(): string {
    return this.#source;
  }

  /** Calls `listener` with every new configuration; returns a function that removes it. */
  onChange(listener: (config: ClusterConfig) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #refresh(): void {
    const active = activeKubeVirt(this.cache.list());
    const config = clusterConfigFrom(active);
    const source = active === undefined ? 'defaults' : objectKey(active);
    if (jsonEqual(config, this.#config) && source === this.#source) return;
    this.#config = config;
    this.#source = source;
    this.#log.info(
      {
        source,
        useEmulation: config.useEmulation,
        cpuAllocationRatio: config.cpuAllocationRatio,
        memoryOvercommit: config.memoryOvercommit,
        featureGates: config.featureGates,
      },
      active === undefined
        ? 'no KubeVirt CR; running on the built-in defaults'
        : 'cluster configuration changed',
    );
    for (const l of this.#listeners) l(config);
  }

  /**
   * Keeps the CRs' status current until `signal` aborts. The caller starts `cache.informer` and waits for it to
   * sync first (with the controllers' informers, so the first pods are rendered from the CR, not the defaults).
   */
  async run(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({
      name: 'kubevirt-config',
      ...(this.#o.registry ? { registry: this.#o.registry } : {}),
    });
    const informer = this.cache.informer;
    const remove = informer.enqueueTo(queue);
    try {
      this.#refresh();
      for (const key of informer.keys()) queue.add(key);
      await runWorkers(queue, 1, (key) => this.#reconcile(key), signal, { log: this.#log });
    } finally {
      remove();
    }
  }

  async #reconcile(key: string): Promise<void> {
    const cr = this.cache.get(key);
    if (cr === undefined) return;
    const now = this.#o.now?.() ?? new Date();
    const condition = degradedCondition(cr, activeKubeVirt(this.cache.list()), now);
    const ops = kubevirtStatusPatch(cr, condition);
    if (ops === undefined || ops.length === 0) return;
    try {
      await this.#o.client.jsonPatchCustom(
        'KubeVirt',
        cr.metadata?.namespace ?? '',
        cr.metadata?.name ?? '',
        ops,
        true,
      );
      if (condition.status === 'True') {
        this.#log.warn(
          {
            kind: 'KubeVirt',
            namespace: cr.metadata?.namespace,
            name: cr.metadata?.name,
            reason: condition.reason,
          },
          condition.message ?? '',
        );
      }
    } catch (err) {
      throw new Error(`cannot write the status of KubeVirt ${key}: ${describeApiError(err)}`, { cause: err });
    }
  }
}
