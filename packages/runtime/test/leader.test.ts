// Leader election on a real coordination.k8s.io/v1 Lease (issue 3, item 5): two candidates, exactly one leader,
// and the other takes over after the first stops, bounded generously by lease duration plus retry period.
import { CoordinationV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LeaderElector } from '../src/leader.ts';
import { silentLogger } from '../src/logger.ts';
import { clusterKubeConfig, createTestNamespace, eventually, integration, needsCluster } from './cluster.ts';

const timing = { leaseDurationMs: 6000, renewDeadlineMs: 4000, retryPeriodMs: 1000 };
// Lease duration + retry period with jitter is the most a takeover should need; allow three times that.
const takeoverBoundMs = 3 * (timing.leaseDurationMs + timing.retryPeriodMs * 2.2);

describe.skipIf(!integration)(`leader election against the real API server ${needsCluster}`, () => {
  let api: CoordinationV1Api;
  let namespace: string;
  let removeNamespace: () => Promise<void>;

  beforeAll(async () => {
    const kc = clusterKubeConfig();
    api = kc.makeApiClient(CoordinationV1Api);
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'runtime-leader'));
  });
  afterAll(async () => {
    await removeNamespace?.();
  });

  function candidates(lease: string, releaseOnCancel: boolean) {
    return ['a', 'b'].map((identity) => {
      const ctrl = new AbortController();
      const elector = new LeaderElector({
        api,
        namespace,
        name: lease,
        identity,
        log: silentLogger(),
        releaseOnCancel,
        onStartedLeading: () => {},
        ...timing,
      });
      return { elector, stop: () => ctrl.abort(), run: elector.run(ctrl.signal) };
    });
  }

  for (const releaseOnCancel of [true, false]) {
    it(`has exactly one leader, and the other takes over when it stops (release on cancel: ${releaseOnCancel})`, async () => {
      const all = candidates(`lease-release-${releaseOnCancel}`, releaseOnCancel);
      try {
        await eventually(() => all.some((c) => c.elector.isLeader()), takeoverBoundMs, 'a first leader');
        // Several lease periods with both campaigning: never two leaders at once.
        const until = Date.now() + 2 * timing.leaseDurationMs;
        while (Date.now() < until) {
          expect(all.filter((c) => c.elector.isLeader())).toHaveLength(1);
          await new Promise((r) => setTimeout(r, 200));
        }
        const leader = all.find((c) => c.elector.isLeader())!;
        const standby = all.find((c) => c !== leader)!;
        leader.stop();
        await leader.run;
        await eventually(() => standby.elector.isLeader(), takeoverBoundMs, 'the standby to take over');
        const lease = await api.readNamespacedLease({ name: `lease-release-${releaseOnCancel}`, namespace });
        expect(lease.spec?.holderIdentity).toBe(standby.elector.identity);
      } finally {
        for (const c of all) c.stop();
        await Promise.all(all.map((c) => c.run));
      }
    });
  }
});
