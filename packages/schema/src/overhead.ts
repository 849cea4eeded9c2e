// Memory overhead of a launcher pod: what the pod needs beside the guest's RAM (the launcher, its libvirt daemons,
// QEMU's own allocations, page tables), added to the pod's memory request and limit so the scheduler and the
// kernel's OOM killer account for it.
//
// The constants are KubeVirt's (pkg/hypervisor/kvm/hypervisorbackend.go, GetMemoryOverhead; the per-process
// figures are `ps` RSS readings KubeVirt took, see kubevirt/kubevirt#7264 and #8011). They describe KubeVirt's
// processes (Go virt-launcher, virtqemud), not ours: replace them with kubevirt-ts's own measured constants once
// the launcher benchmark exists (DESIGN.md §7 aims at < 100 MiB beside QEMU).
import { DEFAULT_CLUSTER_CONFIG, type ClusterConfig } from './config.ts';
import { formatBytes, formatCpu, parseQuantity, quantityCeil } from './quantity.ts';
import type { VirtualMachineInstanceSpec } from './types/vmi.ts';

const Mi = 1024 * 1024;

/** KubeVirt's per-pod constants, bytes. */
export const MEMORY_OVERHEAD = Object.freeze({
  /** virt-launcher-monitor, the process that supervises virt-launcher. */
  launcherMonitor: 25 * Mi,
  /** virt-launcher itself. */
  launcher: 100 * Mi,
  /** virtlogd, which captures QEMU's and the serial console's output. */
  virtlogd: 25 * Mi,
  /** The per-pod libvirt daemon (virtqemud in KubeVirt, libvirtd here). */
  libvirtDaemon: 40 * Mi,
  /** QEMU's own allocations beyond guest RAM and page tables. */
  qemu: 50 * Mi,
  /** Per vCPU: QEMU's vCPU thread stacks and KVM's per-vCPU structures. */
  perVcpu: 8 * Mi,
  /** The I/O thread QEMU always runs. */
  ioThread: 8 * Mi,
  /** Video RAM of the graphics device, attached unless autoattachGraphicsDevice is false. */
  video: 32 * Mi,
  /** passt, for a VMI with a passtBinding interface: KubeVirt's figure for passt forwarding every port. */
  passt: 250 * Mi,
  /** Guaranteed QoS (requests equal limits): KubeVirt reserves this much more for it. */
  guaranteedQoS: 100 * Mi,
  /** Page tables: one byte per this many bytes of guest memory. */
  pageTableDivisor: 512,
});

function vcpuCount(spec: VirtualMachineInstanceSpec): number {
  const cpu = spec.domain.cpu;
  const counts = [cpu?.sockets, cpu?.cores, cpu?.threads];
  if (counts.some((c) => c !== undefined && c !== 0)) {
    return counts.reduce<number>((n, c) => n * Math.max(c ?? 1, 1), 1);
  }
  // No topology (not defaulted yet): the cpu limit, else the request, as KubeVirt counts them.
  const resources = spec.domain.resources;
  return Math.max(quantityCeil(resources?.limits?.cpu) ?? quantityCeil(resources?.requests?.cpu) ?? 1, 1);
}

function guestMemoryBytes(spec: VirtualMachineInstanceSpec): number {
  const resources = spec.domain.resources;
  return (
    parseQuantity(resources?.requests?.memory) ??
    parseQuantity(spec.domain.memory?.guest) ??
    parseQuantity(resources?.limits?.memory) ??
    0
  );
}

/** KubeVirt's WantsToHaveQOSGuaranteed: memory (request or only a limit) and cpu request equal to their limits. */
function hasGuaranteedQoS(spec: VirtualMachineInstanceSpec): boolean {
  const r = spec.domain.resources;
  const amount = (v: string | number | undefined) => (v === undefined ? 0 : (parseQuantity(v) ?? 0));
  const memRequest = amount(r?.requests?.memory);
  const memLimit = amount(r?.limits?.memory);
  const cpuRequest = amount(r?.requests?.cpu);
  const cpuLimit = amount(r?.limits?.cpu);
  const memory = (memRequest === 0 && memLimit !== 0) || (memRequest !== 0 && memRequest === memLimit);
  const cpu = cpuRequest !== 0 && cpuRequest === cpuLimit;
  return memory && cpu;
}

/**
 * Bytes the launcher pod needs beside the guest memory, for a (defaulted) VMI spec. Page tables are sized from
 * the memory request, else the guest memory (KubeVirt reads only the request, which misses VMIs that set just
 * memory.guest). Features KubeVirt adds overhead for that kubevirt-ts does not support yet (VFIO, SEV, TPM,
 * probes, arm64) add nothing here.
 */
export function launcherMemoryOverhead(
  spec: VirtualMachineInstanceSpec,
  config: ClusterConfig = DEFAULT_CLUSTER_CONFIG,
): number {
  const c = MEMORY_OVERHEAD;
  // KubeVirt rounds the memory up to whole kilobytes (decimal) before dividing.
  let overhead = Math.floor((Math.ceil(guestMemoryBytes(spec) / 1000) * 1000) / c.pageTableDivisor);
  overhead += c.launcherMonitor + c.launcher + c.virtlogd + c.libvirtDaemon + c.qemu;
  overhead += c.perVcpu * vcpuCount(spec);
  overhead += c.ioThread;
  if (spec.domain.devices.autoattachGraphicsDevice !== false) overhead += c.video;
  if (hasGuaranteedQoS(spec)) overhead += c.guaranteedQoS;
  const ratio = Number(config.additionalGuestMemoryOverheadRatio ?? '');
  if (Number.isFinite(ratio) && ratio > 0 && config.additionalGuestMemoryOverheadRatio !== undefined)
    overhead *= ratio;
  // The network bindings' share comes after the ratio, as in KubeVirt's CalculateMemoryOverhead.
  if ((spec.domain.devices.interfaces ?? []).some((i) => i.passtBinding !== undefined)) overhead += c.passt;
  return Math.ceil(overhead);
}

export interface ComputeResources {
  requests: { cpu: string; memory: string };
  limits: { cpu?: string; memory?: string };
}

/**
 * The cpu and memory of the launcher pod's compute container, as KubeVirt's pod renderer computes them:
 * memory request = the VMI's memory request (else guest memory × 100 / memoryOvercommit) plus the overhead
 * (unless overcommitGuestOverhead); memory limit = the VMI's limit plus the overhead; cpu request = the VMI's
 * request, else vCPUs / cpuAllocationRatio; cpu limit = the VMI's.
 */
export function launcherComputeResources(
  spec: VirtualMachineInstanceSpec,
  config: ClusterConfig = DEFAULT_CLUSTER_CONFIG,
): ComputeResources {
  const resources = spec.domain.resources;
  const overhead = launcherMemoryOverhead(spec, config);
  const requestedMemory = parseQuantity(resources?.requests?.memory);
  const guest = parseQuantity(spec.domain.memory?.guest) ?? 0;
  const baseRequest = requestedMemory ?? Math.ceil((guest * 100) / config.memoryOvercommit);
  const memoryRequest = baseRequest + (resources?.overcommitGuestOverhead === true ? 0 : overhead);
  const cpuRequest = parseQuantity(resources?.requests?.cpu) ?? vcpuCount(spec) / config.cpuAllocationRatio;
  const limits: ComputeResources['limits'] = {};
  const memoryLimit = parseQuantity(resources?.limits?.memory);
  if (memoryLimit !== undefined) limits.memory = formatBytes(memoryLimit + overhead);
  const cpuLimit = parseQuantity(resources?.limits?.cpu);
  if (cpuLimit !== undefined) limits.cpu = formatCpu(cpuLimit);
  return { requests: { cpu: formatCpu(cpuRequest), memory: formatBytes(memoryRequest) }, limits };
}
