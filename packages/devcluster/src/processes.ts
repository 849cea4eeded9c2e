// Finding and stopping processes devcluster started. A pid file alone is not proof (pids are reused after a
// reboot or a long time), so a pid counts as ours only while its command line names our state dir.
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';

export const execFileAsync = promisify(execFile);

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return !isZombie(pid);
  } catch (err) {
    // EPERM: it exists but belongs to someone else; for our purposes it is alive.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name (which may itself contain spaces or parentheses).
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export function commandLine(pid: number): string[] | undefined {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
}

/** True while `pid` runs and one of its arguments contains `marker` (our state dir). */
export function isOurProcess(pid: number, marker: string): boolean {
  if (!isAlive(pid)) return false;
  return commandLine(pid)?.some((arg) => arg.includes(marker)) ?? false;
}

export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number.parseInt((await readFile(path, 'utf8')).trim(), 10);
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

export async function writePidFile(path: string, pid: number): Promise<void> {
  await writeFile(path, `${pid}\n`);
}

export async function removeFile(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'ENOENT') throw err;
  });
}

export async function waitForExit(pid: number, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (!isAlive(pid)) return true;
    await sleep(50);
  }
  return !isAlive(pid);
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
  }
}

/** SIGTERM, then SIGKILL for whatever is still running after `graceMs`. Resolves once all are gone. */
export async function terminate(pids: readonly number[], graceMs: number): Promise<void> {
  const alive = pids.filter(isAlive);
  for (const pid of alive) signal(pid, 'SIGTERM');
  const exited = await Promise.all(alive.map((pid) => waitForExit(pid, graceMs)));
  const stubborn = alive.filter((_, i) => !exited[i]);
  for (const pid of stubborn) signal(pid, 'SIGKILL');
  await Promise.all(stubborn.map((pid) => waitForExit(pid, 5_000)));
}

/**
 * Runs `body` while holding `lockFile` (created exclusively, holding our pid). A lock whose holder is gone is
 * stale and taken over; a live holder is waited for, with `onWait` called once.
 */
export async function withLockFile<T>(
  lockFile: string,
  onWait: (holder: number) => void,
  body: () => Promise<T>,
): Promise<T> {
  let announced = false;
  for (;;) {
    try {
      await writeFile(lockFile, `${process.pid}\n`, { flag: 'wx' });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const holder = await readPidFile(lockFile);
      if (holder === undefined && (await ageMs(lockFile)) < 5_000) {
        // Created a moment ago and its pid not written yet: not stale.
        await sleep(100);
        continue;
      }
      if (holder && holder !== process.pid && isAlive(holder)) {
        if (!announced) onWait(holder);
        announced = true;
        await sleep(1_000);
      } else {
        await removeFile(lockFile);
      }
    }
  }
  try {
    return await body();
  } finally {
    await removeFile(lockFile);
  }
}

async function ageMs(path: string): Promise<number> {
  try {
    return Date.now() - (await stat(path)).mtimeMs;
  } catch {
    return Number.POSITIVE_INFINITY;
  }
}
