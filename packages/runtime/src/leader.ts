// Leader election on a coordination.k8s.io/v1 Lease, with client-go's timing model, so two controller replicas can
// run and exactly one acts:
// - a candidate tries to take the Lease every retry period (jittered); it may take it when it is free or when its
//   holder has not renewed it for a lease duration, measured on the candidate's own clock from the moment the
//   candidate last saw the record change (so clock skew between machines does not matter);
// - the leader renews every retry period; when it cannot renew within the renew deadline it stops leading;
// - every write is a replace carrying the resourceVersion it read, so of two racing candidates one gets 409;
// - on shutdown the leader releases the Lease (empty holder) so a standby takes over at once.
import { V1MicroTime } from '@kubernetes/client-node';
import type { V1Lease, V1LeaseSpec } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, isConflict, isNotFound } from './kube.ts';

/** The part of client-node's CoordinationV1Api the elector uses (`kubeConfig.makeApiClient(CoordinationV1Api)`). */
export interface LeaseApi {
  readNamespacedLease(param: { name: string; namespace: string }): Promise<V1Lease>;
  createNamespacedLease(param: { namespace: string; body: V1Lease }): Promise<V1Lease>;
  replaceNamespacedLease(param: { name: string; namespace: string; body: V1Lease }): Promise<V1Lease>;
}

export interface LeaderElectionOptions {
  api: LeaseApi;
  namespace: string;
  /** Lease name, e.g. `virt-controller`. */
  name: string;
  /** Unique per candidate: the pod name is usual. */
  identity: string;
  log: Logger;
  /** How long a lease stays valid after its last renewal. Default 15 s (client-go's). */
  leaseDurationMs?: number;
  /** How long the leader keeps trying to renew before it gives up leading. Default 10 s. */
  renewDeadlineMs?: number;
  /** Interval between attempts. Default 2 s. */
  retryPeriodMs?: number;
  /** Hand the lease back on shutdown so a standby need not wait for it to expire. Default true. */
  releaseOnCancel?: boolean;
  /** Called on becoming leader; `signal` aborts when leadership ends. Errors are logged. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  /** Called when leadership ends, by loss or shutdown (only if leadership had begun). */
  onStoppedLeading?: () => void;
  /** Called whenever the observed holder changes, including to this candidate. */
  onNewLeader?: (identity: string) => void;
  random?: () => number;
}

export type LeaderState = 'idle' | 'candidate' | 'leader' | 'stopped';

const jitterFactor = 1.2;

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function timeText(t: Date | string | undefined): string {
  if (t === undefined) return '';
  return t instanceof Date ? t.toISOString() : String(t);
}

// The part of the record whose change proves the holder is alive. client-node returns MicroTime fields as strings
// on read although they are typed as Date, hence timeText.
function fingerprint(spec: V1LeaseSpec | undefined): string {
  return JSON.stringify([
    spec?.holderIdentity ?? '',
    timeText(spec?.renewTime),
    timeText(spec?.acquireTime),
    spec?.leaseTransitions ?? 0,
    spec?.leaseDurationSeconds ?? 0,
  ]);
}

export class LeaderElector {
  readonly identity: string;
  readonly #o: Required<Omit<LeaderElectionOptions, 'onStoppedLeading' | 'onNewLeader'>> &
    Pick<LeaderElectionOptions, 'onStoppedLeading' | 'onNewLeader'>;
  readonly #log: Logger;
  #state: LeaderState = 'idle';
  #observedFingerprint = '';
  #observedAt = 0;
  #observedHolder = '';
  #observedLease: V1Lease | undefined;

  constructor(opts: LeaderElectionOptions) {
    const o = {
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      releaseOnCancel: true,
      random: Math.random,
      ...opts,
    };
    if (o.leaseDurationMs <= o.renewDeadlineMs) {
      throw new Error(
        `leader election: lease duration (${o.leaseDurationMs} ms) must be greater than the renew deadline (${o.renewDeadlineMs} ms)`,
      );
    }
    if (o.renewDeadlineMs <= jitterFactor * o.retryPeriodMs) {
      throw new Error(
        `leader election: renew deadline (${o.renewDeadlineMs} ms) must be greater than ${jitterFactor} × the retry period (${o.retryPeriodMs} ms)`,
      );
    }
    if (!o.identity) throw new Error('leader election: identity must not be empty');
    this.#o = o;
    this.identity = o.identity;
    this.#log = o.log.child({ lease: `${o.namespace}/${o.name}`, identity: o.identity });
  }

  get state(): LeaderState {
    return this.#state;
  }

  isLeader(): boolean {
    return this.#state === 'leader';
  }

  /** The holder this candidate last observed ('' when none). */
  leader(): string {
    return this.#observedHolder;
  }

  /**
   * Campaigns until this candidate leads, leads until it cannot renew or `signal` aborts, then returns.
   * Like client-go, a lost leadership ends the run: a service usually exits then, so it restarts with fresh state.
   */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#state !== 'idle') throw new Error('leader election: run() may be called only once');
    this.#state = 'candidate';
    this.#log.info('campaigning for leadership');
    try {
      if (!(await this.#acquire(signal))) return;
      const leading = new AbortController();
      this.#state = 'leader';
      this.#log.info('became leader');
      try {
        (async () => this.#o.onStartedLeading(leading.signal))().catch((err: unknown) =>
          this.#log.error({ err }, 'onStartedLeading failed'),
        );
        await this.#renewLoop(signal);
      } finally {
        this.#state = 'stopped';
        leading.abort();
        if (signal.aborted && this.#o.releaseOnCancel) await this.#release();
        this.#log.info(
          signal.aborted ? 'stopped leading: shutting down' : 'stopped leading: could not renew the lease',
        );
        this.#o.onStoppedLeading?.();
      }
    } finally {
      this.#state = 'stopped';
    }
  }

  async #acquire(signal: AbortSignal): Promise<boolean> {
    while (!signal.aborted) {
      if (await this.#tryAcquireOrRenew(this.#o.renewDeadlineMs)) return true;
      await sleep(this.#o.retryPeriodMs * (1 + jitterFactor * this.#o.random()), signal);
    }
    return false;
  }

  // Returns when `signal` aborts or the lease could not be renewed within the renew deadline.
  async #renewLoop(signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      const deadline = Date.now() + this.#o.renewDeadlineMs;
      let renewed = false;
      while (!signal.aborted) {
        const remaining = deadline - Date.now();
        if (remaining <= 0) break;
        if (await this.#tryAcquireOrRenew(remaining)) {
          renewed = true;
          break;
        }
        await sleep(Math.min(this.#o.retryPeriodMs, Math.max(0, deadline - Date.now())), signal);
      }
      if (signal.aborted || !renewed) return;
      await sleep(this.#o.retryPeriodMs, signal);
    }
  }

  #observe(lease: V1Lease): void {
    const fp = fingerprint(lease.spec);
    if (fp !== this.#observedFingerprint) {
      this.#observedFingerprint = fp;
      this.#observedAt = Date.now();
    }
    this.#observedLease = lease;
    const holder = lease.spec?.holderIdentity ?? '';
    if (holder !== this.#observedHolder) {
      this.#observedHolder = holder;
      if (holder) {
        this.#log.info({ leader: holder }, 'observed a new leader');
        this.#o.onNewLeader?.(holder);
      }
    }
  }

  #spec(previous: V1LeaseSpec | undefined): V1LeaseSpec {
    const now = new V1MicroTime(Date.now());
    const keep = previous?.holderIdentity === this.identity;
    return {
      holderIdentity: this.identity,
      leaseDurationSeconds: Math.ceil(this.#o.leaseDurationMs / 1000),
      acquireTime: keep && previous?.acquireTime ? new V1MicroTime(timeText(previous.acquireTime)) : now,
      renewTime: now,
      leaseTransitions: keep ? (previous?.leaseTransitions ?? 0) : (previous?.leaseTransitions ?? 0) + 1,
    };
  }

  // One attempt, bounded by `timeoutMs`. False on any failure (which is logged); the loops decide what next.
  async #tryAcquireOrRenew(timeoutMs: number): Promise<boolean> {
    const { api, name, namespace } = this.#o;
    try {
      let lease: V1Lease;
      try {
        lease = await withTimeout(
          api.readNamespacedLease({ name, namespace }),
          timeoutMs,
          'reading the lease',
        );
      } catch (err) {
        if (!isNotFound(err)) throw err;
        const body: V1Lease = {
          metadata: { name, namespace },
          spec: { ...this.#spec(undefined), leaseTransitions: 0 },
        };
        const created = await withTimeout(
          api.createNamespacedLease({ namespace, body }),
          timeoutMs,
          'creating the lease',
        );
        this.#observe(created);
        return true;
      }
      this.#observe(lease);
      const spec = lease.spec;
      const holder = spec?.holderIdentity ?? '';
      const durationMs = (spec?.leaseDurationSeconds ?? Math.ceil(this.#o.leaseDurationMs / 1000)) * 1000;
      if (holder !== '' && holder !== this.identity && this.#observedAt + durationMs > Date.now()) {
        return false;
      }
      const body: V1Lease = { ...lease, spec: { ...spec, ...this.#spec(spec) } };
      const replaced = await withTimeout(
        api.replaceNamespacedLease({ name, namespace, body }),
        timeoutMs,
        'updating the lease',
      );
      this.#observe(replaced);
      return true;
    } catch (err) {
      if (isConflict(err)) {
        this.#log.debug('lease changed under us (409 Conflict); will retry');
      } else {
        this.#log.warn({ error: describeApiError(err) }, 'could not acquire or renew the lease');
      }
      return false;
    }
  }

  // Empties the holder (keeping the resourceVersion check) so that standbys may take the lease immediately.
  async #release(): Promise<void> {
    const lease = this.#observedLease;
    if (lease?.spec?.holderIdentity !== this.identity) return;
    const now = new V1MicroTime(Date.now());
    const body: V1Lease = {
      ...lease,
      spec: { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1, acquireTime: now, renewTime: now },
    };
    try {
      await withTimeout(
        this.#o.api.replaceNamespacedLease({ name: this.#o.name, namespace: this.#o.namespace, body }),
        this.#o.renewDeadlineMs,
        'releasing the lease',
      );
      this.#log.info('released the lease');
    } catch (err) {
      this.#log.warn({ error: describeApiError(err) }, 'could not release the lease; it will expire instead');
    }
  }
}
