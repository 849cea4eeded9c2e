// The cluster configuration every service works from: the KubeVirt custom resource's spec.configuration with
// KubeVirt's defaults filled in (pkg/virt-config/virt-config.go). Services run on DEFAULT_CLUSTER_CONFIG while the
// CR is absent and rebuild the config from it when it changes (DESIGN.md §4b).
import type { KubeVirt } from './types/kubevirt.ts';
import type { EvictionStrategy } from './types/vmi.ts';

export interface MigrationsConfig {
  parallelMigrationsPerCluster: number;
  parallelOutboundMigrationsPerNode: number;
  /** Bytes per second; 0 means unlimited. */
  bandwidthPerMigration: string | number;
  completionTimeoutPerGiB: number;
  progressTimeout: number;
  allowAutoConverge: boolean;
  allowPostCopy: boolean;
}

export interface ClusterConfig {
  /** Always software emulation (QEMU TCG), never /dev/kvm; launcher pods then request no devices.kubevirt.io/kvm. */
  useEmulation: boolean;
  featureGates: readonly string[];
  disabledFeatureGates: readonly string[];
  /** vCPUs per CPU the launcher pod requests when the VMI requests none. */
  cpuAllocationRatio: number;
  /** Percent: a launcher pod requests guest memory × 100 / memoryOvercommit. */
  memoryOvercommit: number;
  /** Node labels every launcher pod must match. */
  nodeSelectors: Readonly<Record<string, string>>;
  /** Guest CPU model when the VMI names none. */
  cpuModel: string;
  /** CPU request of a VMI that sets none, as a quantity. */
  cpuRequest: string | number;
  machineType: string;
  /** Globs of the machine types a VMI may ask for. */
  emulatedMachines: readonly string[];
  defaultArchitecture: string;
  /** The cluster-wide eviction strategy, when the CR sets one. */
  evictionStrategy: EvictionStrategy | undefined;
  defaultNetworkInterface: string;
  permitBridgeInterfaceOnPodNetwork: boolean;
  /** Multiplier of the computed launcher memory overhead, a decimal string ("1.5"), when set. */
  additionalGuestMemoryOverheadRatio: string | undefined;
  migrations: MigrationsConfig;
}

/** KubeVirt's defaults, which services use while no KubeVirt CR exists. */
export const DEFAULT_CLUSTER_CONFIG: ClusterConfig = Object.freeze({
  useEmulation: false,
  featureGates: [],
  disabledFeatureGates: [],
  cpuAllocationRatio: 10,
  memoryOvercommit: 100,
  nodeSelectors: {},
  cpuModel: 'host-model',
  cpuRequest: '100m',
  machineType: 'q35',
  emulatedMachines: ['q35*', 'pc-q35*'],
  defaultArchitecture: 'amd64',
  evictionStrategy: undefined,
  defaultNetworkInterface: 'bridge',
  permitBridgeInterfaceOnPodNetwork: true,
  additionalGuestMemoryOverheadRatio: undefined,
  migrations: Object.freeze({
    parallelMigrationsPerCluster: 5,
    parallelOutboundMigrationsPerNode: 2,
    bandwidthPerMigration: 0,
    completionTimeoutPerGiB: 150,
    progressTimeout: 150,
    allowAutoConverge: false,
    allowPostCopy: false,
  }),
});

function pick<T>(value: T | undefined, fallback: T): T {
  return value === undefined ? fallback : value;
}

/**
 * The ClusterConfig of a KubeVirt CR (or the defaults for undefined/null). Reads only fields of the expected type,
 * so a CR that has not been validated yet still yields a usable config; validateKubeVirt reports what is wrong.
 */
export function clusterConfigFrom(kubevirt: KubeVirt | null | undefined): ClusterConfig {
  const d = DEFAULT_CLUSTER_CONFIG;
  const c = kubevirt?.spec?.configuration;
  if (c === undefined || c === null || typeof c !== 'object') return d;
  const dev = typeof c.developerConfiguration === 'object' ? c.developerConfiguration : undefined;
  const net = typeof c.network === 'object' ? c.network : undefined;
  const mig = typeof c.migrations === 'object' ? c.migrations : undefined;
  const strings = (v: unknown): string[] | undefined =>
    Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  const positive = (v: unknown): number | undefined => (typeof v === 'number' && v > 0 ? v : undefined);
  const bool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
  const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
  const stringRecord = (v: unknown): Record<string, string> | undefined =>
    typeof v === 'object' &&
    v !== null &&
    !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === 'string')
      ? (v as Record<string, string>)
      : undefined;
  return {
    useEmulation: pick(bool(dev?.useEmulation), d.useEmulation),
    featureGates: pick(strings(dev?.featureGates), d.featureGates),
    disabledFeatureGates: pick(strings(dev?.disabledFeatureGates), d.disabledFeatureGates),
    cpuAllocationRatio: pick(positive(dev?.cpuAllocationRatio), d.cpuAllocationRatio),
    memoryOvercommit: pick(positive(dev?.memoryOvercommit), d.memoryOvercommit),
    nodeSelectors: pick(stringRecord(dev?.nodeSelectors), d.nodeSelectors),
    cpuModel: pick(str(c.cpuModel), d.cpuModel),
    cpuRequest:
      typeof c.cpuRequest === 'string' || typeof c.cpuRequest === 'number' ? c.cpuRequest : d.cpuRequest,
    machineType: pick(str(c.machineType), d.machineType),
    emulatedMachines: pick(strings(c.emulatedMachines), d.emulatedMachines),
    defaultArchitecture: d.defaultArchitecture,
    evictionStrategy: pick(
      typeof c.evictionStrategy === 'string' ? c.evictionStrategy : undefined,
      d.evictionStrategy,
    ),
    defaultNetworkInterface: pick(str(net?.defaultNetworkInterface), d.defaultNetworkInterface),
    permitBridgeInterfaceOnPodNetwork: pick(
      bool(net?.permitBridgeInterfaceOnPodNetwork),
      d.permitBridgeInterfaceOnPodNetwork,
    ),
    additionalGuestMemoryOverheadRatio: pick(
      str(c.additionalGuestMemoryOverheadRatio),
      d.additionalGuestMemoryOverheadRatio,
    ),
    migrations: {
      parallelMigrationsPerCluster: pick(
        positive(mig?.parallelMigrationsPerCluster),
        d.migrations.parallelMigrationsPerCluster,
      ),
      parallelOutboundMigrationsPerNode: pick(
        positive(mig?.parallelOutboundMigrationsPerNode),
        d.migrations.parallelOutboundMigrationsPerNode,
      ),
      bandwidthPerMigration:
        typeof mig?.bandwidthPerMigration === 'string' || typeof mig?.bandwidthPerMigration === 'number'
          ? mig.bandwidthPerMigration
          : d.migrations.bandwidthPerMigration,
      completionTimeoutPerGiB: pick(
        positive(mig?.completionTimeoutPerGiB),
        d.migrations.completionTimeoutPerGiB,
      ),
      progressTimeout: pick(positive(mig?.progressTimeout), d.migrations.progressTimeout),
      allowAutoConverge: pick(bool(mig?.allowAutoConverge), d.migrations.allowAutoConverge),
      allowPostCopy: pick(bool(mig?.allowPostCopy), d.migrations.allowPostCopy),
    },
  };
}

/** Gates KubeVirt ships as Beta: on unless disabledFeatureGates lists them (featuregate/active.go). */
export const BETA_FEATURE_GATES: readonly string[] = ['PasstBinding'];

/**
 * Whether a feature gate is on, by KubeVirt's rules: an alpha gate (every gate not in BETA_FEATURE_GATES) is on
 * when featureGates lists it, a beta gate unless it is listed in disabledFeatureGates; disabledFeatureGates wins.
 */
export function featureGateEnabled(config: ClusterConfig, gate: string): boolean {
  if (config.disabledFeatureGates.includes(gate)) return false;
  return BETA_FEATURE_GATES.includes(gate) || config.featureGates.includes(gate);
}

/** Whether a machine type matches one of the cluster's emulatedMachines globs (`*` and `?` wildcards). */
export function machineTypeAllowed(config: ClusterConfig, machineType: string): boolean {
  return config.emulatedMachines.some((glob) => {
    const pattern = glob
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replaceAll('*', '.*')
      .replaceAll('?', '.');
    return new RegExp(`^${pattern}$`).test(machineType);
  });
}
