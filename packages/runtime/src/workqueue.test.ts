import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  ExponentialBackoffRateLimiter,
  MaxOfRateLimiter,
  TokenBucketRateLimiter,
  WorkQueue,
  runWorkers,
  type RateLimiter,
} from './workqueue.ts';

/** A limiter with fixed, known delays, so tests can advance time exactly. */
function fixedLimiter(delayMs: number): RateLimiter<string> & { failures: Map<string, number> } {
  const failures = new Map<string, number>();
  return {
    failures,
    when: (k) => {
      failures.set(k, (failures.get(k) ?? 0) + 1);
      return delayMs;
    },
    forget: (k) => void failures.delete(k),
    retries: (k) => failures.get(k) ?? 0,
  };
}

/** Resolves on the next macrotask boundary, letting awaited queue operations settle. */
const flush = () => vi.advanceTimersByTimeAsync(0);

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('WorkQueue', () => {
  it('hands keys out in order and collapses repeated adds', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    q.add('b');
    q.add('a');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
    expect(q.len()).toBe(0);
  });

  it('never hands out a key that is being processed; re-adds it on done', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    expect(await q.get()).toBe('a');
    q.add('a');
    q.add('a');
    expect(q.len()).toBe(0);
    let second: string | undefined;
    void q.get().then((k) => (second = k));
    await flush();
    expect(second).toBeUndefined();
    q.done('a');
    await flush();
    expect(second).toBe('a');
    q.done('a');
    expect(q.len()).toBe(0);
  });

  it('wakes a waiting get when a key arrives', async () => {
    const q = new WorkQueue({ name: 't' });
    const got = q.get();
    q.add('x');
    await expect(got).resolves.toBe('x');
    expect(q.processing()).toBe(1);
  });

  it('adds a key after a delay, keeping the earliest deadline', async () => {
    const q = new WorkQueue({ name: 't' });
    q.addAfter('a', 1000);
    q.addAfter('a', 5000);
    await vi.advanceTimersByTimeAsync(999);
    expect(q.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
    q.done('a');
    await vi.advanceTimersByTimeAsync(10_000);
    expect(q.len()).toBe(0);
  });

  it('replaces a later delayed add by an earlier one', async () => {
    const q = new WorkQueue({ name: 't' });
    q.addAfter('a', 5000);
    q.addAfter('a', 100);
    await vi.advanceTimersByTimeAsync(100);
    expect(q.len()).toBe(1);
    await q.get();
    q.done('a');
    await vi.advanceTimersByTimeAsync(5000);
    expect(q.len()).toBe(0);
  });

  it('retries with the rate limiter and forgets on success', async () => {
    const limiter = new ExponentialBackoffRateLimiter<string>({ baseDelayMs: 100, jitter: 0 });
    const q = new WorkQueue({ name: 't', rateLimiter: limiter });
    q.addRateLimited('a');
    q.addRateLimited('a');
    expect(q.numRequeues('a')).toBe(2);
    await vi.advanceTimersByTimeAsync(99);
    expect(q.len()).toBe(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(q.len()).toBe(1);
    q.forget('a');
    expect(q.numRequeues('a')).toBe(0);
  });

  it('shutDown releases waiters, drops queued keys and ignores new adds', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    await q.get();
    q.add('b');
    q.addAfter('c', 100);
    const waiting = q.get();
    expect(await Promise.race([waiting, Promise.resolve('pending')])).toBe('b');
    const waiting2 = q.get();
    q.shutDown();
    await expect(waiting2).resolves.toBeUndefined();
    await expect(q.get()).resolves.toBeUndefined();
    q.add('d');
    await vi.advanceTimersByTimeAsync(200);
    expect(q.len()).toBe(0);
    expect(q.shuttingDown).toBe(true);
  });

  it('drain waits for keys in flight', async () => {
    const q = new WorkQueue({ name: 't' });
    q.add('a');
    q.add('b');
    await q.get();
    await q.get();
    let drained = false;
    void q.shutDownWithDrain().then(() => (drained = true));
    q.done('a');
    await flush();
    expect(drained).toBe(false);
    q.done('b');
    await flush();
    expect(drained).toBe(true);
  });

  it('exports depth, adds, retries and work duration when given a registry', async () => {
    const registry = new Registry();
    const q = new WorkQueue({ name: 'vmi', registry, rateLimiter: fixedLimiter(10) });
    new WorkQueue({ name: 'vm', registry });
    q.add('a');
    q.add('b');
    q.add('a');
    q.addRateLimited('c');
    const k = await q.get();
    q.done(k!);
    const text = await registry.metrics();
    expect(text).toContain('kubevirt_workqueue_depth{name="vmi"} 1');
    expect(text).toContain('kubevirt_workqueue_adds_total{name="vmi"} 2');
    expect(text).toContain('kubevirt_workqueue_retries_total{name="vmi"} 1');
    expect(text).toContain('kubevirt_workqueue_work_duration_seconds_count{name="vmi"} 1');
    expect(text).toContain('kubevirt_workqueue_depth{name="vm"} 0');
  });
});

describe('rate limiters', () => {
  it('backs off exponentially per key up to the maximum', () => {
    const l = new ExponentialBackoffRateLimiter<string>({ baseDelayMs: 5, maxDelayMs: 100, jitter: 0 });
    expect([1, 2, 3, 4, 5, 6].map(() => l.when('a'))).toEqual([5, 10, 20, 40, 80, 100]);
    expect(l.when('b')).toBe(5);
    l.forget('a');
    expect(l.when('a')).toBe(5);
  });

  it('adds jitter within the configured fraction', () => {
    const l = new ExponentialBackoffRateLimiter<string>({ baseDelayMs: 100, jitter: 0.5, random: () => 1 });
    expect(l.when('a')).toBe(150);
    const m = new ExponentialBackoffRateLimiter<string>({ baseDelayMs: 100, jitter: 0.5, random: () => 0 });
    expect(m.when('a')).toBe(100);
  });

  it('token bucket allows a burst, then spaces retries at its rate', () => {
    const l = new TokenBucketRateLimiter<string>({ qps: 10, burst: 2 });
    expect(l.when('a')).toBe(0);
    expect(l.when('b')).toBe(0);
    expect(l.when('c')).toBeCloseTo(100);
    expect(l.when('d')).toBeCloseTo(200);
    vi.advanceTimersByTime(1000);
    expect(l.when('e')).toBe(0);
  });

  it('max-of takes the longest delay of its limiters', () => {
    const l = new MaxOfRateLimiter<string>(
      new ExponentialBackoffRateLimiter({ baseDelayMs: 1, jitter: 0 }),
      new TokenBucketRateLimiter({ qps: 1, burst: 1 }),
    );
    expect(l.when('a')).toBe(1);
    expect(l.when('a')).toBeCloseTo(1000);
    expect(l.retries('a')).toBe(2);
    l.forget('a');
    expect(l.retries('a')).toBe(0);
  });
});

describe('runWorkers', () => {
  it('reconciles every key, never the same key concurrently, and forgets on success', async () => {
    const q = new WorkQueue({ name: 't', rateLimiter: fixedLimiter(10) });
    const ctrl = new AbortController();
    const active = new Set<string>();
    const seen: string[] = [];
    let overlap = false;
    const run = runWorkers(
      q,
      3,
      async (key) => {
        if (active.has(key)) overlap = true;
        active.add(key);
        seen.push(key);
        await new Promise((r) => setTimeout(r, 50));
        active.delete(key);
      },
      ctrl.signal,
    );
    q.add('a');
    q.add('b');
    await vi.advanceTimersByTimeAsync(10);
    q.add('a');
    q.add('a');
    await vi.advanceTimersByTimeAsync(200);
    expect(seen.sort()).toEqual(['a', 'a', 'b']);
    expect(overlap).toBe(false);
    ctrl.abort();
    await run;
  });

  it('retries a failing key with backoff until it succeeds', async () => {
    const limiter = fixedLimiter(1000);
    const q = new WorkQueue({ name: 't', rateLimiter: limiter });
    const ctrl = new AbortController();
    let attempts = 0;
    const run = runWorkers(
      q,
      1,
      () => {
        attempts++;
        if (attempts < 3) throw new Error('not yet');
      },
      ctrl.signal,
    );
    q.add('k');
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(1);
    expect(limiter.failures.get('k')).toBe(1);
    await vi.advanceTimersByTimeAsync(998);
    expect(attempts).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(attempts).toBe(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(attempts).toBe(3);
    expect(limiter.failures.has('k')).toBe(false);
    await vi.advanceTimersByTimeAsync(5000);
    expect(attempts).toBe(3);
    ctrl.abort();
    await run;
  });

  it('requeues after the delay a reconcile asks for', async () => {
    const q = new WorkQueue({ name: 't' });
    const ctrl = new AbortController();
    const times: number[] = [];
    const start = Date.now();
    const run = runWorkers(
      q,
      1,
      () => {
        times.push(Date.now() - start);
        return times.length < 3 ? { requeueAfter: 30_000 } : undefined;
      },
      ctrl.signal,
    );
    q.add('k');
    await vi.advanceTimersByTimeAsync(100_000);
    expect(times).toEqual([0, 30_000, 60_000]);
    ctrl.abort();
    await run;
  });

  it('on abort stops taking keys and resolves after in-flight reconciles return', async () => {
    const q = new WorkQueue({ name: 't' });
    const ctrl = new AbortController();
    const started: string[] = [];
    let finished = 0;
    const run = runWorkers(
      q,
      1,
      async (key, signal) => {
        started.push(key);
        await new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => setTimeout(resolve, 100)),
        );
        finished++;
      },
      ctrl.signal,
    );
    q.add('a');
    q.add('b');
    await flush();
    expect(started).toEqual(['a']);
    let done = false;
    void run.then(() => (done = true));
    ctrl.abort();
    await vi.advanceTimersByTimeAsync(50);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(50);
    expect(done).toBe(true);
    expect(finished).toBe(1);
    expect(started).toEqual(['a']);
  });
});
