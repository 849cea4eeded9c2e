// The launcher's own libvirt: it writes the daemons' configuration, seeds libvirt's QEMU capability cache, starts
// virtlogd and then libvirtd in the foreground, and restarts either when it dies. A restarted libvirtd finds a running
// QEMU again from its state files in /run/libvirt, so a daemon crash does not touch the guest.
// Everything lives in the pod's own filesystem (its emptyDirs and its image): /etc/libvirt, /run/libvirt,
// /var/lib/libvirt, /var/log/libvirt and /var/cache/libvirt belong to this launcher alone.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { copyFile, mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '@kubevirt-ts/runtime';

/** Settings the launcher's libvirt needs in a pod; why each is there is said next to it. */
export const QEMU_CONF = `# Written by virt-launcher at start; see packages/launcher/src/daemons.ts.
# QEMU runs as root inside the pod: the pod's volumes and sockets belong to root, and there is no other user.
user = "root"
group = "root"
# Never chown or relabel the VMI's disks and sockets, nor remember owners in xattrs: they are the pod's volumes.
dynamic_ownership = 0
remember_owner = 0
# The pod's cgroup is the container's; libvirt creates none of its own (no systemd machined in a pod).
cgroup_controllers = [ ]
# A mount namespace per domain would hide the pod's volumes from QEMU; the pod already has its own.
namespaces = [ ]
# No SELinux or AppArmor driver inside a container: the pod's securityContext is the boundary.
security_driver = "none"
`;

export const LIBVIRTD_CONF = `# Written by virt-launcher at start; see packages/launcher/src/daemons.ts.
# Only the launcher (root, in the same pod) talks to this daemon, through the socket in the pod's /run/libvirt.
unix_sock_group = "root"
unix_sock_ro_perms = "0700"
unix_sock_rw_perms = "0700"
auth_unix_ro = "none"
auth_unix_rw = "none"
# Warnings and errors on stderr, which the launcher forwards to its own log.
log_outputs = "3:stderr"
`;

export const VIRTLOGD_CONF = `# Written by virt-launcher at start; see packages/launcher/src/daemons.ts.
log_outputs = "3:stderr"
`;

export interface LibvirtPaths {
  configDir: string;
  runDir: string;
  libDir: string;
  logDir: string;
  cacheDir: string;
}

export const POD_LIBVIRT_PATHS: Readonly<LibvirtPaths> = {
  configDir: '/etc/libvirt',
  runDir: '/run/libvirt',
  libDir: '/var/lib/libvirt',
  logDir: '/var/log/libvirt',
  cacheDir: '/var/cache/libvirt',
};

export interface LibvirtDaemonsOptions {
  log: Logger;
  paths?: LibvirtPaths;
  /** A folder of libvirt QEMU capability files (*.xml) to seed an empty cache from. */
  capabilitiesSeed?: string | undefined;
  /** How long to wait for a daemon's socket after starting it. */
  startTimeoutMs?: number;
  /** Pause before restarting a daemon that died, so a daemon that cannot start does not spin. */
  restartDelayMs?: number;
}

interface Supervised {
  name: 'virtlogd' | 'libvirtd';
  command: string;
  args: string[];
  socket: string;
  child?: ChildProcess | undefined;
}

export class LibvirtDaemons {
  private readonly log: Logger;
  private readonly paths: LibvirtPaths;
  private readonly options: LibvirtDaemonsOptions;
  private readonly daemons: Supervised[];
  private readonly restartListeners = new Set<(name: string) => void>();
  private stopping = false;

  constructor(options: LibvirtDaemonsOptions) {
    this.options = options;
    this.log = options.log.child({ component: 'libvirt-daemons' });
    this.paths = options.paths ?? POD_LIBVIRT_PATHS;
    const conf = this.paths.configDir;
    this.daemons = [
      {
        name: 'virtlogd',
        command: 'virtlogd',
        args: ['--config', join(conf, 'virtlogd.conf')],
        socket: join(this.paths.runDir, 'virtlogd-sock'),
      },
      {
        name: 'libvirtd',
        command: 'libvirtd',
        args: ['--config', join(conf, 'libvirtd.conf')],
        socket: this.libvirtSocket,
      },
    ];
  }

  /** The socket of libvirtd's read-write API (qemu:///system). */
  get libvirtSocket(): string {
    return join(this.paths.runDir, 'libvirt-sock');
  }

  /** Called after a daemon that died has been started again and answers on its socket. */
  onRestart(listener: (name: string) => void): void {
    this.restartListeners.add(listener);
  }

  /** Pids of the running daemons, for the memory report. */
  pids(): Record<string, number | undefined> {
    return Object.fromEntries(this.daemons.map((d) => [d.name, d.child?.pid]));
  }

  async start(): Promise<{ seededCapabilities: number }> {
    const { configDir, runDir, libDir, logDir, cacheDir } = this.paths;
    for (const dir of [
      configDir,
      runDir,
      join(libDir, 'qemu'),
      join(logDir, 'qemu'),
      join(cacheDir, 'qemu', 'capabilities'),
    ]) {
      await mkdir(dir, { recursive: true });
    }
    await writeFile(join(configDir, 'qemu.conf'), QEMU_CONF);
    await writeFile(join(configDir, 'libvirtd.conf'), LIBVIRTD_CONF);
    await writeFile(join(configDir, 'virtlogd.conf'), VIRTLOGD_CONF);
    const seededCapabilities = await this.seedCapabilities(join(cacheDir, 'qemu', 'capabilities'));
    // virtlogd first: libvirtd hands QEMU's log pipes to it when it starts a domain.
    for (const daemon of this.daemons) await this.launch(daemon);
    return { seededCapabilities };
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const daemon of [...this.daemons].reverse()) {
      const child = daemon.child;
      if (!child || child.exitCode !== null || child.signalCode !== null) continue;
      const exited = once(child, 'exit');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(timer);
    }
  }

  private async seedCapabilities(target: string): Promise<number> {
    const seed = this.options.capabilitiesSeed;
    if (!seed) return 0;
    if ((await readdir(target)).some((f) => f.endsWith('.xml'))) return 0;
    let files: string[];
    try {
      files = (await readdir(seed)).filter((f) => f.endsWith('.xml'));
    } catch (err) {
      this.log.warn(
        { err, seed },
        'QEMU capability cache seed is unreadable; libvirt will probe QEMU (about 8 s)',
      );
      return 0;
    }
    for (const f of files) await copyFile(join(seed, f), join(target, f));
    this.log.info({ seed, files: files.length }, 'seeded the QEMU capability cache');
    return files.length;
  }

  private async launch(daemon: Supervised): Promise<void> {
    const child = spawn(daemon.command, daemon.args, { stdio: ['ignore', 'pipe', 'pipe'] });
    daemon.child = child;
    const log = this.log.child({ daemon: daemon.name });
    // libvirt logs many harmless "errors" in a pod (no D-Bus, no dmidecode, no dnsmasq): its output goes to the
    // debug log, and the last lines come with the error when the daemon dies.
    const recent: string[] = [];
    for (const stream of [child.stdout, child.stderr]) {
      createInterface({ input: stream }).on('line', (line) => {
        if (!line.trim()) return;
        log.debug({ line }, 'daemon output');
        recent.push(line);
        if (recent.length > 20) recent.shift();
      });
    }
    const spawned = new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', (err) =>
        reject(
          new Error(
            `cannot run ${daemon.command}: ${err.message}` +
              ((err as NodeJS.ErrnoException).code === 'ENOENT'
                ? '; install libvirt (scripts/install-hypervisor.sh)'
                : ''),
            { cause: err },
          ),
        ),
      );
    });
    child.once('exit', (code, signal) => {
      if (this.stopping || daemon.child !== child) return;
      log.error({ code, signal, output: recent }, `${daemon.name} exited; restarting it`);
      void this.restart(daemon);
    });
    await spawned;
    await this.waitForSocket(daemon, child, recent);
    log.info({ pid: child.pid }, `${daemon.name} is up`);
  }

  private async restart(daemon: Supervised): Promise<void> {
    await sleep(this.options.restartDelayMs ?? 1_000);
    if (this.stopping) return;
    try {
      await this.launch(daemon);
      for (const listener of this.restartListeners) listener(daemon.name);
    } catch (err) {
      this.log.error({ err, daemon: daemon.name }, 'restarting a libvirt daemon failed; trying again');
      void this.restart(daemon);
    }
  }

  private async waitForSocket(daemon: Supervised, child: ChildProcess, output: string[]): Promise<void> {
    const deadline = Date.now() + (this.options.startTimeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(
          `${daemon.name} exited (${child.exitCode ?? child.signalCode}) before it listened on ${daemon.socket}: ${output.join(' | ')}`,
        );
      }
      if (await acceptsConnections(daemon.socket)) return;
      if (Date.now() > deadline) {
        throw new Error(
          `${daemon.name} did not listen on ${daemon.socket} within ${this.options.startTimeoutMs ?? 30_000} ms`,
        );
      }
      await sleep(20);
    }
  }
}

async function acceptsConnections(path: string): Promise<boolean> {
  try {
    if (!(await stat(path)).isSocket()) return false;
  } catch {
    return false;
  }
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
