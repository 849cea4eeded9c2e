// The node agent's device manager, as the kubelet's: serves Registration on device-plugins/kubelet.sock, dials each
// registered plugin on its socket next to it, keeps the device lists that ListAndWatch streams, publishes them as
// extended resources (capacity = all devices, allocatable = the healthy ones), and hands devices to containers
// through Allocate (and PreStartContainer when a plugin asks for it). Allocations are owned by the agent's pod
// records, so a restarted agent restores them instead of handing a device out twice.
import { lstat, mkdir, unlink } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Server, ServerCredentials, credentials, status, type ServiceError } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { MAX_SOCKET_PATH } from '../../layout.ts';
import { DEVICE_PLUGIN_VERSION } from '../layout.ts';
import {
  devicePluginApi,
  HEALTHY,
  type ContainerAllocateResponse,
  type Device,
  type DevicePluginClient,
  type DevicePluginOptions,
  type RegisterRequest,
} from '@kubevirt-ts/proto/deviceplugin';
import { deadline, unary, validResourceName } from './helpers.ts';

/** How long a plugin whose stream ended keeps its resource in the node's capacity (the kubelet's grace). */
const DEFAULT_ENDPOINT_GRACE_MS = 5 * 60_000;
const ALLOCATE_TIMEOUT_MS = 10_000;
const PRE_START_TIMEOUT_MS = 30_000;

/**
 * The grpc target of a unix socket: the absolute path, or the path relative to the working directory when that
 * is shorter (a socket path holds at most 107 bytes, and node roots live deep in the state dir).
 */
export function unixTarget(path: string): string {
  const rel = relative(process.cwd(), path);
  const use = rel.length < path.length && !rel.startsWith('..') ? rel : path;
  if (Buffer.byteLength(use) > MAX_SOCKET_PATH) {
    throw new Error(
      `the unix socket ${path} is longer than ${MAX_SOCKET_PATH} bytes; use a shorter state dir (KUBEVIRT_TS_DEVCLUSTER_STATE)`,
    );
  }
  return use.startsWith('/') ? `unix://${use}` : `unix:${use}`;
}

export interface ResourceCounts {
  capacity: number;
  allocatable: number;
}

interface Endpoint {
  resource: string;
  socket: string;
  options: DevicePluginOptions;
  client: DevicePluginClient;
  devices: Map<string, Device>;
  connected: boolean;
  /** Set when the stream ended: after this time the resource leaves the node's capacity. */
  expiresAt: number | undefined;
  stop(): void;
}

export interface Allocation {
  resource: string;
  deviceIds: string[];
  response: ContainerAllocateResponse;
}

export interface DeviceManagerOptions {
  /** The node's device-plugins folder (holds kubelet.sock and the plugins' sockets). */
  dir: string;
  log: Logger;
  /** Called whenever capacity or allocatable of a resource may have changed. */
  onChange: () => void;
  endpointGraceMs?: number;
}

export class DeviceManager {
  readonly #dir: string;
  readonly #log: Logger;
  readonly #onChange: () => void;
  readonly #graceMs: number;
  readonly #endpoints = new Map<string, Endpoint>();
  /** `podUid/container/resource` → what that container holds of that resource. */
  readonly #allocations = new Map<string, Allocation>();
  #server: Server | undefined;
  #expiryTimer: NodeJS.Timeout | undefined;

  constructor(opts: DeviceManagerOptions) {
    this.#dir = opts.dir;
    this.#log = opts.log.child({ component: 'device-manager' });
    this.#onChange = opts.onChange;
    this.#graceMs = opts.endpointGraceMs ?? DEFAULT_ENDPOINT_GRACE_MS;
  }

  get socketPath(): string {
    return join(this.#dir, 'kubelet.sock');
  }

  /** Creates kubelet.sock (replacing a stale one; plugins watching it re-register, as after a kubelet restart). */
  async start(): Promise<void> {
    await mkdir(this.#dir, { recursive: true });
    await unlink(this.socketPath).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
    const server = new Server();
    server.addService(devicePluginApi().registration, {
      register: (
        call: { request: RegisterRequest },
        callback: (err: Partial<ServiceError> | null, value?: object) => void,
      ) => {
        const problem = this.#register(call.request);
        if (problem) callback({ code: status.INVALID_ARGUMENT, details: problem });
        else callback(null, {});
      },
    });
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(unixTarget(this.socketPath), ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      );
    });
    this.#server = server;
    this.#expiryTimer = setInterval(() => this.#expire(), 10_000);
    this.#expiryTimer.unref();
    this.#log.info({ socket: this.socketPath }, 'device-plugin registration serving');
  }

  async stop(): Promise<void> {
    clearInterval(this.#expiryTimer);
    for (const endpoint of this.#endpoints.values()) endpoint.stop();
    this.#endpoints.clear();
    const server = this.#server;
    this.#server = undefined;
    if (server) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2_000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    // Only our own socket: a plugin's sockets are its business.
    const st = await lstat(this.socketPath).catch(() => undefined);
    if (st?.isSocket()) await unlink(this.socketPath).catch(() => undefined);
  }

  /** Capacity and allocatable per registered resource (a resource whose plugin is gone shows 0 allocatable). */
  resources(): Map<string, ResourceCounts> {
    const out = new Map<string, ResourceCounts>();
    for (const [resource, endpoint] of this.#endpoints) {
      const devices = [...endpoint.devices.values()];
      out.set(resource, {
        capacity: devices.length,
        allocatable: endpoint.connected ? devices.filter((d) => d.health === HEALTHY).length : 0,
      });
    }
    return out;
  }

  /** True when a plugin for `resource` is registered (connected or within its grace). */
  serves(resource: string): boolean {
    return this.#endpoints.has(resource);
  }

  /** Records an allocation read back from a pod record after an agent restart. */
  restore(podUid: string, container: string, allocation: Allocation): void {
    this.#allocations.set(`${podUid}/${container}/${allocation.resource}`, allocation);
  }

  /** Frees every device a pod's containers hold. */
  release(podUid: string): void {
    for (const key of [...this.#allocations.keys()]) {
      if (key.startsWith(`${podUid}/`)) this.#allocations.delete(key);
    }
  }

  /**
   * Gives one container `count` devices of `resource`: picks healthy devices no other container holds, calls the
   * plugin's Allocate (and PreStartContainer when the plugin asked for it). Returns an existing allocation as is.
   */
  async allocate(podUid: string, container: string, resource: string, count: number): Promise<Allocation> {
    const key = `${podUid}/${container}/${resource}`;
    const existing = this.#allocations.get(key);
    if (existing) return existing;
    const endpoint = this.#endpoints.get(resource);
    if (!endpoint || !endpoint.connected) {
      throw new Error(
        `no device plugin serves ${resource} on this node (is its plugin registered and running?)`,
      );
    }
    const held = new Set(
      [...this.#allocations.values()].filter((a) => a.resource === resource).flatMap((a) => a.deviceIds),
    );
    const free = [...endpoint.devices.values()].filter((d) => d.health === HEALTHY && !held.has(d.ID));
    if (free.length < count) {
      throw new Error(
        `${resource}: ${count} device(s) requested, ${free.length} healthy and free on this node (the scheduler counted ${endpoint.devices.size})`,
      );
    }
    const deviceIds = free.slice(0, count).map((d) => d.ID);
    const response = await unary<{ containerResponses: ContainerAllocateResponse[] }>((cb) =>
      endpoint.client.allocate(
        { containerRequests: [{ devicesIds: deviceIds }] },
        deadline(ALLOCATE_TIMEOUT_MS),
        cb,
      ),
    );
    const containerResponse = response.containerResponses[0];
    if (!containerResponse)
      throw new Error(`${resource}: the plugin's Allocate answered no container response`);
    if (endpoint.options.preStartRequired) {
      await unary((cb) =>
        endpoint.client.preStartContainer({ devicesIds: deviceIds }, deadline(PRE_START_TIMEOUT_MS), cb),
      );
    }
    const allocation = { resource, deviceIds, response: containerResponse };
    this.#allocations.set(key, allocation);
    return allocation;
  }

  #register(request: RegisterRequest): string | undefined {
    const log = this.#log.child({ resource: request.resourceName, endpoint: request.endpoint });
    if (request.version !== DEVICE_PLUGIN_VERSION) {
      log.warn({ version: request.version }, 'device plugin registration refused: unsupported version');
      return `version ${JSON.stringify(request.version)} is not supported; this node serves ${DEVICE_PLUGIN_VERSION}`;
    }
    const invalid = validResourceName(request.resourceName);
    if (invalid) return invalid;
    if (!request.endpoint || request.endpoint.includes('/')) {
      return `endpoint ${JSON.stringify(request.endpoint)} must be a socket file name inside ${this.#dir}`;
    }
    this.#endpoints.get(request.resourceName)?.stop();
    const socket = join(this.#dir, request.endpoint);
    const { DevicePluginClient } = devicePluginApi();
    const client = new DevicePluginClient(unixTarget(socket), credentials.createInsecure());
    const endpoint: Endpoint = {
      resource: request.resourceName,
      socket,
      options: {
        preStartRequired: request.options?.preStartRequired ?? false,
        getPreferredAllocationAvailable: request.options?.getPreferredAllocationAvailable ?? false,
      },
      client,
      devices: new Map(),
      connected: true,
      expiresAt: undefined,
      stop: () => undefined,
    };
    this.#endpoints.set(request.resourceName, endpoint);
    log.info('device plugin registered');
    this.#watch(endpoint, log);
    return undefined;
  }

  #watch(endpoint: Endpoint, log: Logger): void {
    const stream = endpoint.client.listAndWatch({});
    let stopped = false;
    endpoint.stop = () => {
      stopped = true;
      stream.cancel();
      endpoint.client.close();
    };
    stream.on('data', (response: { devices: Device[] }) => {
      endpoint.devices = new Map(response.devices.map((d) => [d.ID, d]));
      endpoint.connected = true;
      endpoint.expiresAt = undefined;
      log.info(
        {
          devices: response.devices.length,
          healthy: response.devices.filter((d) => d.health === HEALTHY).length,
        },
        'device list',
      );
      this.#onChange();
    });
    const ended = (err?: Error) => {
      if (stopped || this.#endpoints.get(endpoint.resource) !== endpoint) return;
      stopped = true;
      endpoint.connected = false;
      endpoint.expiresAt = Date.now() + this.#graceMs;
      endpoint.client.close();
      log.warn(
        { err: err?.message },
        'device plugin stream ended; its devices are unavailable until it registers again',
      );
      this.#onChange();
    };
    stream.on('error', ended);
    stream.on('end', () => ended());
  }

  #expire(): void {
    let changed = false;
    for (const [resource, endpoint] of this.#endpoints) {
      if (endpoint.expiresAt !== undefined && endpoint.expiresAt < Date.now()) {
        this.#endpoints.delete(resource);
        this.#log.info({ resource }, 'device plugin did not come back; resource removed from the node');
        changed = true;
      }
    }
    if (changed) this.#onChange();
  }
}
