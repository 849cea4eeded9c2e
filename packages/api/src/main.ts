#!/usr/bin/env node
// virt-api: admission webhooks for the kubevirt.io resources and the aggregated subresources.kubevirt.io API.
// For now it only brings up the shared runtime (flags, logger, health/metrics port, SIGTERM handling).
import { flag, kubeFlags, packageVersion, startService } from '@kubevirt-ts/runtime';

const service = await startService({
  name: 'virt-api',
  version: packageVersion(import.meta.url),
  description:
    'virt-api serves the mutating and validating admission webhooks of the kubevirt.io resources and the\n' +
    'aggregated subresources.kubevirt.io API (start, stop, console, vnc, ...).',
  flags: {
    ...kubeFlags,
    namespace: flag.string({
      description:
        'Namespace kubevirt-ts is installed in (holds the KubeVirt CR and the serving certificates)',
      env: 'POD_NAMESPACE',
      default: 'kubevirt',
    }),
  },
  healthPort: 8187,
});

service.log.warn('webhooks and subresource API not implemented yet: serving health and metrics only');
