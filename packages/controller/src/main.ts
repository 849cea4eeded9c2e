#!/usr/bin/env node
// virt-controller: the cluster-wide controllers (VM → VMI → launcher pod, run strategies, migrations, replica sets).
// For now it only brings up the shared runtime (flags, logger, health/metrics port, SIGTERM handling).
import { flag, kubeFlags, packageVersion, startService } from '@kubevirt-ts/runtime';

const service = await startService({
  name: 'virt-controller',
  version: packageVersion(import.meta.url),
  description:
    'virt-controller runs the cluster-wide controllers of kubevirt-ts: it turns VirtualMachines into\n' +
    'VirtualMachineInstances and those into launcher pods, and drives migrations and replica sets.',
  flags: {
    ...kubeFlags,
    namespace: flag.string({
      description:
        'Namespace kubevirt-ts is installed in (holds the KubeVirt CR, certificates and the leader lease)',
      env: 'POD_NAMESPACE',
      default: 'kubevirt',
    }),
  },
  healthPort: 8186,
});

service.log.warn('controllers not implemented yet: serving health and metrics only');
