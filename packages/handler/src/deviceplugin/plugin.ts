// virt-handler's device plugins (KubeVirt's device manager, reference §3.4): devices.kubevirt.io/kvm, tun and
// vhost-net, each advertised as a fixed number of identical slots (1000 by default), so that a launcher pod that
// requests them is scheduled only onto a node where a handler runs, and gets /dev/kvm, /dev/net/tun or
// /dev/vhost-net in its container through Allocate. Each plugin serves the kubelet's DevicePlugin service on its own
// socket in the device-plugins folder and registers it with the kubelet on kubelet.sock.
//
// A kubelet that restarts removes every socket in that folder and makes a new kubelet.sock; a plugin must then
// serve again and register again. Each plugin checks both every few seconds (and at once when the folder changes):
// its own socket is still the one it bound, and kubelet.sock is still the one it registered with.
import { watch, type FSWatcher } from 'node:fs';
import { access, lstat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  credentials,
  status,
  type ServerUnaryCall,
  type ServerWritableStream,
  type sendUnaryData,
} from '@grpc/grpc-js';
import type { Logger } from '@kubevirt-ts/runtime';
import { shortDir } from '../pod-sockets.ts';
import {
  DEVICE_PLUGIN_API_VERSION,
  HEALTHY,
  KUBELET_SOCKET,
  UNHEALTHY,
  devicePluginApi,
  type AllocateRequest,
  type AllocateResponse,
  type ContainerAllocateResponse,
  type Device,
  type DevicePluginOptions,
  type ListAndWatchResponse,
  type PreferredAllocationRequest,
  type PreferredAllocationResponse,
} from '@kubevirt-ts/proto/deviceplugin';

export interface DeviceKind {
  /** The extended resource, e.g. `devices.kubevirt.io/kvm`. */
  resourceName: string;
  /** The plugin's socket in the device-plugins folder (KubeVirt's names). */
  socketName: string;
  /** The device node, on the host and in the container. */
  devicePath: string;
}

export const KUBEVIRT_DEVICES: readonly DeviceKind[] = [
  { resourceName: 'devices.kubevirt.io/kvm', socketName: 'kubevirt-kvm.sock', devicePath: '/dev/kvm' },
  { resourceName: 'devices.kubevirt.io/tun', socketName: 'kubevirt-tun.sock', devicePath: '/dev/net/tun' },
  {
    resourceName: 'devices.kubevirt.io/vhost-net',
    socketName: 'kubevirt-vhost-net.sock',
    devicePath: '/dev/vhost-net',
  },
];

/** KubeVirt's default number of slots per device (`--max-devices`): the most VMIs a node can run. */
export const DEFAULT_DEVICE_COUNT = 1000;

const LONGEST_SOCKET_NAME = Math.max(
  KUBELET_SOCKET.length,
  ...KUBEVIRT_DEVICES.map((d) => d.socketName.length),
);

export interface DevicePluginServerOptions {
  kind: DeviceKind;
  /** The kubelet's device-plugins folder (kubelet.sock lives there; so will this plugin's socket). */
  dir: string;
  /** Where a short symlink to `dir` goes when `dir` is too deep for unix socket paths. */
  linkPath: string;
  log: Logger;
  /** Whether the device can be handed out now (its node exists). */
  healthy: () => Promise<boolean>;
  count?: number;
  /** How often serving, registration and health are checked. Default 2 s. */
  pollMs?: number;
  registerTimeoutMs?: number;
}

interface Bound {
  server: Server;
  path: string;
  dev: number;
  ino: number;
}

export class DevicePluginServer {
  readonly kind: DeviceKind;
  readonly #o: DevicePluginServerOptions;
  readonly #log: Logger;
  readonly #count: number;
  readonly #streams = new Set<ServerWritableStream<object, ListAndWatchResponse>>();
  #dir: string | undefined;
  #bound: Bound | undefined;
  /** kubelet.sock's identity at the last successful Register. */
  #registeredWith: string | undefined;
  #healthy: boolean | undefined;
  #timer: NodeJS.Timeout | undefined;
  #watcher: FSWatcher | undefined;
  #ticking: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(opts: DevicePluginServerOptions) {
    this.kind = opts.kind;
    this.#o = opts;
    this.#log = opts.log.child({ component: 'device-plugin', resource: opts.kind.resourceName });
    this.#count = opts.count ?? DEFAULT_DEVICE_COUNT;
  }

  /** Registered with the kubelet that is there now. */
  get registered(): boolean {
    return this.#registeredWith !== undefined;
  }

  get healthy(): boolean {
    return this.#healthy === true;
  }

  /** Starts serving and registering; returns after the first attempt (which may have failed: it is retried). */
  async start(): Promise<void> {
    this.#stopped = false;
    try {
      this.#watcher = watch(this.#o.dir, () => void this.#kick());
      this.#watcher.on('error', (err) =>
        this.#log.debug({ err }, 'watching the device-plugins folder failed'),
      );
    } catch (err) {
      // The folder may not exist yet (no kubelet yet); polling covers it.
      this.#log.debug({ err }, 'cannot watch the device-plugins folder yet');
    }
    await this.#kick();
    this.#timer = setInterval(() => void this.#kick(), this.#o.pollMs ?? 2_000);
    this.#timer.unref();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearInterval(this.#timer);
    this.#watcher?.close();
    await this.#ticking;
    await this.#unbind();
    this.#registeredWith = undefined;
  }

  /** Runs one check now, or once more after the running one. */
  #kick(): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    if (this.#ticking) {
      this.#again = true;
      return this.#ticking;
    }
    this.#ticking = (async () => {
      do {
        this.#again = false;
        try {
          await this.#tick();
        } catch (err) {
          this.#log.warn({ err }, 'device plugin check failed; retrying');
        }
      } while (this.#again && !this.#stopped);
    })().finally(() => (this.#ticking = undefined));
    return this.#ticking;
  }

  async #tick(): Promise<void> {
    const healthy = await this.#o.healthy().catch(() => false);
    if (healthy !== this.#healthy) {
      if (this.#healthy !== undefined) {
        this.#log.info({ healthy }, `${this.kind.devicePath} is now ${healthy ? HEALTHY : UNHEALTHY}`);
      } else if (!healthy) {
        this.#log.warn(
          `${this.kind.devicePath} is not there, so ${this.kind.resourceName} is advertised Unhealthy (0 allocatable) ` +
            "until it appears; in a container, mount the host's /dev and point --dev-dir at it",
        );
      }
      this.#healthy = healthy;
      this.#broadcast();
    }

    const kubelet = await identity(join(this.#o.dir, KUBELET_SOCKET));
    if (kubelet === undefined) {
      if (this.#registeredWith !== undefined) this.#log.warn('kubelet.sock is gone; waiting for the kubelet');
      this.#registeredWith = undefined;
      return;
    }
    this.#dir ??= await shortDir(this.#o.dir, this.#o.linkPath, LONGEST_SOCKET_NAME);

    // Our socket must still be the one we bound: a restarting kubelet deletes every socket in the folder.
    const own = this.#bound ? await identity(this.#bound.path) : undefined;
    if (!this.#bound || own !== `${this.#bound.dev}:${this.#bound.ino}`) {
      if (this.#bound) this.#log.info('the plugin socket was removed (kubelet restart?); serving it again');
      await this.#unbind();
      await this.#bind();
      this.#registeredWith = undefined;
    }
    if (this.#registeredWith === kubelet) return;
    await this.#register();
    this.#registeredWith = kubelet;
  }

  async #bind(): Promise<void> {
    const path = join(this.#dir!, this.kind.socketName);
    await unlink(path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const server = new Server();
    const { devicePlugin } = devicePluginApi();
    server.addService(devicePlugin, {
      GetDevicePluginOptions: (
        _call: ServerUnaryCall<object, DevicePluginOptions>,
        cb: sendUnaryData<DevicePluginOptions>,
      ) => cb(null, { preStartRequired: false, getPreferredAllocationAvailable: false }),
      ListAndWatch: (call: ServerWritableStream<object, ListAndWatchResponse>) => {
        this.#streams.add(call);
        const drop = (): void => void this.#streams.delete(call);
        call.on('cancelled', drop);
        call.on('close', drop);
        call.on('error', drop);
        call.write(this.#deviceList());
      },
      GetPreferredAllocation: (
        call: ServerUnaryCall<PreferredAllocationRequest, PreferredAllocationResponse>,
        cb: sendUnaryData<PreferredAllocationResponse>,
      ) =>
        cb(null, {
          containerResponses: call.request.containerRequests.map((r) => ({
            deviceIDs: [...new Set([...r.mustIncludeDeviceIDs, ...r.availableDeviceIDs])].slice(
              0,
              r.allocationSize,
            ),
          })),
        }),
      Allocate: (
        call: ServerUnaryCall<AllocateRequest, AllocateResponse>,
        cb: sendUnaryData<AllocateResponse>,
      ) => {
        if (call.request.containerRequests.length === 0) {
          cb({ code: status.INVALID_ARGUMENT, details: 'Allocate without container requests' });
          return;
        }
        cb(null, { containerResponses: call.request.containerRequests.map(() => this.#allocation()) });
      },
      PreStartContainer: (_call: ServerUnaryCall<object, object>, cb: sendUnaryData<object>) => cb(null, {}),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(`unix://${path}`, ServerCredentials.createInsecure(), (err) =>
        err
          ? reject(new Error(`cannot serve the ${this.kind.resourceName} plugin on ${path}: ${err.message}`))
          : resolve(),
      ),
    );
    const stats = await lstat(path);
    this.#bound = { server, path, dev: stats.dev, ino: stats.ino };
    this.#log.debug({ socket: path }, 'serving the device plugin');
  }

  async #unbind(): Promise<void> {
    const bound = this.#bound;
    if (!bound) return;
    this.#bound = undefined;
    for (const s of this.#streams) s.end();
    this.#streams.clear();
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        bound.server.forceShutdown();
        resolve();
      }, 1_000);
      bound.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    // Remove the socket only if it is still ours (a new kubelet may have cleaned the folder meanwhile).
    if ((await identity(bound.path)) === `${bound.dev}:${bound.ino}`)
      await unlink(bound.path).catch(() => undefined);
  }

  async #register(): Promise<void> {
    const { RegistrationClient } = devicePluginApi();
    const client = new RegistrationClient(
      `unix://${join(this.#dir!, KUBELET_SOCKET)}`,
      credentials.createInsecure(),
    );
    try {
      await new Promise<void>((resolve, reject) =>
        client.register(
          {
            version: DEVICE_PLUGIN_API_VERSION,
            endpoint: this.kind.socketName,
            resourceName: this.kind.resourceName,
            options: { preStartRequired: false, getPreferredAllocationAvailable: false },
          },
          { deadline: new Date(Date.now() + (this.#o.registerTimeoutMs ?? 5_000)) },
          (err) =>
            err
              ? reject(
                  new Error(
                    `the kubelet refused to register ${this.kind.resourceName}: ${err.details || err.message}`,
                  ),
                )
              : resolve(),
        ),
      );
      this.#log.info(
        { count: this.#count, healthy: this.#healthy },
        'device plugin registered with the kubelet',
      );
    } finally {
      client.close();
    }
  }

  #deviceList(): ListAndWatchResponse {
    const health = this.#healthy ? HEALTHY : UNHEALTHY;
    const base = this.kind.resourceName.split('/').pop() ?? 'device';
    const devices: Device[] = Array.from({ length: this.#count }, (_, i) => ({ ID: `${base}${i}`, health }));
    return { devices };
  }

  #broadcast(): void {
    if (this.#streams.size === 0) return;
    const list = this.#deviceList();
    for (const s of this.#streams) s.write(list);
  }

  #allocation(): ContainerAllocateResponse {
    return {
      envs: {},
      mounts: [],
      devices: [{ containerPath: this.kind.devicePath, hostPath: this.kind.devicePath, permissions: 'rw' }],
      annotations: {},
      cdiDevices: [],
    };
  }
}

/** `dev:ino` of a file, or undefined when it does not exist. */
async function identity(path: string): Promise<string | undefined> {
  try {
    const s = await lstat(path);
    return `${s.dev}:${s.ino}`;
  } catch {
    return undefined;
  }
}

export interface DevicePluginsOptions {
  dir: string;
  /** A short folder for symlinks (the handler's state dir). */
  linkDir: string;
  /** Where the host's /dev is visible to the handler, for health checks. Default /dev. */
  devDir?: string;
  count?: number;
  log: Logger;
  pollMs?: number;
  kinds?: readonly DeviceKind[];
}

/** The three KubeVirt device plugins of a node. */
export class DevicePlugins {
  readonly plugins: DevicePluginServer[];

  constructor(opts: DevicePluginsOptions) {
    const devDir = opts.devDir ?? '/dev';
    this.plugins = (opts.kinds ?? KUBEVIRT_DEVICES).map(
      (kind) =>
        new DevicePluginServer({
          kind,
          dir: opts.dir,
          linkPath: join(opts.linkDir, 'dp'),
          log: opts.log,
          count: opts.count,
          pollMs: opts.pollMs,
          healthy: () =>
            access(join(devDir, kind.devicePath.replace(/^\/dev\//, ''))).then(
              () => true,
              () => false,
            ),
        }),
    );
  }

  async start(): Promise<void> {
    await Promise.all(this.plugins.map((p) => p.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.plugins.map((p) => p.stop()));
  }

  /** Every plugin is registered with the current kubelet (the heartbeat says schedulable only then). */
  allRegistered(): boolean {
    return this.plugins.every((p) => p.registered);
  }

  summary(): { resource: string; registered: boolean; healthy: boolean }[] {
    return this.plugins.map((p) => ({
      resource: p.kind.resourceName,
      registered: p.registered,
      healthy: p.healthy,
    }));
  }
}
