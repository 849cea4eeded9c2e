import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { parseNetnsList } from './netns.ts';
import { isAlive, isOurProcess, terminate, withLockFile } from './processes.ts';

describe('parseNetnsList', () => {
  it('reads names with and without ids', () => {
    expect(parseNetnsList('kvts-dc (id: 0)\nother\n\nkvts-dc-n1 (id: 3)\n')).toEqual([
      'kvts-dc',
      'other',
      'kvts-dc-n1',
    ]);
  });
});

describe('processes', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'devcluster-proc-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('recognises our process by the marker in its command line', async () => {
    const child = spawn('sleep', ['30'], { stdio: 'ignore' });
    // `sh -c SCRIPT NAME`: NAME (our dir) stays in the shell's command line while it waits for sleep.
    const marked = spawn('sh', ['-c', 'sleep 30; true', dir], { stdio: 'ignore' });
    try {
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(isOurProcess(marked.pid ?? 0, dir)).toBe(true);
      expect(isOurProcess(child.pid ?? 0, dir)).toBe(false);
    } finally {
      await terminate([child.pid ?? 0, marked.pid ?? 0], 1_000);
    }
    expect(isAlive(marked.pid ?? 0)).toBe(false);
  });

  it('takes over a lock whose holder is gone, and releases it after', async () => {
    const lock = join(dir, 'lock');
    await writeFile(lock, '999999999\n');
    const seen = await withLockFile(
      lock,
      () => undefined,
      async () => readFile(lock, 'utf8'),
    );
    expect(seen.trim()).toBe(String(process.pid));
    await expect(readFile(lock)).rejects.toThrow(/ENOENT/);
  });

  it('waits for a live holder', async () => {
    const lock = join(dir, 'lock');
    const holder = spawn('sleep', ['30'], { stdio: 'ignore' });
    await writeFile(lock, `${holder.pid}\n`);
    const waitedFor: number[] = [];
    const done = withLockFile(
      lock,
      (pid) => waitedFor.push(pid),
      () => Promise.resolve('got it'),
    );
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(waitedFor).toEqual([holder.pid]);
    await terminate([holder.pid ?? 0], 1_000);
    await expect(done).resolves.toBe('got it');
  });
});
