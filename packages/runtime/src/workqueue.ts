// A work queue of object keys in the shape of client-go's rate-limited queue, which KubeVirt's controllers use:
// - fair: keys come out in the order they went in;
// - stingy: a key added many times before it is processed comes out once, and a key is never handed to two
//   workers at once (added again while processing, it is queued again when the worker calls `done`);
// - retries are rate limited per key (exponential backoff with jitter), optionally also by a global token bucket;
// - delayed adds keep the earliest deadline;
// - shutDown stops handing out work; drain waits for keys being processed.
// Node runs one thread, but reconciles await I/O and would interleave on one key without the "stingy" rule.
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { counter, gauge, histogram, metricPrefix } from './metrics.ts';

/** Decides how long a key waits before its next retry. */
export interface RateLimiter<K> {
  /** The delay in ms before `key` may be retried; each call counts as one more failure. */
  when(key: K): number;
  /** Clears the failure history of `key` (after it succeeded). */
  forget(key: K): void;
  /** How many times `key` has failed since it was last forgotten. */
  retries(key: K): number;
}

export interface ExponentialBackoffOptions {
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Adds up to this fraction of the delay at random, so keys that failed together retry apart. */
  jitter?: number;
  random?: () => number;
}

/** base·2^failures, capped at max, plus jitter. Defaults (5 ms to 1000 s) are client-go's controller defaults. */
export class ExponentialBackoffRateLimiter<K> implements RateLimiter<K> {
  readonly #failures = new Map<K, number>();
  readonly #base: number;
  readonly #max: number;
  readonly #jitter: number;
  readonly #random: () => number;

  constructor(opts: ExponentialBackoffOptions = {}) {
    this.#base = opts.baseDelayMs ?? 5;
    this.#max = opts.maxDelayMs ?? 1_000_000;
    this.#jitter = opts.jitter ?? 0.1;
    this.#random = opts.random ?? Math.random;
  }

  when(key: K): number {
    const n = this.#failures.get(key) ?? 0;
    this.#failures.set(key, n + 1);
    const delay = Math.min(this.#base * 2 ** n, this.#max);
    return Math.min(this.#max, delay * (1 + this.#jitter * this.#random()));
  }

  forget(key: K): void {
    this.#failures.delete(key);
  }

  retries(key: K): number {
    return this.#failures.get(key) ?? 0;
  }
}

/** A token bucket over all keys: `qps` retries per second on average, bursts of up to `burst`. */
export class TokenBucketRateLimiter<K> implements RateLimiter<K> {
  readonly #qps: number;
  readonly #burst: number;
  #tokens: number;
  #last: number;

  constructor(opts: { qps?: number; burst?: number } = {}) {
    this.#qps = opts.qps ?? 10;
    this.#burst = opts.burst ?? 100;
    this.#tokens = this.#burst;
    this.#last = Date.now();
  }

  when(_key: K): number {
    const now = Date.now();
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#last) / 1000) * this.#qps);
    this.#last = now;
    // Reserve a token even when none is left: the balance goes negative and later callers wait longer.
    this.#tokens -= 1;
    return this.#tokens >= 0 ? 0 : (-this.#tokens / this.#qps) * 1000;
  }

  forget(_key: K): void {}

  retries(_key: K): number {
    return 0;
  }
}

/** The longest delay of several limiters (each is consulted, so each keeps its own count). */
export class MaxOfRateLimiter<K> implements RateLimiter<K> {
  readonly #limiters: readonly RateLimiter<K>[];

  constructor(...limiters: RateLimiter<K>[]) {
    this.#limiters = limiters;
  }

  when(key: K): number {
    return Math.max(0, ...this.#limiters.map((l) => l.when(key)));
  }

  forget(key: K): void {
    for (const l of this.#limiters) l.forget(key);
  }

  retries(key: K): number {
    return Math.max(0, ...this.#limiters.map((l) => l.retries(key)));
  }
}

/** Per-key exponential backoff (5 ms … 1000 s, with jitter), bounded by a 10 qps / 100 burst bucket overall. */
export function defaultControllerRateLimiter<K>(): RateLimiter<K> {
  return new MaxOfRateLimiter<K>(new ExponentialBackoffRateLimiter<K>(), new TokenBucketRateLimiter<K>());
}

export interface WorkQueueOptions<K> {
  /** Names the queue in logs and in the `name` label of its metrics. */
  name: string;
  rateLimiter?: RateLimiter<K>;
  /** When given, depth, adds, retries and work duration are exported as `kubevirt_workqueue_*`. */
  registry?: Registry;
}

interface QueueMetrics {
  depth(n: number): void;
  added(): void;
  retried(): void;
  worked(seconds: number): void;
}

function queueMetrics(name: string, registry: Registry | undefined): QueueMetrics | undefined {
  if (registry === undefined) return undefined;
  const labels = { name };
  const depth = gauge(registry, {
    name: `${metricPrefix}workqueue_depth`,
    help: 'Current depth of the workqueue',
    labelNames: ['name'],
  });
  const adds = counter(registry, {
    name: `${metricPrefix}workqueue_adds_total`,
    help: 'Total number of adds handled by the workqueue',
    labelNames: ['name'],
  });
  const retries = counter(registry, {
    name: `${metricPrefix}workqueue_retries_total`,
    help: 'Total number of rate-limited retries handled by the workqueue',
    labelNames: ['name'],
  });
  const work = histogram(registry, {
    name: `${metricPrefix}workqueue_work_duration_seconds`,
    help: 'How long processing one key takes, in seconds',
    labelNames: ['name'],
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60],
  });
  depth.set(labels, 0);
  return {
    depth: (n) => depth.set(labels, n),
    added: () => adds.inc(labels),
    retried: () => retries.inc(labels),
    worked: (s) => work.observe(labels, s),
  };
}

export class WorkQueue<K extends string = string> {
  readonly name: string;
  readonly #limiter: RateLimiter<K>;
  readonly #metrics: QueueMetrics | undefined;
  #queue: K[] = [];
  readonly #dirty = new Set<K>();
  readonly #processing = new Map<K, number>();
  readonly #waiters: ((key: K | undefined) => void)[] = [];
  readonly #delayed = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  readonly #drainWaiters: (() => void)[] = [];
  #shuttingDown = false;

  constructor(opts: WorkQueueOptions<K>) {
    this.name = opts.name;
    this.#limiter = opts.rateLimiter ?? defaultControllerRateLimiter<K>();
    this.#metrics = queueMetrics(opts.name, opts.registry);
  }

  /** Queues `key` unless it is already waiting; a key being processed is queued again when it is done. */
  add(key: K): void {
    if (this.#shuttingDown || this.#dirty.has(key)) return;
    this.#dirty.add(key);
    this.#metrics?.added();
    if (this.#processing.has(key)) return;
    this.#push(key);
  }

  /** Adds `key` after `delayMs`; if it is already scheduled, the earlier of the two deadlines wins. */
  addAfter(key: K, delayMs: number): void {
    if (this.#shuttingDown) return;
    if (delayMs <= 0) {
      this.add(key);
      return;
    }
    const at = Date.now() + delayMs;
    const existing = this.#delayed.get(key);
    if (existing !== undefined) {
      if (existing.at <= at) return;
      clearTimeout(existing.timer);
    }
    const timer = setTimeout(() => {
      this.#delayed.delete(key);
      this.add(key);
    }, delayMs);
    this.#delayed.set(key, { at, timer });
  }

  /** Adds `key` after its rate limiter's delay: the way to retry a failed key. */
  addRateLimited(key: K): void {
    if (this.#shuttingDown) return;
    this.#metrics?.retried();
    this.addAfter(key, this.#limiter.when(key));
  }

  /** Clears the retry history of `key`; call it when the key was processed successfully. */
  forget(key: K): void {
    this.#limiter.forget(key);
  }

  /** How many times `key` was retried since it was last forgotten. */
  numRequeues(key: K): number {
    return this.#limiter.retries(key);
  }

  /**
   * The next key to process, waiting until one is queued; `undefined` once the queue is shut down.
   * The caller owns the key until it calls `done(key)`.
   */
  get(): Promise<K | undefined> {
    if (this.#shuttingDown) return Promise.resolve(undefined);
    const key = this.#queue.shift();
    if (key !== undefined) {
      this.#metrics?.depth(this.#queue.length);
      this.#startProcessing(key);
      return Promise.resolve(key);
    }
    return new Promise((resolve) => this.#waiters.push(resolve));
  }

  /** Marks `key` processed; if it was added meanwhile, it goes back into the queue. */
  done(key: K): void {
    const started = this.#processing.get(key);
    if (started === undefined) return;
    this.#processing.delete(key);
    this.#metrics?.worked((performance.now() - started) / 1000);
    if (this.#dirty.has(key) && !this.#shuttingDown) this.#push(key);
    if (this.#processing.size === 0) {
      for (const resolve of this.#drainWaiters.splice(0)) resolve();
    }
  }

  /** Number of keys waiting (not counting keys being processed or scheduled for later). */
  len(): number {
    return this.#queue.length;
  }

  /** Number of keys handed out and not yet done. */
  processing(): number {
    return this.#processing.size;
  }

  get shuttingDown(): boolean {
    return this.#shuttingDown;
  }

  /**
   * Stops the queue: waiting and future `get` calls return undefined, adds are ignored, delayed adds are cancelled
   * and queued keys dropped (the controllers are level-triggered; whoever runs next resyncs everything).
   */
  shutDown(): void {
    if (this.#shuttingDown) return;
    this.#shuttingDown = true;
    for (const { timer } of this.#delayed.values()) clearTimeout(timer);
    this.#delayed.clear();
    this.#queue = [];
    this.#dirty.clear();
    this.#metrics?.depth(0);
    for (const resolve of this.#waiters.splice(0)) resolve(undefined);
  }

  /** Resolves once no key is being processed. */
  drain(): Promise<void> {
    if (this.#processing.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.#drainWaiters.push(resolve));
  }

  /** shutDown, then wait for the keys being processed. */
  shutDownWithDrain(): Promise<void> {
    this.shutDown();
    return this.drain();
  }

  #startProcessing(key: K): void {
    this.#dirty.delete(key);
    this.#processing.set(key, performance.now());
  }

  #push(key: K): void {
    const waiter = this.#waiters.shift();
    if (waiter !== undefined) {
      this.#startProcessing(key);
      waiter(key);
      return;
    }
    this.#queue.push(key);
    this.#metrics?.depth(this.#queue.length);
  }
}

/** What a reconcile may ask for besides success: to look at the key again after a while. */
export interface ReconcileResult {
  requeueAfter?: number;
}

export type Reconcile<K extends string = string> = (
  key: K,
  signal: AbortSignal,
) => Promise<ReconcileResult | void> | ReconcileResult | void;

export interface RunWorkersOptions {
  log?: Logger;
}

/**
 * Runs `count` workers that take keys from `queue` and reconcile them until `signal` aborts, then shuts the queue
 * down and resolves once every in-flight reconcile has returned (reconciles get the same signal to stop early).
 * A reconcile that throws is retried with the queue's rate limiter; one that returns is forgotten, and requeued
 * after `requeueAfter` ms when it asks for that.
 */
export async function runWorkers<K extends string>(
  queue: WorkQueue<K>,
  count: number,
  reconcile: Reconcile<K>,
  signal: AbortSignal,
  opts: RunWorkersOptions = {},
): Promise<void> {
  const log = opts.log?.child({ queue: queue.name });
  const stop = (): void => queue.shutDown();
  if (signal.aborted) stop();
  else signal.addEventListener('abort', stop, { once: true });

  const worker = async (): Promise<void> => {
    for (let key = await queue.get(); key !== undefined; key = await queue.get()) {
      try {
        const result = await reconcile(key, signal);
        queue.forget(key);
        if (result && result.requeueAfter !== undefined) queue.addAfter(key, result.requeueAfter);
      } catch (err) {
        if (!signal.aborted) {
          log?.warn({ key, retries: queue.numRequeues(key), err }, 'reconcile failed; retrying with backoff');
          queue.addRateLimited(key);
        }
      } finally {
        queue.done(key);
      }
    }
  };

  try {
    await Promise.all(Array.from({ length: Math.max(1, count) }, worker));
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
