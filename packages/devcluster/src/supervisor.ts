// The supervisor: one detached process per devcluster that starts the components of cluster.json in dependency
// order, sends their output to log files, keeps pid files, restarts a component that exits unexpectedly (with
// exponential backoff, as the kubelet does for static pods), and answers on a control socket (HTTP over a unix
// socket) for `status`, `down` and the test harness's restartApiServer().
//
// Run as a process: node supervisor.ts STATE_DIR/cluster.json
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync, writeSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { statePaths } from './layout.ts';
import { createLogger } from './log.ts';
import { inNamespace } from './netns.ts';
import { probeOnce } from './probe.ts';
import { removeFile, waitForExit, writePidFile } from './processes.ts';
import type { ClusterState, ComponentSpec, ComponentStatus, SupervisorStatus } from './spec.ts';

const PROBE_INTERVAL_MS = 200;
const FIRST_BACKOFF_MS = 1_000;
const MAX_BACKOFF_MS = 30_000;
/** A component that ran this long before exiting starts its backoff over. */
const STABLE_RUN_MS = 60_000;
const DEFAULT_STOP_TIMEOUT_MS = 10_000;
const RESTART_READY_TIMEOUT_MS = 120_000;

type Intent = 'run' | 'restart' | 'stop';

interface Runner {
  spec: ComponentSpec;
  status: ComponentStatus;
  intent: Intent;
  child: ChildProcess | undefined;
  /** Wakes the loop from a backoff or dependency wait early (stop or restart). */
  wake: (() => void) | undefined;
  readyWaiters: Set<() => void>;
  loop: Promise<void> | undefined;
}

export interface Supervisor {
  status(): SupervisorStatus;
  /** Stops and starts one component; resolves when it is ready again. */
  restart(name: string): Promise<ComponentStatus>;
  /** Stops every component in reverse start order. */
  stopAll(): Promise<void>;
}

/** Read through a call: the intent changes while the loop awaits, which control-flow narrowing cannot see. */
function intentOf(runner: Runner): Intent {
  return runner.intent;
}

function interruptibleSleep(runner: Runner, ms: number): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      runner.wake = undefined;
      resolve();
    }
    runner.wake = done;
  });
}

function appendLine(file: string, line: string): void {
  const fd = openSync(file, 'a');
  try {
    writeSync(fd, `${line}\n`);
  } finally {
    closeSync(fd);
  }
}

export function createSupervisor(state: ClusterState, log: Logger): Supervisor {
  const startedAt = new Date().toISOString();
  const runners = new Map<string, Runner>();
  for (const spec of state.components) {
    runners.set(spec.name, {
      spec,
      status: { name: spec.name, state: 'waiting', restarts: 0, logFile: spec.logFile },
      intent: 'run',
      child: undefined,
      wake: undefined,
      readyWaiters: new Set(),
      loop: undefined,
    });
  }

  const depsReady = (runner: Runner) =>
    (runner.spec.startAfter ?? []).every((name) => runners.get(name)?.status.state === 'ready');

  function markReady(runner: Runner): void {
    runner.status.state = 'ready';
    log.info({ child: runner.spec.name, childPid: runner.status.pid }, 'component ready');
    for (const waiter of runner.readyWaiters) waiter();
    runner.readyWaiters.clear();
  }

  async function probeUntilReady(runner: Runner, child: ChildProcess): Promise<void> {
    const probe = runner.spec.readiness;
    while (runner.child === child && child.exitCode === null && child.signalCode === null) {
      if (!probe || (await probeOnce(probe))) {
        if (runner.child === child && runner.status.state === 'starting') markReady(runner);
        return;
      }
      await sleep(PROBE_INTERVAL_MS);
    }
  }

  function spawnComponent(runner: Runner): ChildProcess {
    const { spec } = runner;
    const argv = spec.netns ? inNamespace(spec.argv, spec.netns) : spec.argv;
    appendLine(spec.logFile, `--- devcluster: starting ${spec.name} at ${new Date().toISOString()}`);
    const fd = openSync(spec.logFile, 'a');
    try {
      const [command, ...args] = argv;
      if (!command) throw new Error(`component ${spec.name} has an empty command`);
      return spawn(command, args, {
        stdio: ['ignore', fd, fd],
        env: { ...process.env, ...spec.env },
        ...(spec.cwd ? { cwd: spec.cwd } : {}),
      });
    } finally {
      closeSync(fd);
    }
  }

  async function runLoop(runner: Runner): Promise<void> {
    const { spec } = runner;
    let backoffMs = FIRST_BACKOFF_MS;
    while (intentOf(runner) !== 'stop') {
      runner.status.state = 'waiting';
      while (!depsReady(runner) && intentOf(runner) !== 'stop')
        await interruptibleSleep(runner, PROBE_INTERVAL_MS);
      if (intentOf(runner) === 'stop') break;
      runner.intent = 'run';

      const began = Date.now();
      const child = spawnComponent(runner);
      runner.child = child;
      const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
        child.once('exit', (code, signal) => resolve({ code, signal }));
        child.once('error', (err) => {
          appendLine(spec.logFile, `--- devcluster: could not start ${spec.name}: ${err.message}`);
          resolve({ code: null, signal: null });
        });
      });
      runner.status.state = 'starting';
      runner.status.pid = child.pid;
      runner.status.startedAt = new Date().toISOString();
      if (child.pid) await writePidFile(spec.pidFile, child.pid);
      log.info({ child: spec.name, childPid: child.pid }, 'component started');
      void probeUntilReady(runner, child);

      const { code, signal } = await exited;
      runner.child = undefined;
      await removeFile(spec.pidFile);
      const at = new Date().toISOString();
      runner.status.lastExit = { code, signal, at };
      runner.status.pid = undefined;
      appendLine(
        spec.logFile,
        `--- devcluster: ${spec.name} exited (code ${code}, signal ${signal}) at ${at}`,
      );
      if (intentOf(runner) === 'stop') break;
      if (intentOf(runner) === 'restart') {
        log.info({ child: spec.name }, 'restarting on request');
        continue;
      }
      runner.status.restarts += 1;
      if (Date.now() - began > STABLE_RUN_MS) backoffMs = FIRST_BACKOFF_MS;
      log.warn({ child: spec.name, code, signal, backoffMs }, 'component exited unexpectedly; restarting');
      runner.status.state = 'backoff';
      await interruptibleSleep(runner, backoffMs);
      backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
    }
    runner.status.state = 'stopped';
  }

  async function stopChild(runner: Runner): Promise<void> {
    runner.wake?.();
    const child = runner.child;
    if (!child?.pid) return;
    runner.status.state = 'stopping';
    child.kill('SIGTERM');
    if (!(await waitForExit(child.pid, runner.spec.stopTimeoutMs ?? DEFAULT_STOP_TIMEOUT_MS))) {
      log.warn({ child: runner.spec.name, childPid: child.pid }, 'no exit after SIGTERM; sending SIGKILL');
      child.kill('SIGKILL');
    }
  }

  for (const runner of runners.values()) {
    runner.loop = runLoop(runner).catch((err: unknown) => {
      log.error({ child: runner.spec.name, err }, 'supervision loop failed');
      runner.status.state = 'stopped';
    });
  }

  return {
    status: () => ({
      pid: process.pid,
      startedAt,
      components: [...runners.values()].map((r) => ({ ...r.status })),
    }),

    async restart(name) {
      const runner = runners.get(name);
      if (!runner) throw new Error(`no component named ${name}`);
      if (runner.intent === 'stop') throw new Error(`${name} is stopping`);
      const ready = new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          runner.readyWaiters.delete(onReady);
          reject(
            new Error(`${name} was not ready within ${RESTART_READY_TIMEOUT_MS / 1000} s of its restart`),
          );
        }, RESTART_READY_TIMEOUT_MS);
        function onReady() {
          clearTimeout(timer);
          resolve();
        }
        runner.readyWaiters.add(onReady);
      });
      runner.intent = 'restart';
      await stopChild(runner);
      await ready;
      return { ...runner.status };
    },

    async stopAll() {
      const ordered = [...runners.values()].reverse();
      for (const runner of ordered) runner.intent = 'stop';
      for (const runner of ordered) {
        await stopChild(runner);
        await runner.loop;
      }
    },
  };
}

function reply(res: http.ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

export function createControlServer(
  supervisor: Supervisor,
  onShutdown: () => void,
  log: Logger,
): http.Server {
  return http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://supervisor');
    const restart = /^\/components\/([^/]+)\/restart$/.exec(url.pathname);
    if (req.method === 'GET' && url.pathname === '/status') return reply(res, 200, supervisor.status());
    if (req.method === 'POST' && restart?.[1]) {
      const name = decodeURIComponent(restart[1]);
      if (!supervisor.status().components.some((c) => c.name === name)) {
        return reply(res, 404, { error: `no component named ${name}` });
      }
      log.info({ child: name }, 'restart requested');
      supervisor.restart(name).then(
        (status) => reply(res, 200, status),
        (err: unknown) => reply(res, 504, { error: err instanceof Error ? err.message : String(err) }),
      );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/shutdown') {
      reply(res, 202, { stopping: true });
      onShutdown();
      return;
    }
    reply(res, 404, { error: `no route ${req.method} ${url.pathname}` });
  });
}

async function main(clusterFile: string): Promise<void> {
  const log = createLogger('supervisor');
  const state = JSON.parse(await readFile(clusterFile, 'utf8')) as ClusterState;
  const paths = statePaths(state.stateDir);
  await mkdir(paths.run, { recursive: true });
  await mkdir(paths.logs, { recursive: true });
  await writePidFile(paths.supervisorPidFile, process.pid);
  await removeFile(paths.controlSocket);

  const supervisor = createSupervisor(state, log);
  let stopping: Promise<void> | undefined;
  const shutdown = (reason: string) => {
    stopping ??= (async () => {
      log.info({ reason }, 'stopping all components');
      await supervisor.stopAll();
      server.close();
      await removeFile(paths.controlSocket);
      await removeFile(paths.supervisorPidFile);
      log.info('stopped');
      process.exit(0);
    })();
  };
  const server = createControlServer(supervisor, () => shutdown('shutdown request'), log);
  server.listen(paths.controlSocket);
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  // Detached from any terminal, but ignore a stray hangup all the same.
  process.on('SIGHUP', () => undefined);
  log.info(
    { components: state.components.map((c) => c.name), controlSocket: paths.controlSocket },
    'supervising',
  );
}

if (import.meta.main) {
  const clusterFile = process.argv[2];
  if (!clusterFile) {
    process.stderr.write('usage: supervisor.ts STATE_DIR/cluster.json\n');
    process.exit(2);
  }
  main(clusterFile).catch((err: unknown) => {
    process.stderr.write(`supervisor: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  });
}
