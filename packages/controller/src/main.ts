#!/usr/bin/env node
// virt-controller: the cluster-wide controllers (VM → VMI → launcher pod, run strategies, migrations, replica sets).
// Replicas elect a leader on a Lease; only the leader acts: it runs the controllers (VM, VMI, replica set, node,
// the KubeVirt configuration) and the certificate loop.
import os from 'node:os';
import { CoordinationV1Api } from '@kubernetes/client-node';
import {
  errorMessage,
  flag,
  kubeFlags,
  LeaderElector,
  loadKubeConfig,
  packageVersion,
  startService,
} from '@kubevirt-ts/runtime';
import { certificateFlags, certificateSettings } from './certificates/flags.ts';
import { CertificateLoop } from './certificates/loop.ts';
import { Controllers, leaderReadinessCheck } from './controllers.ts';

const service = await startService({
  name: 'virt-controller',
  version: packageVersion(import.meta.url),
  description:
    'virt-controller runs the cluster-wide controllers of kubevirt-ts: it turns VirtualMachines into\n' +
    'VirtualMachineInstances and those into launcher pods, and drives migrations and replica sets.\n' +
    'Its leader also keeps the certificates of virt-api and virt-handler and rotates them.',
  flags: {
    ...kubeFlags,
    namespace: flag.string({
      description:
        'Namespace kubevirt-ts is installed in (holds the KubeVirt CR, certificates and the leader lease)',
      env: 'POD_NAMESPACE',
      default: 'kubevirt',
    }),
    podName: flag.string({
      description: 'Identity in leader election (the pod name; default: host name and process id)',
      env: 'POD_NAME',
    }),
    leaderElectionLease: flag.string({
      description: 'Name of the Lease (in --namespace) the replicas elect their leader on',
      default: 'virt-controller',
    }),
    launcherImage: flag.string({
      description: 'Image of the compute container of every launcher pod (the chart sets it)',
      env: 'LAUNCHER_IMAGE',
      default: 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0',
      valueName: 'image',
    }),
    launcherImagePullPolicy: flag.oneOf(['Always', 'IfNotPresent', 'Never'] as const, {
      description: "imagePullPolicy of the launcher image (default: Kubernetes' rule for its tag)",
      env: 'LAUNCHER_IMAGE_PULL_POLICY',
    }),
    ...certificateFlags,
  },
  healthPort: 8186,
});

const { config, log } = service;
let certificates: CertificateLoop;
let controllers: Controllers;
let elector: LeaderElector;
try {
  const { kubeConfig, source } = loadKubeConfig({ kubeconfig: config.kubeconfig });
  log.info({ source, server: kubeConfig.getCurrentCluster()?.server }, 'Kubernetes client configured');
  certificates = new CertificateLoop({
    ...certificateSettings(config),
    namespace: config.namespace,
    kubeConfig,
    log,
    registry: service.registry,
  });
  const identity = config.podName ?? `${os.hostname()}_${process.pid}`;
  controllers = new Controllers({
    kubeConfig,
    log,
    registry: service.registry,
    installNamespace: config.namespace,
    launcherImage: config.launcherImage,
    launcherImagePullPolicy: config.launcherImagePullPolicy,
    identity,
  });
  elector = new LeaderElector({
    api: kubeConfig.makeApiClient(CoordinationV1Api),
    namespace: config.namespace,
    name: config.leaderElectionLease,
    identity,
    log,
    onStartedLeading: async (leading) => {
      const running = controllers.run(leading).catch(async (err: unknown) => {
        // A leader whose controllers stopped would hold the lease and do nothing: hand over instead.
        log.fatal({ err }, 'the controllers failed; exiting so that a standby takes over');
        const code = await service.shutdown.shutdown('controllers failed');
        process.exit(code === 0 ? 1 : code);
      });
      await Promise.all([certificates.run(leading), running]);
    },
  });
} catch (err) {
  log.fatal({ error: errorMessage(err) }, 'cannot start');
  await service.shutdown.shutdown('startup failed');
  process.exit(1);
}

// A standby is as ready as the leader: it exists to take over. /readyz?verbose says which this replica is.
service.health.addReadinessCheck('leader-election', leaderReadinessCheck(elector, controllers));

const election = elector.run(service.signal).then(
  async () => {
    if (service.signal.aborted) return;
    // As client-go does: a process that lost the lease exits, and its restart campaigns with fresh state.
    log.error('lost leadership; exiting so that a fresh process campaigns again');
    const code = await service.shutdown.shutdown('lost leadership');
    process.exit(code === 0 ? 1 : code);
  },
  (err: unknown) => log.error({ err }, 'leader election failed'),
);
service.shutdown.register('leader-election', () => election);
