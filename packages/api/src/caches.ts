// The admission context virt-api's webhooks consult: informer caches of instancetypes and preferences (a VM's
// references are checked against them) and of the KubeVirt CR (the cluster configuration), plus the identities of
// kubevirt-ts's own service accounts. Lookups are map reads, so no review waits for the API server.
import {
  CustomObjectsApi,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import {
  createInformer,
  describeApiError,
  isNotFound,
  resourcePath,
  type Informer,
  type Logger,
} from '@kubevirt-ts/runtime';
import {
  DEFAULT_CLUSTER_CONFIG,
  clusterConfigFrom,
  kindByName,
  type ClusterConfig,
  type InstancetypeKind,
  type InstancetypeSpec,
  type KubeVirt,
  type PreferenceKind,
  type PreferenceSpec,
} from '@kubevirt-ts/schema';
import type { AdmissionContext, Lookup } from './admission/admitters.ts';

interface WithSpec<S> extends KubernetesObject {
  spec?: S;
}

export interface ClusterCachesOptions {
  kubeConfig: KubeConfig;
  /** Install namespace: where the KubeVirt CR lives. */
  namespace: string;
  /** Service accounts that may write VMI status and spec: `name` (in `namespace`) or `namespace:name`. */
  privilegedServiceAccounts: readonly string[];
  log: Logger;
}

export class ClusterCaches implements AdmissionContext {
  readonly #privileged: ReadonlySet<string>;
  readonly #log: Logger;
  readonly #informers: Record<InstancetypeKind | PreferenceKind, Informer<WithSpec<unknown>>>;
  readonly #kubevirt: Informer<WithSpec<KubeVirt['spec']>>;
  readonly #custom: CustomObjectsApi;
  #config: ClusterConfig = DEFAULT_CLUSTER_CONFIG;

  constructor(opts: ClusterCachesOptions) {
    this.#log = opts.log.child({ component: 'caches' });
    this.#privileged = new Set(
      opts.privilegedServiceAccounts.map((sa) =>
        sa.includes(':') ? `system:serviceaccount:${sa}` : `system:serviceaccount:${opts.namespace}:${sa}`,
      ),
    );
    const custom = opts.kubeConfig.makeApiClient(CustomObjectsApi);
    this.#custom = custom;
    const informerFor = <T extends KubernetesObject>(
      kind: Parameters<typeof kindByName>[0],
      namespace?: string,
    ) => {
      const info = kindByName(kind);
      const ref = { group: info.group, version: info.version, plural: info.plural };
      return createInformer<T>({
        name: info.plural,
        kubeConfig: opts.kubeConfig,
        path: resourcePath(namespace === undefined ? ref : { ...ref, namespace }),
        list: async (o) =>
          (namespace === undefined
            ? await custom.listClusterCustomObject({ ...ref, ...o })
            : await custom.listNamespacedCustomObject({
                ...ref,
                namespace,
                ...o,
              })) as KubernetesListObject<T>,
        log: opts.log,
      });
    };
    this.#informers = {
      VirtualMachineInstancetype: informerFor('VirtualMachineInstancetype'),
      VirtualMachineClusterInstancetype: informerFor('VirtualMachineClusterInstancetype'),
      VirtualMachinePreference: informerFor('VirtualMachinePreference'),
      VirtualMachineClusterPreference: informerFor('VirtualMachineClusterPreference'),
    };
    this.#kubevirt = informerFor<WithSpec<KubeVirt['spec']>>('KubeVirt', opts.namespace);
    const refresh = (): void => this.#refreshConfig();
    this.#kubevirt.addHandlers({ add: refresh, update: refresh, delete: refresh });
  }

  get #all(): Informer<KubernetesObject>[] {
    return [...Object.values(this.#informers), this.#kubevirt] as Informer<KubernetesObject>[];
  }

  start(): void {
    for (const i of this.#all) i.start();
    // One line when every cache holds its first list: until then admission of instancetype/preference references
    // answers "retry", and whoever waits for virt-api (readiness, tests) can wait for exactly this.
    void Promise.all(this.#all.map((i) => i.synced)).then(() =>
      this.#log.info({ caches: this.#all.map((i) => i.name) }, 'all caches synced'),
    );
  }

  stop(): Promise<void> {
    return Promise.all(this.#all.map((i) => i.stop())).then(() => undefined);
  }

  /** true when every cache holds a first list, else the names still missing. */
  synced(): true | string {
    const missing = this.#all.filter((i) => !i.hasSynced()).map((i) => i.name);
    return missing.length === 0 ? true : `caches not synced yet: ${missing.join(', ')}`;
  }

  #refreshConfig(): void {
    const crs = this.#kubevirt.list();
    // One KubeVirt CR per install; with several, the oldest wins, as the controller decides too.
    const sorted = [...crs].sort((a, b) =>
      String(a.metadata?.creationTimestamp ?? '').localeCompare(String(b.metadata?.creationTimestamp ?? '')),
    );
    try {
      // client-node types timestamps as Date; on the wire (and in the schema's types) they are strings.
      this.#config = clusterConfigFrom(sorted[0] as unknown as KubeVirt | undefined);
      this.#log.info({ kubevirt: sorted[0]?.metadata?.name ?? null }, 'cluster configuration updated');
    } catch (err) {
      this.#log.error({ err }, 'the KubeVirt CR cannot be read; keeping the previous configuration');
    }
  }

  config(): ClusterConfig {
    return this.#config;
  }

  isPrivileged(username: string): boolean {
    return this.#privileged.has(username);
  }

  #lookup<S>(
    kind: InstancetypeKind | PreferenceKind,
    namespace: string | undefined,
    name: string,
  ): Lookup<S> {
    const informer = this.#informers[kind];
    if (!informer.hasSynced())
      return { state: 'unavailable', reason: `the ${informer.name} cache is not synced` };
    const namespaced = kind === 'VirtualMachineInstancetype' || kind === 'VirtualMachinePreference';
    const obj = informer.get(namespaced ? `${namespace ?? ''}/${name}` : name);
    if (obj === undefined) return { state: 'missing' };
    return { state: 'found', spec: (obj.spec ?? {}) as S };
  }

  instancetype(
    kind: InstancetypeKind,
    namespace: string | undefined,
    name: string,
  ): Lookup<InstancetypeSpec> {
    return this.#lookup(kind, namespace, name);
  }

  preference(kind: PreferenceKind, namespace: string | undefined, name: string): Lookup<PreferenceSpec> {
    return this.#lookup(kind, namespace, name);
  }

  async confirm(
    kind: InstancetypeKind | PreferenceKind,
    namespace: string | undefined,
    name: string,
  ): Promise<Lookup<InstancetypeSpec | PreferenceSpec>> {
    const info = kindByName(kind);
    const ref = { group: info.group, version: info.version, plural: info.plural, name };
    try {
      const obj = (
        info.scope === 'Namespaced'
          ? await this.#custom.getNamespacedCustomObject({ ...ref, namespace: namespace ?? '' })
          : await this.#custom.getClusterCustomObject(ref)
      ) as WithSpec<InstancetypeSpec | PreferenceSpec>;
      this.#log.debug({ kind, namespace, name }, 'reference found by a live read before the cache had it');
      return { state: 'found', spec: obj.spec ?? {} };
    } catch (err) {
      if (isNotFound(err)) return { state: 'missing' };
      return { state: 'unavailable', reason: `reading ${kind} ${name}: ${describeApiError(err)}` };
    }
  }

  now(): Date {
    return new Date();
  }
}
