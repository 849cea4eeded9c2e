// One launcher process: its libvirt daemons, the domain manager, the command server and the notify client, started
// in that order; ready (launcher-sock) once all of them are. It ends when its domain is gone: deleted by the
// handler, or stopped and not deleted within finalDeleteTimeoutMs. On SIGTERM it shuts the guest down within the
// grace period, destroys it if it is still running then, sends the final event and stops its daemons.
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@kubevirt-ts/runtime';
import type { OvmfFirmware } from './converter/convert.ts';
import { LibvirtDaemons } from './daemons.ts';
import type { LibvirtPaths } from './daemons.ts';
import type { DiskLayout } from './disks.ts';
import type { DomainJson, VMIIdentity } from './domain.ts';
import { LibvirtHypervisor } from './libvirt/client.ts';
import { DomainManager } from './manager.ts';
import { NotifyClient } from './notify.ts';
import { startCommandServer } from './server.ts';
import type { CommandServer } from './server.ts';
import { PodNetwork } from './network/pod-network.ts';

export const NOTIFY_SOCKET = 'notify-sock';

export interface LauncherOptions {
  identity: VMIIdentity;
  gracePeriodSeconds: number;
  useEmulation: boolean;
  socketsDir: string;
  privateDir: string;
  libvirtRuntimeDir: string;
  containerDisksDir: string;
  kernelBootDir: string;
  /** A folder of pre-made libvirt QEMU capability files to seed the private cache from. */
  capabilitiesSeed?: string | undefined;
  log: Logger;
  /** How long a stopped domain waits for the handler's Delete before the launcher exits anyway. */
  finalDeleteTimeoutMs?: number;
  /** libvirt's other folders; the pod's own by default. */
  libvirtPaths?: Partial<LibvirtPaths>;
}

export interface LauncherTimings {
  /** virtlogd and libvirtd up (includes libvirt's QEMU probe when the capability cache is empty). */
  daemonsMs: number;
  /** Connected to libvirt and ready to take commands (launcher-sock). */
  readyMs: number;
  seededCapabilities: number;
}

async function usable(path: string, mode: number): Promise<boolean> {
  return access(path, mode).then(
    () => true,
    () => false,
  );
}

/** OVMF as Debian's ovmf package installs it, when it does. */
async function findOvmf(): Promise<OvmfFirmware | undefined> {
  const dir = '/usr/share/OVMF';
  const code = join(dir, 'OVMF_CODE_4M.fd');
  const vars = join(dir, 'OVMF_VARS_4M.fd');
  if (!(await usable(code, constants.R_OK)) || !(await usable(vars, constants.R_OK))) return undefined;
  const secureCode = join(dir, 'OVMF_CODE_4M.secboot.fd');
  const secureVars = join(dir, 'OVMF_VARS_4M.ms.fd');
  const secure = (await usable(secureCode, constants.R_OK)) && (await usable(secureVars, constants.R_OK));
  return {
    code,
    vars,
    secureCode: secure ? secureCode : undefined,
    secureVars: secure ? secureVars : undefined,
  };
}

export class Launcher {
  readonly timings: LauncherTimings;
  /** Resolves when the launcher's work is over (its domain is gone). */
  readonly done: Promise<string>;
  private readonly options: LauncherOptions;
  private readonly log: Logger;
  private readonly daemons: LibvirtDaemons;
  private readonly manager: DomainManager;
  private readonly server: CommandServer;
  private readonly notify: NotifyClient;
  private stopping: Promise<void> | undefined;

  private constructor(
    options: LauncherOptions,
    parts: { daemons: LibvirtDaemons; manager: DomainManager; server: CommandServer; notify: NotifyClient },
    timings: LauncherTimings,
    done: Promise<string>,
  ) {
    this.options = options;
    this.log = options.log;
    this.daemons = parts.daemons;
    this.manager = parts.manager;
    this.server = parts.server;
    this.notify = parts.notify;
    this.timings = timings;
    this.done = done;
  }

  static async start(options: LauncherOptions): Promise<Launcher> {
    const started = performance.now();
    const log = options.log;
    const { identity } = options;
    for (const dir of [options.socketsDir, options.privateDir]) await mkdir(dir, { recursive: true });

    const paths: LibvirtPaths = {
      configDir: '/etc/libvirt',
      runDir: options.libvirtRuntimeDir,
      libDir: '/var/lib/libvirt',
      logDir: '/var/log/libvirt',
      cacheDir: '/var/cache/libvirt',
      ...options.libvirtPaths,
    };
    const daemons = new LibvirtDaemons({ log, paths, capabilitiesSeed: options.capabilitiesSeed });
    const { seededCapabilities } = await daemons.start();
    const daemonsMs = performance.now() - started;

    const layout: DiskLayout = {
      privateDir: options.privateDir,
      containerDisksDir: options.containerDisksDir,
      secretsDir: join(options.privateDir, 'secret'),
      pvcDir: join(options.privateDir, 'vmi-disks'),
    };
    const manager = new DomainManager({
      identity,
      connect: () => LibvirtHypervisor.connect({ socketPath: daemons.libvirtSocket }),
      converter: {
        emulation: options.useEmulation,
        kvmAvailable: await usable('/dev/kvm', constants.R_OK | constants.W_OK),
        socketDir: options.socketsDir,
        privateDir: options.privateDir,
        kernelBootDir: options.kernelBootDir,
        ovmf: await findOvmf(),
      },
      layout,
      gracePeriodSeconds: options.gracePeriodSeconds,
      log,
      podNetwork: new PodNetwork({ log, privateDir: options.privateDir }),
    });
    await manager.start();
    daemons.onRestart((name) => {
      if (name === 'libvirtd') void manager.reconnect();
    });

    const notify = new NotifyClient({
      socketPath: join(options.socketsDir, NOTIFY_SOCKET),
      identity,
      log,
      current: () => manager.domain(),
    });
    let finish: (why: string) => void = () => undefined;
    const done = new Promise<string>((resolve) => (finish = resolve));
    let finalTimer: NodeJS.Timeout | undefined;
    let wasActive = false;
    manager.subscribe({
      domain: (type, domain: DomainJson) => {
        notify.domainEvent(type, domain);
        if (type === 'DELETED') {
          clearTimeout(finalTimer);
          finish('the domain was deleted');
          return;
        }
        const state = domain.status.status;
        if (state !== 'Shutoff') wasActive = true;
        else if (wasActive && finalTimer === undefined) {
          // The guest is gone for good: wait for the handler to record that and delete the domain.
          finalTimer = setTimeout(
            () => finish('the domain stopped and was not deleted'),
            options.finalDeleteTimeoutMs ?? 45_000,
          );
        }
      },
      k8sEvent: (type, reason, message) => notify.k8sEvent(type, reason, message),
    });

    const server = await startCommandServer(options.socketsDir, manager, log);
    notify.start();
    await server.markReady();
    const timings = { daemonsMs, readyMs: performance.now() - started, seededCapabilities };
    log.info({ ...timings, domain: manager.domainName }, 'launcher ready: taking commands on launcher-sock');
    return new Launcher(options, { daemons, manager, server, notify }, timings, done);
  }

  /** Pids of the launcher's libvirt daemons (for the memory report). */
  daemonPids(): Record<string, number | undefined> {
    return this.daemons.pids();
  }

  /**
   * SIGTERM: ACPI shutdown, destroy when the grace period (or the caller's deadline) ends first, final event,
   * then the servers and daemons stop. Idempotent.
   */
  stop(deadline?: AbortSignal): Promise<void> {
    this.stopping ??= this.runStop(deadline);
    return this.stopping;
  }

  private async runStop(deadline?: AbortSignal): Promise<void> {
    const log = this.log.child({ component: 'launcher-stop' });
    try {
      const domain = await this.manager.domain();
      if (domain && domain.status.status !== 'Shutoff') {
        await this.manager.shutdown(undefined, 'sigterm');
        const graceMs = domain.spec.metadata.kubevirt.graceperiod.deletionGracePeriodSeconds * 1000;
        await this.waitForShutoff(graceMs, deadline);
        await this.manager.kill();
      }
      // The final event: undefining the domain makes the manager send DELETED with the last state it had, once
      // libvirt's Undefined event is in; `done` resolves then.
      if (await this.manager.domain()) {
        await this.manager.delete();
        await Promise.race([this.done, new Promise((r) => setTimeout(r, 5_000))]);
      }
    } catch (err) {
      log.error({ err }, 'stopping the domain failed');
    }
    if (!(await this.notify.flush(5_000))) log.warn('the handler did not take the final events within 5 s');
    await this.notify.close();
    await this.server.shutdown(2_000);
    this.manager.close();
    await this.daemons.stop();
    log.info('launcher stopped');
  }

  private async waitForShutoff(graceMs: number, deadline?: AbortSignal): Promise<void> {
    const until = Date.now() + graceMs;
    while (Date.now() < until && !deadline?.aborted) {
      const domain = await this.manager.domain().catch(() => undefined);
      if (!domain || domain.status.status === 'Shutoff') return;
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}
