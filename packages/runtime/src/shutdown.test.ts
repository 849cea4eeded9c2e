import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { silentLogger } from './logger.ts';
import { Shutdown } from './shutdown.ts';

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Shutdown', () => {
  it('aborts its signal first, then runs hooks in reverse order and returns 0', async () => {
    const s = new Shutdown({ log: silentLogger(), exit: () => {} });
    const order: string[] = [];
    s.register('health-server', () => void order.push(`health (signal aborted: ${s.signal.aborted})`));
    s.register('informers', async () => {
      await new Promise((r) => setTimeout(r, 100));
      order.push('informers');
    });
    s.register('workers', () => void order.push('workers'));
    const code = s.shutdown('test');
    expect(s.shuttingDown).toBe(true);
    await vi.advanceTimersByTimeAsync(100);
    expect(await code).toBe(0);
    expect(order).toEqual(['workers', 'informers', 'health (signal aborted: true)']);
  });

  it('runs the sequence once however often it is asked', async () => {
    const s = new Shutdown({ log: silentLogger() });
    let runs = 0;
    s.register('h', () => void runs++);
    const [a, b] = [s.shutdown('one'), s.shutdown('two')];
    expect(a).toBe(b);
    await a;
    await s.shutdown('three');
    expect(runs).toBe(1);
    expect(() => s.register('late', () => {})).toThrow(/shutdown has begun/);
  });

  it('keeps going after a failing hook and reports exit code 1', async () => {
    const s = new Shutdown({ log: silentLogger() });
    const ran: string[] = [];
    s.register('first', () => void ran.push('first'));
    s.register('broken', () => {
      throw new Error('boom');
    });
    expect(await s.shutdown('test')).toBe(1);
    expect(ran).toEqual(['first']);
  });

  it('gives up on hooks at the deadline, tells them through their signal, and reports 1', async () => {
    const s = new Shutdown({ log: silentLogger(), timeoutMs: 1000 });
    const ran: string[] = [];
    let hookSignal: AbortSignal | undefined;
    s.register('never-reached', () => void ran.push('never-reached'));
    s.register('stuck', (deadline) => {
      hookSignal = deadline;
      return new Promise(() => {});
    });
    const code = s.shutdown('test');
    await vi.advanceTimersByTimeAsync(999);
    expect(hookSignal?.aborted).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await code).toBe(1);
    expect(hookSignal?.aborted).toBe(true);
    expect(ran).toEqual([]);
  });

  it('waits the configured delay between failing readiness and running hooks', async () => {
    const s = new Shutdown({ log: silentLogger(), delayMs: 5000 });
    let ran = false;
    s.register('h', () => void (ran = true));
    const code = s.shutdown('test');
    await vi.advanceTimersByTimeAsync(4999);
    expect(s.signal.aborted).toBe(true);
    expect(ran).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(await code).toBe(0);
    expect(ran).toBe(true);
  });

  it('shuts down on SIGTERM, exits with the code, and ignores a second signal', async () => {
    const exits: number[] = [];
    const s = new Shutdown({ log: silentLogger(), exit: (c) => void exits.push(c) });
    let runs = 0;
    s.register('slow', async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 1000));
    });
    const remove = s.installSignalHandlers(['SIGTERM']);
    try {
      process.emit('SIGTERM', 'SIGTERM');
      await vi.advanceTimersByTimeAsync(10);
      process.emit('SIGTERM', 'SIGTERM');
      await vi.advanceTimersByTimeAsync(1000);
      expect(runs).toBe(1);
      expect(exits).toEqual([0]);
    } finally {
      remove();
    }
  });
});
