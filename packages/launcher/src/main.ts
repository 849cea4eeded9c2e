#!/usr/bin/env node
// virt-launcher: runs one VMI in its pod through the pod's own libvirt daemon and QEMU.
// For now it only brings up the shared runtime (flags, logger, health/metrics port, SIGTERM handling).
// It takes no --kubeconfig: like KubeVirt's, the launcher never talks to the API server; everything it reports
// goes to virt-handler over the Notify socket.
import { flag, packageVersion, startService } from '@kubevirt-ts/runtime';

// Default directories are the launcher pod's mounts (DESIGN.md §4a); per-volume paths derive from them and the VMI.
const service = await startService({
  name: 'virt-launcher',
  version: packageVersion(import.meta.url),
  description:
    'virt-launcher runs one VirtualMachineInstance inside its pod: it converts the VMI into a libvirt domain,\n' +
    'prepares its disks, starts it through its own libvirt daemon, and shuts it down gracefully on SIGTERM.',
  flags: {
    name: flag.string({ description: 'Name of the VMI this launcher runs', required: true }),
    namespace: flag.string({ description: 'Namespace of the VMI', required: true }),
    uid: flag.string({ description: 'UID of the VMI', required: true }),
    gracePeriodSeconds: flag.integer({
      description: 'How long the guest may take to shut down gracefully before it is destroyed',
      min: 0,
      default: 30,
      valueName: 'seconds',
    }),
    useEmulation: flag.boolean({ description: 'Use software emulation (QEMU TCG) instead of /dev/kvm' }),
    socketsDir: flag.string({
      description: 'Shared with the node: launcher and notify sockets, serial console and VNC sockets',
      default: '/var/run/kubevirt/sockets',
      valueName: 'path',
    }),
    privateDir: flag.string({
      description:
        'Private to the launcher: serial log, disk overlays, cloud-init ISOs, mounted Secrets and PVCs',
      default: '/var/run/kubevirt-private',
      valueName: 'path',
    }),
    libvirtRuntimeDir: flag.string({
      description: "Runtime directory of the pod's own libvirt daemon",
      default: '/var/run/libvirt',
      valueName: 'path',
    }),
    containerDisksDir: flag.string({
      description: 'Where containerDisk image volumes are mounted, one directory per VMI volume',
      default: '/var/run/kubevirt/container-disks',
      valueName: 'path',
    }),
    kernelBootDir: flag.string({
      description: 'Where the kernel-boot image volume is mounted',
      default: '/var/run/kubevirt/kernel-boot',
      valueName: 'path',
    }),
  },
  healthPort: 8189,
});

const { namespace, name, uid } = service.config;
service.log.warn(
  { kind: 'VirtualMachineInstance', namespace, name, uid },
  'launcher not implemented yet: serving health and metrics only',
);
