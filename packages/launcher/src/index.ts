// @kubevirt-ts/launcher: virt-launcher (src/main.ts is the process). The library exports are what other packages and
// tools may reuse: the pure VMI → domain XML converter, the domain JSON the launcher reports, the libvirt interface,
// the capability cache and the pod sandbox used to run a launcher outside a pod.
export {
  ConversionError,
  DEFAULT_GRACE_PERIOD_SECONDS,
  DEFAULT_MACHINE_TYPE,
  GUEST_AGENT_CHANNEL,
  KUBEVIRT_METADATA_NS,
  convertVMIToDomain,
  domainName,
} from './converter/convert.ts';
export type { ConvertedDomain, ConverterContext, OvmfFirmware, PreparedDisk } from './converter/convert.ts';
export type {
  DomainJson,
  GracePeriodMetadata,
  GuestAgentInfo,
  KubevirtMetadata,
  VMIIdentity,
} from './domain.ts';
export type {
  DomainReason,
  DomainState,
  DomainStatus,
  Hypervisor,
  HypervisorEvent,
  TypedParams,
} from './hypervisor.ts';
export { LibvirtHypervisor } from './libvirt/client.ts';
export {
  capabilitiesKey,
  defaultCapabilitiesCacheRoot,
  ensureCapabilityCache,
} from './capabilities-cache.ts';
export { LIBVIRT_PRIVATE_DIRS, sandboxCommand } from './sandbox.ts';
export type { SandboxBind, SandboxOptions } from './sandbox.ts';
export { Launcher, NOTIFY_SOCKET } from './launcher.ts';
export type { LauncherOptions, LauncherTimings } from './launcher.ts';
export { INIT_SOCKET, READY_SOCKET } from './server.ts';
