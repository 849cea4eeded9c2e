// Starting, watching and stopping containers: each container runs under a detached shim (sandbox.ts), so it
// outlives a restart of the node agent; the shim records the exit code in the container's folder, where a
// restarted agent reads it. A container counts as started once its sandbox reported `started` on the start pipe;
// a sandbox that failed before that is a start error, explained by the last lines of its log.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { mkdir, readFile, rm, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { fileURLToPath } from 'node:url';
import { commandLine, isAlive } from '../processes.ts';
import {
  renderContainerScript,
  renderShimScript,
  type ContainerSandbox,
  type SandboxTools,
} from './sandbox.ts';

/** Where each tool lives on Debian/Ubuntu (merged /usr); checked once at agent start. */
const TOOL_CANDIDATES: Record<keyof SandboxTools, string[]> = {
  sh: ['/usr/bin/sh', '/bin/sh'],
  mount: ['/usr/bin/mount', '/bin/mount'],
  mkdir: ['/usr/bin/mkdir', '/bin/mkdir'],
  cp: ['/usr/bin/cp', '/bin/cp'],
  mv: ['/usr/bin/mv', '/bin/mv'],
  ln: ['/usr/bin/ln', '/bin/ln'],
  chroot: ['/usr/sbin/chroot', '/usr/bin/chroot'],
  env: ['/usr/bin/env', '/bin/env'],
  hostname: ['/usr/bin/hostname', '/bin/hostname'],
  unshare: ['/usr/bin/unshare'],
  nsenter: ['/usr/bin/nsenter'],
};

// The repository our images run from (four levels up from this file). A container mounts a fresh /tmp and /run,
// which would hide a clone living there (CI clones under /tmp), so it is bound back when it is under either.
const REPO_ROOT = fileURLToPath(new URL('../../../../', import.meta.url)).replace(/\/$/, '');
const HIDDEN_REPO_ROOT = /^\/(tmp|run)\//.test(`${REPO_ROOT}/`) ? [REPO_ROOT] : [];

export function findSandboxTools(): SandboxTools {
  const out = {} as SandboxTools;
  for (const [tool, candidates] of Object.entries(TOOL_CANDIDATES) as [keyof SandboxTools, string[]][]) {
    const found = candidates.find((path) => existsSync(path));
    if (!found) {
      throw new Error(
        `the node agent needs ${tool} (looked in ${candidates.join(', ')}); install util-linux and coreutils`,
      );
    }
    out[tool] = found;
  }
  return out;
}

/** Mount points of host file systems other than / that a container should see (read-only), from mountinfo. */
export function hostSubmounts(mountinfo: string = readFileSync('/proc/self/mountinfo', 'utf8')): string[] {
  const skip = ['/proc', '/sys', '/dev', '/run', '/tmp'];
  const points = mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4] ?? '')
    .filter((p) => p.startsWith('/') && p !== '/')
    .map((p) => p.replace(/\\040/g, ' '))
    .filter((p) => !skip.some((s) => p === s || p.startsWith(`${s}/`)));
  // Only the outermost of nested mount points: --rbind takes the ones below along.
  return [...new Set(points)].filter((p) => !points.some((q) => q !== p && p.startsWith(`${q}/`))).sort();
}

/** What the agent keeps about one started container (persisted in the pod's record). */
export interface ContainerHandle {
  id: string;
  dir: string;
  /** The detached shim (sh) that waits for the sandbox. */
  shimPid: number;
  /** PID 1 of the container's PID namespace (as seen from the node), which receives the stop signals. */
  initPid: number;
  startedAt: string;
  logFile: string;
}

export type StartResult =
  { ok: true; handle: ContainerHandle } | { ok: false; message: string; exitCode: number | undefined };

export interface StartRequest {
  id: string;
  /** The container's folder (under the node's agent state). */
  dir: string;
  sandbox: Omit<ContainerSandbox, 'dir' | 'hostSubmounts'>;
  netnsPath: string | undefined;
  logFile: string;
  env: ReadonlyMap<string, string>;
}

const START_TIMEOUT_MS = 60_000;

function childrenOf(pid: number): number[] {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
      .trim()
      .split(/\s+/)
      .filter(Boolean)
      .map(Number);
  } catch {
    return [];
  }
}

async function tail(file: string, lines: number): Promise<string> {
  try {
    return (await readFile(file, 'utf8')).trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

export class ContainerRuntime {
  readonly #tools: SandboxTools;
  readonly #submounts: string[];
  readonly #log: Logger;
  /** Shims this agent started: their exit events arrive at once; adopted ones are polled. */
  readonly #children = new Map<string, ChildProcess>();

  constructor(opts: { log: Logger; tools?: SandboxTools; submounts?: string[] }) {
    this.#tools = opts.tools ?? findSandboxTools();
    this.#submounts = opts.submounts ?? hostSubmounts();
    this.#log = opts.log.child({ component: 'runtime' });
  }

  async start(req: StartRequest, onExit: () => void): Promise<StartResult> {
    await rm(req.dir, { recursive: true, force: true });
    await mkdir(req.dir, { recursive: true, mode: 0o700 });
    await mkdir(dirname(req.logFile), { recursive: true });
    const script = renderContainerScript(
      { ...req.sandbox, dir: req.dir, hostSubmounts: this.#submounts, keepHostPaths: HIDDEN_REPO_ROOT },
      this.#tools,
    );
    const shim = renderShimScript(
      { dir: req.dir, netnsPath: req.netnsPath, pidNamespace: req.sandbox.pidNamespace },
      this.#tools,
      script,
    );
    const log = openSync(req.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(this.#tools.sh, ['-c', shim, `devcluster-shim:${req.id}`], {
        detached: true,
        stdio: ['ignore', log, log, 'pipe'],
        env: Object.fromEntries(req.env),
        cwd: req.dir,
      });
    } finally {
      closeSync(log);
    }
    const pipe = child.stdio[3];
    const started = await new Promise<boolean>((resolve) => {
      let text = '';
      const timer = setTimeout(() => resolve(false), START_TIMEOUT_MS);
      pipe?.on('data', (chunk: Buffer) => {
        text += chunk.toString();
        if (text.includes('started')) {
          clearTimeout(timer);
          resolve(true);
        }
      });
      pipe?.on('close', () => {
        clearTimeout(timer);
        resolve(text.includes('started'));
      });
      child.once('error', () => resolve(false));
    });
    pipe?.destroy();
    const shimPid = child.pid;
    if (!started || !shimPid) {
      const exitCode = await new Promise<number | undefined>((resolve) => {
        if (child.exitCode !== null) resolve(this.#readExitSync(req.dir));
        else child.once('exit', () => resolve(this.#readExitSync(req.dir)));
        setTimeout(() => resolve(undefined), 5_000);
      });
      const why = (await tail(req.logFile, 8)) || 'no output';
      return {
        ok: false,
        exitCode,
        message: `the container's sandbox failed before its command started: ${why}`,
      };
    }
    const sandboxPid = childrenOf(shimPid)[0];
    const initPid =
      sandboxPid === undefined
        ? undefined
        : req.sandbox.pidNamespace
          ? childrenOf(sandboxPid)[0]
          : sandboxPid;
    const handle: ContainerHandle = {
      id: req.id,
      dir: req.dir,
      shimPid,
      initPid: initPid ?? shimPid,
      startedAt: new Date().toISOString(),
      logFile: req.logFile,
    };
    this.#children.set(req.id, child);
    child.once('exit', () => {
      this.#children.delete(req.id);
      onExit();
    });
    child.unref();
    return { ok: true, handle };
  }

  #readExitSync(dir: string): number | undefined {
    try {
      const code = Number.parseInt(readFileSync(join(dir, 'exit'), 'utf8').trim(), 10);
      return Number.isInteger(code) ? code : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * The container's exit code once it has exited; undefined while it runs. A shim that vanished without writing
   * one (killed from outside) counts as exit 137, as a killed container would.
   */
  exitCode(handle: ContainerHandle): number | undefined {
    const code = this.#readExitSync(handle.dir);
    if (code !== undefined) return code;
    if (this.#children.has(handle.id)) return undefined;
    const shimAlive =
      isAlive(handle.shimPid) && (commandLine(handle.shimPid)?.join(' ').includes(handle.id) ?? false);
    if (shimAlive) return undefined;
    // The shim may have just written it.
    return this.#readExitSync(handle.dir) ?? 137;
  }

  /** Sends a signal to the container's PID 1 (SIGKILL there ends the whole PID namespace). */
  signal(handle: ContainerHandle, signal: NodeJS.Signals): void {
    const ours = commandLine(handle.initPid);
    if (!ours) return;
    try {
      process.kill(handle.initPid, signal);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }

  /** The process that runs the command (for exec probes): the child of a container's init, or PID 1 itself. */
  commandPid(handle: ContainerHandle, init: boolean): number {
    return init ? (childrenOf(handle.initPid)[0] ?? handle.initPid) : handle.initPid;
  }

  /** Removes an exited container's folder (its writable layer). */
  async remove(handle: Pick<ContainerHandle, 'dir'>): Promise<void> {
    await rm(handle.dir, { recursive: true, force: true }).catch((err: unknown) =>
      this.#log.warn({ err, dir: handle.dir }, 'could not remove a container folder'),
    );
  }

  /** True when the container folder is still there (a restarted agent checks what it can adopt). */
  async exists(handle: Pick<ContainerHandle, 'dir'>): Promise<boolean> {
    return stat(handle.dir).then(
      () => true,
      () => false,
    );
  }
}
