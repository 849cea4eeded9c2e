// The passtBinding interface binding: the launcher runs passt (user-mode networking, https://passt.top) in its own
// network namespace, and QEMU connects the guest's NIC to passt's unix socket. passt needs no privileges and no
// devices: it copies the pod's address, gateway and DNS to the guest by its own DHCP, and forwards the interface's
// `ports` (all TCP and UDP ports when none are listed, as KubeVirt's converter asks) from the pod's IP to the guest.
//
// Why the launcher and not libvirt starts it: libvirt 9.0 (Debian bookworm) has `<interface type='user'>` with
// `<backend type='passt'/>`, but its XML parser rejects that backend type (libvirt issue #462), so the domain
// reaches passt through QEMU's own `-netdev stream` (converter). Facts about passt 0.0~git20230309 that shape this:
// it sandboxes itself (mount, PID, UTS and IPC namespaces, then no capabilities, no_new_privs and a seccomp filter).
// As `nobody` (its default when started as root) it needs a user namespace for that, which the kernel refuses to a
// chrooted process (devcluster's containers) and a runtime's default seccomp profile to a container without
// SYS_ADMIN; so it keeps uid 0 (`--runas 0:0`) and skips the user namespace (`--netns-only`), and ends up with no
// capability all the same. `--one-off` makes it quit when its socket cannot be made, and `--debug` crashes it on the
// first inbound TCP connection, so neither is used.
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, readFile, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@kubevirt-ts/runtime';
import { PASST_DIR, PASST_LOG, PASST_SOCKET, POD_INTERFACE } from '@kubevirt-ts/schema/network';
import type { VirtualMachineInstance } from '../vmi.ts';

type Interface = NonNullable<VirtualMachineInstance['spec']['domain']['devices']['interfaces']>[number];

export const PASST_PID = 'passt.pid';

export interface PasstPaths {
  dir: string;
  socket: string;
  log: string;
  pid: string;
}

/** Where passt keeps its socket, log and pid file, under the launcher pod's private folder. */
export function passtPaths(privateDir: string): PasstPaths {
  const dir = join(privateDir, PASST_DIR);
  return {
    dir,
    socket: join(dir, PASST_SOCKET),
    log: join(dir, PASST_LOG),
    pid: join(dir, PASST_PID),
  };
}

/**
 * What passt said before it exited, for the Sync error: its output and the last lines of its log, without the
 * elapsed-time prefix passt puts on each line ("0.0021: "). The same failure must read the same every time: the
 * handler writes the message into the VMI's Synchronized condition and a SyncFailed event, and a message that
 * changes on each attempt would make each attempt write the VMI again (and record another event).
 */
export function passtFailureDetail(output: string[], logText: string): string {
  const lines = [...output, ...logText.trim().split('\n').slice(-3)];
  return lines
    .map((l) => l.replace(/^\s*\d+\.\d+:\s*/, '').trim())
    .filter((l) => l !== '')
    .join(' | ');
}

/**
 * passt's port options for an interface, as KubeVirt's converter decides them: the listed ports by protocol (TCP
 * when none is named), and every TCP and UDP port when the interface lists none.
 */
export function passtPortArgs(iface: Pick<Interface, 'ports'>): string[] {
  const ports = iface.ports ?? [];
  if (ports.length === 0) return ['--tcp-ports', 'all', '--udp-ports', 'all'];
  const list = (proto: 'TCP' | 'UDP') => {
    const numbers = ports.filter((p) => (p.protocol ?? 'TCP') === proto).map((p) => p.port);
    return numbers.length === 0 ? 'none' : [...new Set(numbers)].join(',');
  };
  return ['--tcp-ports', list('TCP'), '--udp-ports', list('UDP')];
}

/** The whole passt command line (after the binary). */
export function passtArgs(iface: Pick<Interface, 'ports'>, paths: PasstPaths): string[] {
  return [
    '--foreground',
    '--netns-only',
    '--runas',
    '0:0',
    '--socket',
    paths.socket,
    '--log-file',
    paths.log,
    '--pid',
    paths.pid,
    '--interface',
    POD_INTERFACE,
    ...passtPortArgs(iface),
  ];
}

export class PasstError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PasstError';
  }
}

export interface PasstOptions {
  log: Logger;
  privateDir: string;
  /** The passt binary (found on PATH by default). */
  command?: string;
  /** How long to wait for passt's socket. */
  startTimeoutMs?: number;
}

async function isSocket(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isSocket(),
    () => false,
  );
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** One passt process for the pod network interface; a launcher that restarts adopts the one still serving QEMU. */
export class Passt {
  readonly #o: PasstOptions;
  readonly #paths: PasstPaths;
  #child: ChildProcess | undefined;
  #adopted: number | undefined;
  #stopping = false;

  constructor(options: PasstOptions) {
    this.#o = options;
    this.#paths = passtPaths(options.privateDir);
  }

  get paths(): PasstPaths {
    return this.#paths;
  }

  get running(): boolean {
    return (
      (this.#child !== undefined && this.#child.exitCode === null && this.#child.signalCode === null) ||
      (this.#adopted !== undefined && alive(this.#adopted))
    );
  }

  async start(iface: Pick<Interface, 'ports'>): Promise<void> {
    if (this.running) return;
    const log = this.#o.log.child({ component: 'passt' });
    const previous = await this.#runningPid();
    if (previous !== undefined && (await isSocket(this.#paths.socket))) {
      this.#adopted = previous;
      log.info({ pid: previous }, 'passt from an earlier launcher is still serving the guest');
      return;
    }
    await rm(this.#paths.dir, { recursive: true, force: true });
    await mkdir(this.#paths.dir, { recursive: true });
    await chmod(this.#paths.dir, 0o700);
    const args = passtArgs(iface, this.#paths);
    const command = this.#o.command ?? 'passt';
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.#child = child;
    const recent: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (!line.trim()) return;
        log.debug({ line }, 'passt output');
        recent.push(line);
        if (recent.length > 10) recent.shift();
      });
    }
    const exited = once(child, 'exit').then(([code, signal]) => ({
      code: code as number | null,
      signal: signal as string | null,
    }));
    void exited.then(({ code, signal }) => {
      if (!this.#stopping)
        log.error(
          { code, signal, recent },
          'passt exited: the guest has lost the pod network until the VMI is restarted',
        );
    });
    try {
      await new Promise<void>((resolve, reject) => {
        child.once('spawn', resolve);
        child.once('error', reject);
      });
    } catch (err) {
      this.#child = undefined;
      const missing = (err as NodeJS.ErrnoException).code === 'ENOENT';
      throw new PasstError(
        `cannot run ${command}: ${(err as Error).message}${missing ? '; the launcher image needs the passt package' : ''}`,
        { cause: err },
      );
    }
    const deadline = Date.now() + (this.#o.startTimeoutMs ?? 10_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        const logText = await readFile(this.#paths.log, 'utf8').catch(() => '');
        throw new PasstError(
          `passt exited before it served the guest (${child.exitCode ?? child.signalCode}): ${passtFailureDetail(recent, logText)}`,
        );
      }
      if (await isSocket(this.#paths.socket)) break;
      if (Date.now() > deadline)
        throw new PasstError(`passt did not create ${this.#paths.socket} within its start timeout`);
      await sleep(20);
    }
    log.info({ pid: child.pid, args }, 'passt serves the pod network');
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    const child = this.#child;
    if (child !== undefined && child.exitCode === null && child.signalCode === null) {
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
    if (this.#adopted !== undefined && alive(this.#adopted)) process.kill(this.#adopted, 'SIGTERM');
    this.#child = undefined;
    this.#adopted = undefined;
  }

  /** The pid in passt's pid file, when that process is alive and is passt. */
  async #runningPid(): Promise<number | undefined> {
    const text = await readFile(this.#paths.pid, 'utf8').catch(() => undefined);
    const pid = text === undefined ? NaN : Number(text.trim());
    if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return undefined;
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    return comm.startsWith('passt') ? pid : undefined;
  }
}
