// KubeVirt (kubevirt.io/v1): the install/configuration custom resource. kubevirt-ts installs with its Helm chart,
// so the install knobs of KubeVirt's operator are known-but-unsupported; the runtime configuration that DESIGN.md
// §4b lists is read by every service (config.ts turns it into a ClusterConfig).
import Type, { type Static } from 'typebox';
import {
  arrayOf,
  bool,
  enumOf,
  int,
  looseObject,
  notYet,
  obj,
  opt,
  quantity,
  str,
  stringMap,
} from './builders.ts';
import { Condition, ObjectMeta, PullPolicy } from './k8s.ts';
import { EvictionStrategy } from './vmi.ts';

const CHART = 'kubevirt-ts installs with its Helm chart; set this in the chart values';

export const DeveloperConfiguration = obj(
  {
    useEmulation: opt(bool('Always use software emulation (QEMU TCG), never /dev/kvm.')),
    featureGates: opt(arrayOf(str(), 'Feature gates to enable (e.g. HostDisk).')),
    disabledFeatureGates: opt(arrayOf(str(), 'Feature gates to disable.')),
    cpuAllocationRatio: opt(
      Type.Integer({ minimum: 1, description: 'vCPUs per requested CPU of the launcher pod (default 10).' }),
    ),
    memoryOvercommit: opt(
      Type.Integer({
        minimum: 1,
        description: 'Percent: the pod requests guest memory × 100 / memoryOvercommit (default 100).',
      }),
    ),
    nodeSelectors: opt(stringMap('Node labels every launcher pod must match.')),
    logVerbosity: notYet(looseObject(), CHART),
    pvcTolerateLessSpaceUpToPercent: notYet(int()),
    minimumReservePVCBytes: notYet(int()),
    minimumClusterTSCFrequency: notYet(int()),
    diskVerification: notYet(looseObject()),
    clusterProfiler: notYet(Type.Boolean()),
  },
  'Developer and tuning settings.',
);

export const MigrationConfiguration = obj(
  {
    parallelMigrationsPerCluster: opt(Type.Integer({ minimum: 1, description: 'Default 5.' })),
    parallelOutboundMigrationsPerNode: opt(Type.Integer({ minimum: 1, description: 'Default 2.' })),
    bandwidthPerMigration: opt(quantity('Bandwidth cap per migration; 0 means unlimited (default).')),
    completionTimeoutPerGiB: opt(
      Type.Integer({ minimum: 0, description: 'Seconds per GiB of guest memory (default 150).' }),
    ),
    progressTimeout: opt(
      Type.Integer({ minimum: 0, description: 'Seconds without progress before aborting (default 150).' }),
    ),
    allowAutoConverge: opt(bool('Throttle the guest CPU so a migration converges (default false).')),
    allowPostCopy: opt(bool('Allow post-copy migration (default false).')),
    nodeDrainTaintKey: notYet(str()),
    unsafeMigrationOverride: notYet(Type.Boolean()),
    allowWorkloadDisruption: notYet(Type.Boolean()),
    disableTLS: notYet(Type.Boolean()),
    network: notYet(str(), 'dedicated migration networks'),
    matchSELinuxLevelOnMigration: notYet(Type.Boolean()),
    maxDowntimeMs: notYet(int()),
    utilityVolumesTimeout: notYet(int()),
  },
  'Live migration settings.',
);

export const NetworkConfiguration = obj(
  {
    defaultNetworkInterface: opt(
      enumOf(['bridge', 'masquerade', 'passt'], {
        description:
          'Binding of the pod network interface KubeVirt adds by default (not added by kubevirt-ts yet).',
      }),
    ),
    permitBridgeInterfaceOnPodNetwork: opt(
      bool('Allow the bridge binding on the pod network (default true).'),
    ),
    permitSlirpInterface: notYet(Type.Boolean(), 'discontinued in KubeVirt'),
    binding: notYet(Type.Record(Type.String(), looseObject()), 'network binding plugins'),
  },
  'Network settings.',
);

export const KubeVirtConfiguration = obj(
  {
    developerConfiguration: opt(DeveloperConfiguration),
    migrations: opt(MigrationConfiguration),
    network: opt(NetworkConfiguration),
    cpuModel: opt(str('Default guest CPU model (default host-model).')),
    cpuRequest: opt(quantity('Default CPU request of a VMI that sets none.')),
    machineType: opt(str('Default machine type (default q35).')),
    emulatedMachines: opt(arrayOf(str(), 'Machine types VMIs may ask for (globs; default q35*, pc-q35*).')),
    evictionStrategy: opt(EvictionStrategy),
    additionalGuestMemoryOverheadRatio: opt(
      str('Multiplier (a decimal string, e.g. "1.5") of the computed launcher memory overhead.'),
    ),
    imagePullPolicy: notYet(PullPolicy, CHART),
    ovmfPath: notYet(str(), 'EFI firmware'),
    selinuxLauncherType: notYet(str()),
    defaultRuntimeClass: notYet(str()),
    smbios: notYet(looseObject()),
    architectureConfiguration: notYet(looseObject()),
    supportContainerResources: notYet(arrayOf(looseObject())),
    supportedGuestAgentVersions: notYet(arrayOf(str())),
    memBalloonStatsPeriod: notYet(int()),
    permittedHostDevices: notYet(looseObject()),
    mediatedDevicesConfiguration: notYet(looseObject()),
    minCPUModel: notYet(str()),
    obsoleteCPUModels: notYet(Type.Record(Type.String(), Type.Boolean())),
    virtualMachineInstancesPerNode: notYet(int()),
    apiConfiguration: notYet(looseObject()),
    webhookConfiguration: notYet(looseObject()),
    controllerConfiguration: notYet(looseObject()),
    handlerConfiguration: notYet(looseObject()),
    tlsConfiguration: notYet(looseObject()),
    seccompConfiguration: notYet(looseObject()),
    vmStateStorageClass: notYet(str()),
    virtualMachineOptions: notYet(looseObject()),
    ksmConfiguration: notYet(looseObject()),
    autoCPULimitNamespaceLabelSelector: notYet(looseObject()),
    liveUpdateConfiguration: notYet(looseObject(), 'CPU and memory hotplug'),
    vmRolloutStrategy: notYet(enumOf(['Stage', 'LiveUpdate'])),
    commonInstancetypesDeployment: notYet(looseObject()),
    virtTemplateDeployment: notYet(looseObject()),
    instancetype: notYet(looseObject()),
    hypervisors: notYet(arrayOf(looseObject())),
    changedBlockTrackingLabelSelectors: notYet(looseObject()),
    persistentReservationConfiguration: notYet(looseObject()),
    confidentialCompute: notYet(looseObject()),
    roleAggregationStrategy: notYet(str()),
  },
  'Cluster-wide configuration of VMs.',
);
export type KubeVirtConfiguration = Static<typeof KubeVirtConfiguration>;

export const KubeVirtSpec = obj(
  {
    configuration: opt(KubeVirtConfiguration),
    imageTag: notYet(str(), CHART),
    imageRegistry: notYet(str(), CHART),
    imagePullPolicy: notYet(PullPolicy, CHART),
    imagePullSecrets: notYet(arrayOf(looseObject()), CHART),
    monitorNamespace: notYet(str(), CHART),
    serviceMonitorNamespace: notYet(str(), CHART),
    monitorAccount: notYet(str(), CHART),
    workloadUpdateStrategy: notYet(looseObject()),
    uninstallStrategy: notYet(enumOf(['RemoveWorkloads', 'BlockUninstallIfWorkloadsExist']), CHART),
    certificateRotateStrategy: notYet(looseObject()),
    productVersion: notYet(str(), CHART),
    productName: notYet(str(), CHART),
    productComponent: notYet(str(), CHART),
    synchronizationPort: notYet(str()),
    infra: notYet(looseObject(), CHART),
    workloads: notYet(looseObject(), CHART),
    customizeComponents: notYet(looseObject(), CHART),
  },
  'Configuration of kubevirt-ts (KubeVirt-compatible).',
);
export type KubeVirtSpec = Static<typeof KubeVirtSpec>;

export const KubeVirtStatus = Type.Object({
  phase: opt(enumOf(['Deploying', 'Deployed', 'Deleting', 'Deleted'])),
  conditions: opt(arrayOf(Condition)),
  observedGeneration: opt(int()),
  operatorVersion: opt(str()),
  observedKubeVirtVersion: opt(str()),
  observedKubeVirtRegistry: opt(str()),
  targetKubeVirtVersion: opt(str()),
  targetKubeVirtRegistry: opt(str()),
  observedDeploymentConfig: opt(str()),
  observedDeploymentID: opt(str()),
  targetDeploymentConfig: opt(str()),
  targetDeploymentID: opt(str()),
  outdatedVirtualMachineInstanceWorkloads: opt(int()),
  defaultArchitecture: opt(str()),
  generations: opt(arrayOf(looseObject())),
  synchronizationAddresses: opt(arrayOf(str())),
});
export type KubeVirtStatus = Static<typeof KubeVirtStatus>;

export const KubeVirt = Type.Object({
  apiVersion: opt(str()),
  kind: opt(str()),
  metadata: opt(ObjectMeta),
  spec: KubeVirtSpec,
  status: opt(KubeVirtStatus),
});
export type KubeVirt = Static<typeof KubeVirt>;
