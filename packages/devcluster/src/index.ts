// @kubevirt-ts/devcluster: a real local Kubernetes for tests, development and demos. The CLI is src/cli.ts; this
// entry exports the pieces other packages and scripts use. Test helpers: '@kubevirt-ts/devcluster/testing'.
export {
  clusterEnv,
  clusterStatus,
  down,
  execInCluster,
  loadKubeConfig,
  readClusterState,
  requireRunning,
  up,
  type ClusterStatus,
  type DownOptions,
  type UpOptions,
  type UpResult,
} from './cluster.ts';
export {
  ensureBinaries,
  HELM_SOURCE,
  KUBERNETES_COMMANDS,
  pinnedVersions,
  type Binaries,
} from './binaries.ts';
export { DevclusterError } from './errors.ts';
export { expose, exposeManifests, ipv4InCidr, type ExposeOptions } from './expose.ts';
export {
  defaultCacheRoot,
  defaultStateDir,
  ENV,
  NETWORK,
  PORTS,
  SERVICE_ACCOUNTS,
  SERVICE_NAMESPACE,
  type ServiceAccountName,
} from './layout.ts';
export {
  createCertificateAuthority,
  issueCertificate,
  loadCertificateAuthority,
  type CertAndKey,
  type CertificateAuthority,
  type CertRequest,
} from './pki.ts';
export type { ClusterState, ComponentSpec, ComponentStatus, SupervisorStatus } from './spec.ts';
// Nodes (devcluster part 2): their layout, the image store, and the device-plugin API pieces tests reuse.
export { nodeIdentity, nodePaths, podVolumeDir, type NodeIdentity, type NodePaths } from './node/layout.ts';
export { DEFAULT_NODE_COUNT, STATIC_STORAGE_CLASS, type NodesState, type NodeSummary } from './node/setup.ts';
export {
  ensureTestGuestImage,
  importStoreImage,
  resolveImage,
  TEST_GUEST_REPOSITORY,
} from './node/images.ts';
export { DeviceManager, type Allocation } from './node/deviceplugin/manager.ts';
export { healthyDevices, SampleDevicePlugin } from './node/deviceplugin/sample.ts';
