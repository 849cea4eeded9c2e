#!/usr/bin/env node
// virt-launcher: runs one VMI in its pod through the pod's own libvirt daemon and QEMU.
// It takes no --kubeconfig: like KubeVirt's, the launcher never talks to the API server; everything it reports
// goes to virt-handler over the Notify socket.
// Subpath imports: the runtime's index also loads the Kubernetes client (about 60 MiB resident), which the
// launcher never uses and every VM would pay for.
import { flag } from '@kubevirt-ts/runtime/config';
import { packageVersion, startService } from '@kubevirt-ts/runtime/service';
import { Launcher } from './launcher.ts';

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
    qemuCapabilitiesSeed: flag.string({
      description:
        "A folder of libvirt QEMU capability files (*.xml) copied into libvirt's empty cache at start, so the " +
        'daemon does not probe QEMU (about 8 s) before the first VM starts; made by packages/launcher/src/capabilities-cache.ts',
      valueName: 'path',
    }),
  },
  healthPort: 8189,
});

const config = service.config;
const identity = { name: config.name, namespace: config.namespace, uid: config.uid };
const log = service.log.child({ kind: 'VirtualMachineInstance', ...identity });
let launcher: Launcher;
try {
  launcher = await Launcher.start({
    identity,
    gracePeriodSeconds: config.gracePeriodSeconds,
    useEmulation: config.useEmulation,
    socketsDir: config.socketsDir,
    privateDir: config.privateDir,
    libvirtRuntimeDir: config.libvirtRuntimeDir,
    containerDisksDir: config.containerDisksDir,
    kernelBootDir: config.kernelBootDir,
    capabilitiesSeed: config.qemuCapabilitiesSeed,
    log,
  });
} catch (err) {
  log.fatal({ err }, 'the launcher could not start');
  process.exit(1);
}
// Registered after the health server's hook, so it runs first: the guest goes down while probes still answer.
service.shutdown.register('launcher', (deadline) => launcher.stop(deadline));
void launcher.done.then(async (why) => {
  log.info({ why }, 'the domain is gone; the launcher exits');
  process.exit(await service.shutdown.shutdown(why));
});
