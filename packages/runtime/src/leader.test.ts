// Unit tests of leader election against an in-memory Lease store that enforces resourceVersion preconditions the
// way kube-apiserver does. The real API server is exercised by the integration suite in ../test.
import type { V1Lease } from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { LeaderElector, type LeaderElectionOptions, type LeaseApi } from './leader.ts';
import { silentLogger } from './logger.ts';

const apiError = (code: number) => Object.assign(new Error(`HTTP ${code}`), { code, body: {} });

class LeaseStore {
  lease: V1Lease | undefined;
  rv = 0;
  writes = 0;

  // Bodies go through JSON both ways, as over HTTP: MicroTimes come back as strings.
  #wire<T>(v: T): T {
    return JSON.parse(JSON.stringify(v)) as T;
  }

  api(partitioned: () => boolean = () => false): LeaseApi {
    const guard = async (): Promise<void> => {
      await Promise.resolve();
      if (partitioned()) throw Object.assign(new Error('connect ETIMEDOUT'), { code: 'ETIMEDOUT' });
    };
    return {
      readNamespacedLease: async () => {
        await guard();
        if (!this.lease) throw apiError(404);
        return this.#wire(this.lease);
      },
      createNamespacedLease: async ({ body }) => {
        await guard();
        if (this.lease) throw apiError(409);
        this.lease = this.#wire({
          ...body,
          metadata: { ...body.metadata, resourceVersion: String(++this.rv) },
        });
        this.writes++;
        return this.#wire(this.lease);
      },
      replaceNamespacedLease: async ({ body }) => {
        await guard();
        if (!this.lease) throw apiError(404);
        if (body.metadata?.resourceVersion !== this.lease.metadata?.resourceVersion) throw apiError(409);
        this.lease = this.#wire({
          ...body,
          metadata: { ...body.metadata, resourceVersion: String(++this.rv) },
        });
        this.writes++;
        return this.#wire(this.lease);
      },
    };
  }
}

function candidate(store: LeaseStore, identity: string, extra: Partial<LeaderElectionOptions> = {}) {
  const log: string[] = [];
  let partitioned = false;
  const ctrl = new AbortController();
  const elector = new LeaderElector({
    api: store.api(() => partitioned),
    namespace: 'kubevirt',
    name: 'virt-controller',
    identity,
    log: silentLogger(),
    random: () => 0,
    onStartedLeading: (signal) => {
      log.push('started');
      signal.addEventListener('abort', () => log.push('leading-signal-aborted'));
    },
    onStoppedLeading: () => log.push('stopped'),
    onNewLeader: (id) => log.push(`leader ${id}`),
    ...extra,
  });
  let finished = false;
  const run = elector.run(ctrl.signal).then(() => {
    finished = true;
  });
  return {
    elector,
    log,
    stop: () => ctrl.abort(),
    partition: (v: boolean) => {
      partitioned = v;
    },
    run,
    finished: () => finished,
  };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('LeaderElector', () => {
  it('creates the lease, leads, renews, and releases it on shutdown', async () => {
    const store = new LeaseStore();
    const a = candidate(store, 'a');
    await vi.advanceTimersByTimeAsync(0);
    expect(a.elector.isLeader()).toBe(true);
    expect(a.log).toEqual(['leader a', 'started']);
    expect(store.lease?.spec).toMatchObject({
      holderIdentity: 'a',
      leaseDurationSeconds: 15,
      leaseTransitions: 0,
    });
    expect(String(store.lease?.spec?.renewTime)).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    const acquired = store.lease?.spec?.acquireTime;
    const renewedAt = store.lease?.spec?.renewTime;

    await vi.advanceTimersByTimeAsync(2000);
    expect(store.lease?.spec?.renewTime).not.toEqual(renewedAt);
    expect(store.lease?.spec?.acquireTime).toEqual(acquired);
    expect(store.lease?.spec?.leaseTransitions).toBe(0);
    const writes = store.writes;
    await vi.advanceTimersByTimeAsync(20_000);
    expect(store.writes).toBe(writes + 10);

    a.stop();
    await a.run;
    expect(a.log).toEqual(['leader a', 'started', 'leading-signal-aborted', 'stopped']);
    expect(store.lease?.spec?.holderIdentity).toBe('');
    expect(a.elector.state).toBe('stopped');
  });

  it('lets exactly one of two candidates lead; the other takes over right after a release', async () => {
    const store = new LeaseStore();
    const a = candidate(store, 'a');
    const b = candidate(store, 'b');
    for (let t = 0; t < 60; t++) {
      await vi.advanceTimersByTimeAsync(1000);
      expect([a.elector.isLeader(), b.elector.isLeader()].filter(Boolean)).toHaveLength(1);
    }
    const [leader, standby] = a.elector.isLeader() ? [a, b] : [b, a];
    expect(standby.log).not.toContain('started');
    expect(standby.elector.leader()).toBe(leader.elector.identity);

    leader.stop();
    await leader.run;
    // The standby retries every retry period (2 s with random() = 0) and finds the holder empty.
    await vi.advanceTimersByTimeAsync(2000);
    expect(standby.elector.isLeader()).toBe(true);
    expect(store.lease?.spec).toMatchObject({
      holderIdentity: standby.elector.identity,
      leaseTransitions: 1,
    });
    standby.stop();
    await standby.run;
  });

  it('stops leading when it cannot renew within the renew deadline; a standby waits out the lease', async () => {
    const store = new LeaseStore();
    const a = candidate(store, 'a');
    await vi.advanceTimersByTimeAsync(0);
    const b = candidate(store, 'b');
    await vi.advanceTimersByTimeAsync(100);
    expect(a.elector.isLeader()).toBe(true);
    expect(b.elector.isLeader()).toBe(false);

    a.partition(true);
    const cutAt = Date.now();
    // The last renewal happened at most one retry period before the cut; a gives up 10 s after its last deadline
    // began, b may take over 15 s after it last saw the record change.
    await vi.advanceTimersByTimeAsync(9000);
    expect(a.elector.isLeader()).toBe(true);
    await vi.advanceTimersByTimeAsync(3000);
    expect(a.finished()).toBe(true);
    expect(a.log).toEqual(['leader a', 'started', 'leading-signal-aborted', 'stopped']);
    expect(b.elector.isLeader()).toBe(false);

    while (!b.elector.isLeader()) await vi.advanceTimersByTimeAsync(100);
    const tookOver = Date.now() - cutAt;
    expect(tookOver).toBeGreaterThanOrEqual(15_000 - 2000);
    expect(tookOver).toBeLessThanOrEqual(15_000 + 2000 + 100);
    expect(store.lease?.spec).toMatchObject({ holderIdentity: 'b', leaseTransitions: 1 });
    // The partitioned candidate did not release (it could not), and it lost its run: no release write by 'a'.
    b.stop();
    await b.run;
  });

  it('does not take a lease whose holder keeps renewing, whatever the holder clock says', async () => {
    const store = new LeaseStore();
    // A holder elsewhere with a skewed clock: renewTime far in the past, but the record keeps changing.
    store.lease = {
      metadata: { name: 'virt-controller', namespace: 'kubevirt', resourceVersion: '1' },
      spec: {
        holderIdentity: 'elsewhere',
        leaseDurationSeconds: 15,
        renewTime: '2001-01-01T00:00:00.000000Z' as never,
      },
    };
    store.rv = 1;
    const renewer = setInterval(() => {
      const spec = store.lease!.spec!;
      store.lease = {
        ...store.lease,
        metadata: { ...store.lease!.metadata, resourceVersion: String(++store.rv) },
        spec: {
          ...spec,
          renewTime: `2001-01-01T00:00:${String(store.rv % 60).padStart(2, '0')}.000000Z` as never,
        },
      };
    }, 5000);
    const b = candidate(store, 'b');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(b.elector.isLeader()).toBe(false);
    expect(b.elector.leader()).toBe('elsewhere');
    clearInterval(renewer);
    await vi.advanceTimersByTimeAsync(15_000 + 5000);
    expect(b.elector.isLeader()).toBe(true);
    b.stop();
    await b.run;
  });

  it('returns without leading when stopped while campaigning', async () => {
    const store = new LeaseStore();
    const a = candidate(store, 'a');
    await vi.advanceTimersByTimeAsync(0);
    const b = candidate(store, 'b');
    await vi.advanceTimersByTimeAsync(5000);
    b.stop();
    await b.run;
    expect(b.log).toEqual(['leader a']);
    expect(store.lease?.spec?.holderIdentity).toBe('a');
    a.stop();
    await a.run;
  });

  it('rejects timings client-go would reject', () => {
    const base = {
      api: new LeaseStore().api(),
      namespace: 'n',
      name: 'l',
      identity: 'x',
      log: silentLogger(),
      onStartedLeading: () => {},
    };
    expect(() => new LeaderElector({ ...base, leaseDurationMs: 10_000, renewDeadlineMs: 10_000 })).toThrow(
      /lease duration .* must be greater than the renew deadline/,
    );
    expect(() => new LeaderElector({ ...base, renewDeadlineMs: 2000, retryPeriodMs: 2000 })).toThrow(
      /renew deadline .* must be greater than 1.2 × the retry period/,
    );
    expect(() => new LeaderElector({ ...base, identity: '' })).toThrow(/identity/);
  });
});
