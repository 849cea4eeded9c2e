// The supervisor with real child processes (plain shell commands on the host network; no namespace needed).
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isAlive, readPidFile } from './processes.ts';
import type { ClusterState, ComponentSpec } from './spec.ts';
import { createSupervisor, type Supervisor } from './supervisor.ts';
import { eventually } from './testing.ts';

const log = pino({ level: 'silent' });

describe('createSupervisor', () => {
  let dir: string;
  let supervisor: Supervisor | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'devcluster-sup-'));
  });
  afterEach(async () => {
    await supervisor?.stopAll();
    supervisor = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const component = (name: string, script: string, extra: Partial<ComponentSpec> = {}): ComponentSpec => ({
    name,
    argv: ['sh', '-c', script],
    logFile: join(dir, `${name}.log`),
    pidFile: join(dir, `${name}.pid`),
    stopTimeoutMs: 2_000,
    ...extra,
  });

  const start = (components: ComponentSpec[]) => {
    const state = { stateDir: dir, components } as unknown as ClusterState;
    supervisor = createSupervisor(state, log);
    return supervisor;
  };

  const statusOf = (s: Supervisor, name: string) => s.status().components.find((c) => c.name === name);

  it('starts a component after its dependency is ready, with a pid file and a log', async () => {
    const s = start([
      component('base', 'echo base up; exec sleep 60'),
      component('dependent', 'echo dependent up; exec sleep 60', { startAfter: ['base'] }),
    ]);
    await eventually(() => statusOf(s, 'dependent')?.state === 'ready', { description: 'dependent ready' });
    const base = statusOf(s, 'base');
    const dependent = statusOf(s, 'dependent');
    expect(new Date(dependent?.startedAt ?? 0).getTime()).toBeGreaterThanOrEqual(
      new Date(base?.startedAt ?? 0).getTime(),
    );
    expect(await readPidFile(join(dir, 'base.pid'))).toBe(base?.pid);
    await eventually(async () =>
      (await readFile(join(dir, 'dependent.log'), 'utf8')).includes('dependent up'),
    );
    const log = await readFile(join(dir, 'dependent.log'), 'utf8');
    expect(log).toMatch(/--- devcluster: starting dependent at /);
  });

  it('holds a component back while its dependency is not ready', async () => {
    const s = start([
      component('never-ready', 'exec sleep 60', {
        readiness: { kind: 'unix-connect', socketPath: join(dir, 'none.sock') },
      }),
      component('blocked', 'exec sleep 60', { startAfter: ['never-ready'] }),
    ]);
    await eventually(() => statusOf(s, 'never-ready')?.state === 'starting');
    await new Promise((resolve) => setTimeout(resolve, 600));
    expect(statusOf(s, 'blocked')?.state).toBe('waiting');
    expect(statusOf(s, 'blocked')?.pid).toBeUndefined();
  });

  it('restarts a component that exits unexpectedly and records the exit', async () => {
    const marker = join(dir, 'ran-once');
    // Exits with code 3 the first time, stays up the second.
    const s = start([
      component('flaky', `if [ -e ${marker} ]; then exec sleep 60; else touch ${marker}; exit 3; fi`),
    ]);
    const status = await eventually(
      () => {
        const c = statusOf(s, 'flaky');
        return c?.state === 'ready' && c.restarts === 1 ? c : undefined;
      },
      { timeoutMs: 15_000, description: 'flaky restarted once' },
    );
    expect(status.lastExit?.code).toBe(3);
  });

  it('restarts on request without counting it as a crash', async () => {
    const s = start([component('svc', 'exec sleep 60')]);
    await eventually(() => statusOf(s, 'svc')?.state === 'ready');
    const before = statusOf(s, 'svc')?.pid;
    const after = await s.restart('svc');
    expect(after.state).toBe('ready');
    expect(after.pid).not.toBe(before);
    expect(after.restarts).toBe(0);
    expect(before && isAlive(before)).toBe(false);
  });

  it('stops everything, SIGKILLing what ignores SIGTERM, and removes pid files', async () => {
    const s = start([
      component('polite', 'exec sleep 60'),
      component('stubborn', "trap '' TERM; while true; do sleep 0.1; done", { stopTimeoutMs: 500 }),
    ]);
    await eventually(() => s.status().components.every((c) => c.state === 'ready'));
    const pids = s.status().components.map((c) => c.pid ?? 0);
    await s.stopAll();
    supervisor = undefined;
    for (const pid of pids) expect(isAlive(pid)).toBe(false);
    expect(s.status().components.map((c) => c.state)).toEqual(['stopped', 'stopped']);
    expect(await readPidFile(join(dir, 'stubborn.pid'))).toBeUndefined();
  });
});
