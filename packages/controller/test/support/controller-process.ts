#!/usr/bin/env node
// A virt-controller replica for the leader-election test: main.ts's leader election and controllers, without the
// certificate loop (which writes cluster-wide objects other suites use), scoped to one namespace, with short lease
// timings, as a real process so the test can SIGKILL it mid-reconcile.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { flag, kubeFlags, LeaderElector, loadKubeConfig, startService } from '@kubevirt-ts/runtime';
import { Controllers, leaderReadinessCheck } from '../../src/index.ts';

const service = await startService({
  name: 'virt-controller',
  version: '0.0.0-test',
  description: 'virt-controller replica for the leader-election integration test',
  flags: {
    ...kubeFlags,
    namespace: flag.string({
      description: 'Namespace to watch, and of the Lease and the KubeVirt CR',
      required: true,
    }),
    identity: flag.string({ description: 'Identity in leader election', required: true }),
  },
  healthPort: 0,
});
const { config, log } = service;
const { kubeConfig } = loadKubeConfig({ kubeconfig: config.kubeconfig });
const controllers = new Controllers({
  kubeConfig,
  log,
  registry: service.registry,
  installNamespace: config.namespace,
  namespace: config.namespace,
  nodeLabelSelector: 'test-node',
  launcherImage: 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0',
  identity: config.identity,
});
const elector = new LeaderElector({
  api: kubeConfig.makeApiClient(CoordinationV1Api),
  namespace: config.namespace,
  name: 'virt-controller',
  identity: config.identity,
  log,
  leaseDurationMs: 6000,
  renewDeadlineMs: 4000,
  retryPeriodMs: 1000,
  onStartedLeading: (leading) => controllers.run(leading),
});
service.health.addReadinessCheck('leader-election', leaderReadinessCheck(elector, controllers));
const election = elector.run(service.signal);
service.shutdown.register('leader-election', () => election);
await election;
