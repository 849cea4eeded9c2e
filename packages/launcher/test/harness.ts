// Runs real launchers for the integration tests and the benchmark: each in its own sandbox (a pod's mount
// namespace: DESIGN.md §4a paths, private libvirt folders), with the test guest's images mounted as a pod would get
// them, a notify server standing in for the handler's socket, and a gRPC client on launcher-sock.
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdir, mkdtemp, readFile, readdir, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { dialLauncher, negotiateVersion, serveNotify } from '@kubevirt-ts/proto';
import type { LauncherConnection, RunningServer } from '@kubevirt-ts/proto';
import { buildTestGuest } from '../../devcluster/src/guest/build.ts';
import type { TestGuest } from '../../devcluster/src/guest/build.ts';
import { ensureCapabilityCache } from '../src/capabilities-cache.ts';
import type { DomainJson } from '../src/domain.ts';
import { sandboxCommand } from '../src/sandbox.ts';
import type { SandboxBind } from '../src/sandbox.ts';
import type { VirtualMachineInstance } from '../src/vmi.ts';

const MAIN = fileURLToPath(new URL('../src/main.ts', import.meta.url));
const BUILT_MAIN = fileURLToPath(new URL('../dist/main.js', import.meta.url));

/** The node flags the image starts virt-launcher with: image/node-flags, one a line, # comments (ADR 0007). */
export async function imageNodeFlags(): Promise<string[]> {
  return (await readFile(new URL('../image/node-flags', import.meta.url), 'utf8'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export interface PodDirs {
  root: string;
  sockets: string;
  private: string;
  state: string;
}

export interface NotifiedDomain {
  type: string;
  domain: DomainJson;
}

export interface NotifiedK8sEvent {
  type: string;
  reason: string;
  message: string;
}

/** The handler's end of notify.v1, on <sockets>/notify-sock, recording what the launcher sends. */
export class NotifyRecorder {
  readonly domains: NotifiedDomain[] = [];
  readonly events: NotifiedK8sEvent[] = [];
  private server: RunningServer | undefined;

  static async listen(socket: string): Promise<NotifyRecorder> {
    const recorder = new NotifyRecorder();
    recorder.server = await serveNotify(
      { unix: socket },
      {
        domainEvent: (req) => {
          recorder.domains.push({
            type: req.eventType,
            domain: JSON.parse(req.domainJson.toString()) as DomainJson,
          });
          return { success: true, message: '' };
        },
        k8sEvent: (req) => {
          recorder.events.push({ type: req.type, reason: req.reason, message: req.message });
          return { success: true, message: '' };
        },
      },
    );
    return recorder;
  }

  last(): NotifiedDomain | undefined {
    return this.domains.at(-1);
  }

  async close(): Promise<void> {
    await this.server?.shutdown(0);
  }
}

/** Everything on the guest's serial console since connecting. */
export class SerialConsole {
  text = '';
  private socket: Socket | undefined;

  static async open(path: string, timeoutMs = 30_000): Promise<SerialConsole> {
    const console = new SerialConsole();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      try {
        console.socket = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once('connect', () => resolve(s));
          s.once('error', reject);
        });
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`the serial console ${path} did not open within ${timeoutMs} ms`, { cause: err });
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    console.socket.on('data', (b: Buffer) => (console.text += b.toString('utf8')));
    console.socket.on('error', () => undefined);
    return console;
  }

  write(text: string): void {
    this.socket?.write(text);
  }

  async waitFor(needle: string | RegExp, timeoutMs = 60_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const found = () => (typeof needle === 'string' ? this.text.includes(needle) : needle.test(this.text));
    while (!found()) {
      if (Date.now() > deadline) {
        throw new Error(
          `the serial console did not show ${String(needle)} within ${timeoutMs} ms; it shows:\n${this.text.slice(-2000)}`,
        );
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  close(): void {
    this.socket?.destroy();
  }
}

export interface LauncherProcessOptions {
  name: string;
  namespace?: string;
  uid: string;
  gracePeriodSeconds?: number;
  /** containerDisk image folders by volume name, mounted read-only under /var/run/kubevirt/container-disks/. */
  containerDisks?: Record<string, string>;
  /** The kernel-boot image folder, mounted read-only at /var/run/kubevirt/kernel-boot. */
  kernelBoot?: string;
  /** Seed the QEMU capability cache (default true). */
  seedCapabilities?: boolean;
  /** Start a notify server before the launcher (default true). */
  notify?: boolean;
  /** Run the built launcher (dist/main.js, as the image does) instead of the sources. */
  built?: boolean;
  /** node's flags; default: the image's (imageNodeFlags), so that the tests run the launcher as pods do. */
  nodeOptions?: string[];
}

export class LauncherProcess {
  readonly dirs: PodDirs;
  readonly child: ChildProcess;
  readonly logs: Record<string, unknown>[] = [];
  readonly exited: Promise<number | null>;
  readonly startedAt: number;
  notify: NotifyRecorder | undefined;
  domainName = '';
  private client: LauncherConnection | undefined;

  private constructor(dirs: PodDirs, child: ChildProcess, startedAt: number) {
    this.dirs = dirs;
    this.child = child;
    this.startedAt = startedAt;
    this.exited = once(child, 'exit').then(([code]) => code as number | null);
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      try {
        this.logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        this.logs.push({ msg: line });
      }
    });
    createInterface({ input: child.stderr as NodeJS.ReadableStream }).on('line', (line) =>
      this.logs.push({ stderr: line }),
    );
  }

  static async start(options: LauncherProcessOptions): Promise<LauncherProcess> {
    const root = await mkdtemp(join(tmpdir(), 'kvts-launcher-'));
    const dirs: PodDirs = {
      root,
      sockets: join(root, 'sockets'),
      private: join(root, 'private'),
      state: join(root, 'state'),
    };
    for (const d of [dirs.sockets, dirs.private, dirs.state]) await mkdir(d, { recursive: true });
    const binds: SandboxBind[] = [
      { source: dirs.sockets, target: '/var/run/kubevirt/sockets' },
      { source: dirs.private, target: '/var/run/kubevirt-private' },
    ];
    for (const [volume, dir] of Object.entries(options.containerDisks ?? {})) {
      binds.push({ source: dir, target: `/var/run/kubevirt/container-disks/${volume}`, readonly: true });
    }
    if (options.kernelBoot)
      binds.push({ source: options.kernelBoot, target: '/var/run/kubevirt/kernel-boot', readonly: true });
    const args = [
      ...(options.nodeOptions ?? (await imageNodeFlags())),
      ...(options.built ? [BUILT_MAIN] : ['--conditions=@kubevirt-ts/source', MAIN]),
      `--name=${options.name}`,
      `--namespace=${options.namespace ?? 'default'}`,
      `--uid=${options.uid}`,
      `--grace-period-seconds=${options.gracePeriodSeconds ?? 30}`,
      '--use-emulation',
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
    ];
    if (options.seedCapabilities !== false)
      args.push(`--qemu-capabilities-seed=${await ensureCapabilityCache()}`);
    let notify: NotifyRecorder | undefined;
    if (options.notify !== false) notify = await NotifyRecorder.listen(join(dirs.sockets, 'notify-sock'));
    const { command, args: sandboxArgs } = sandboxCommand([process.execPath, ...args], {
      stateDir: dirs.state,
      binds,
    });
    const startedAt = performance.now();
    const child = spawn(command, sandboxArgs, {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, NODE_NAME: 'test-node' },
    });
    const launcher = new LauncherProcess(dirs, child, startedAt);
    launcher.notify = notify;
    launcher.domainName = `${options.namespace ?? 'default'}_${options.name}`;
    return launcher;
  }

  get readySocket(): string {
    return join(this.dirs.sockets, 'launcher-sock');
  }

  /** Waits for launcher-sock, then dials it; resolves with the connection and the time from spawn to ready. */
  async ready(timeoutMs = 60_000): Promise<{ client: LauncherConnection; readyMs: number }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const exists = await stat(this.readySocket).then(
        () => true,
        () => false,
      );
      if (exists) break;
      if (this.child.exitCode !== null)
        throw new Error(
          `the launcher exited (${this.child.exitCode}) before it was ready: ${this.logText()}`,
        );
      if (Date.now() > deadline)
        throw new Error(`the launcher was not ready within ${timeoutMs} ms: ${this.logText()}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const readyMs = performance.now() - this.startedAt;
    this.client = dialLauncher({ unix: this.readySocket });
    await negotiateVersion(this.client);
    return { client: this.client, readyMs };
  }

  get connection(): LauncherConnection {
    if (!this.client) throw new Error('call ready() first');
    return this.client;
  }

  async domain(): Promise<DomainJson | undefined> {
    const r = await this.connection.getDomain({});
    return r.domainJson.length === 0 ? undefined : (JSON.parse(r.domainJson.toString()) as DomainJson);
  }

  /** Polls GetDomain until `predicate` holds. */
  async waitForDomain(
    predicate: (d: DomainJson | undefined) => boolean,
    timeoutMs = 60_000,
  ): Promise<DomainJson | undefined> {
    const deadline = Date.now() + timeoutMs;
    let last: DomainJson | undefined;
    for (;;) {
      last = await this.domain();
      if (predicate(last)) return last;
      if (Date.now() > deadline)
        throw new Error(
          `the domain did not reach the expected state in ${timeoutMs} ms; last: ${JSON.stringify(last?.status)}`,
        );
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  serialLog(): Promise<string> {
    return readFile(join(this.dirs.private, 'serial0.log'), 'utf8').catch(() => '');
  }

  logText(): string {
    return this.logs
      .map((l) => JSON.stringify(l))
      .join('\n')
      .slice(-4000);
  }

  /** Stops everything this launcher left: its process (SIGKILL), its QEMU, its folders. */
  async dispose(): Promise<void> {
    this.client?.close();
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGTERM');
      const timer = setTimeout(() => this.child.kill('SIGKILL'), 30_000);
      await this.exited;
      clearTimeout(timer);
    }
    await killQemu(this.domainName);
    await this.notify?.close();
    await rm(this.dirs.root, { recursive: true, force: true });
  }
}

/** Pids of the QEMU running a domain (<namespace>_<name>); a QEMU outlives a killed launcher, as in a pod. */
export async function qemuPids(domainName: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const cmdline = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (cmdline.startsWith('/usr/bin/qemu-system') && cmdline.includes(`guest=${domainName},`))
      pids.push(Number(entry));
  }
  return pids;
}

async function killQemu(domainName: string): Promise<void> {
  for (const pid of await qemuPids(domainName)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}

export interface TestVMIOptions {
  name: string;
  uid: string;
  guest: TestGuest;
  boot: 'kernel' | 'containerDisk';
  userData?: string;
  gracePeriodSeconds?: number;
  panicDevice?: boolean;
}

/** A VMI of the test guest: 1 vCPU, 256 MiB, cloud-init NoCloud on a SATA cdrom. */
export function testVMI(o: TestVMIOptions): VirtualMachineInstance {
  const disks: NonNullable<VirtualMachineInstance['spec']['domain']['devices']['disks']> = [];
  const volumes: NonNullable<VirtualMachineInstance['spec']['volumes']> = [];
  if (o.boot === 'containerDisk') {
    disks.push({ name: 'rootdisk', disk: { bus: 'virtio' }, bootOrder: 1 });
    volumes.push({ name: 'rootdisk', containerDisk: { image: 'kubevirt-ts/test-guest:disk' } });
  }
  if (o.userData !== undefined) {
    disks.push({ name: 'cloudinitdisk', cdrom: { bus: 'sata' } });
    volumes.push({ name: 'cloudinitdisk', cloudInitNoCloud: { userData: o.userData } });
  }
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: o.name, namespace: 'default', uid: o.uid },
    spec: {
      terminationGracePeriodSeconds: o.gracePeriodSeconds ?? 30,
      domain: {
        cpu: { cores: 1 },
        memory: { guest: '256Mi' },
        firmware:
          o.boot === 'kernel'
            ? {
                kernelBoot: {
                  kernelArgs: o.guest.kernelArgs,
                  container: { image: 'kubevirt-ts/test-guest:kernel', ...o.guest.kernelBootPaths },
                },
              }
            : undefined,
        devices: {
          disks,
          autoattachGraphicsDevice: false,
          panicDevices: o.panicDevice ? [{ model: 'isa' }] : undefined,
        },
      },
      volumes,
    },
  };
}

export async function testGuest(): Promise<TestGuest> {
  return buildTestGuest();
}

export function vmiJson(vmi: VirtualMachineInstance): Buffer {
  return Buffer.from(JSON.stringify(vmi));
}
