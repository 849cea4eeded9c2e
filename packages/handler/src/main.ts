#!/usr/bin/env node
// virt-handler: the node agent. It drives the launchers of the VMIs scheduled to its node and reports their status.
// For now it only brings up the shared runtime (flags, logger, health/metrics port, SIGTERM handling).
import { flag, kubeFlags, packageVersion, startService } from '@kubevirt-ts/runtime';

const service = await startService({
  name: 'virt-handler',
  version: packageVersion(import.meta.url),
  description:
    'virt-handler is the kubevirt-ts node agent: it syncs the VMIs scheduled to its node to their launchers\n' +
    'over gRPC and reports their status back to the API server.',
  flags: {
    ...kubeFlags,
    nodeName: flag.string({
      description: 'Name of the Node this handler manages (the downward API sets it in a DaemonSet)',
      env: 'NODE_NAME',
      required: true,
    }),
    podsDir: flag.string({
      description: "Where the host's kubelet pods directory (/var/lib/kubelet/pods) is mounted",
      default: '/pods',
      valueName: 'path',
    }),
  },
  healthPort: 8188,
});

service.log.warn(
  { nodeName: service.config.nodeName },
  'node agent not implemented yet: serving health and metrics only',
);
