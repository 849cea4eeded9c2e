// A small device plugin that speaks the kubelet's v1beta1 API, for tests and for trying the node agent's device
// manager: it serves DevicePlugin on its own socket in the device-plugins folder, registers its resource through
// kubelet.sock, streams a device list that can change, answers Allocate with the envs/mounts/devices it was given,
// and registers again whenever kubelet.sock is created anew (a restarted kubelet or node agent), as real plugins do.
// Usage as a script (e.g. as a pod with the device-plugins folder mounted, like virt-handler's DaemonSet):
//   node --conditions=@kubevirt-ts/source sample.ts --resource example.com/widget [--devices 2]
//        [--dir /var/lib/kubelet/device-plugins] [--device-node /dev/zero:/dev/widget]
// --device-node makes Allocate hand each container that host device node at the given path.
import { watch, type FSWatcher } from 'node:fs';
import { unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  Server,
  ServerCredentials,
  credentials,
  type ServerWritableStream,
  type sendUnaryData,
  type ServerUnaryCall,
} from '@grpc/grpc-js';
import { DEVICE_PLUGIN_VERSION } from '../layout.ts';
import { unixTarget } from './manager.ts';
import {
  devicePluginApi,
  HEALTHY,
  type AllocateRequest,
  type AllocateResponse,
  type ContainerAllocateResponse,
  type Device,
  type ListAndWatchResponse,
} from '@kubevirt-ts/proto/deviceplugin';
import { deadline, unary } from './helpers.ts';

export interface SampleDevicePluginOptions {
  /** The device-plugins folder (where kubelet.sock is). */
  dir: string;
  resource: string;
  /** Socket file name; default derived from the resource. */
  endpoint?: string;
  devices: Device[];
  /** What Allocate gives each container, beyond an env var naming the allocated device IDs. */
  allocateResponse?: (deviceIds: string[]) => Partial<ContainerAllocateResponse>;
  preStartRequired?: boolean;
}

export class SampleDevicePlugin {
  readonly resource: string;
  readonly endpoint: string;
  readonly #dir: string;
  readonly #opts: SampleDevicePluginOptions;
  #devices: Device[];
  readonly #streams = new Set<ServerWritableStream<object, ListAndWatchResponse>>();
  #server: Server | undefined;
  #watcher: FSWatcher | undefined;
  /** Device IDs of every Allocate call, in order (tests read it). */
  readonly allocations: string[][] = [];
  registrations = 0;

  constructor(opts: SampleDevicePluginOptions) {
    this.#opts = opts;
    this.#dir = opts.dir;
    this.resource = opts.resource;
    this.endpoint = opts.endpoint ?? `${opts.resource.replace(/[^A-Za-z0-9]/g, '-')}.sock`;
    this.#devices = opts.devices;
  }

  get socketPath(): string {
    return join(this.#dir, this.endpoint);
  }

  /** Serves the plugin socket, registers, and keeps registering when kubelet.sock is recreated. */
  async start(): Promise<void> {
    await unlink(this.socketPath).catch(() => undefined);
    const server = new Server();
    server.addService(devicePluginApi().devicePlugin, {
      getDevicePluginOptions: (_call: unknown, cb: sendUnaryData<object>) =>
        cb(null, {
          preStartRequired: this.#opts.preStartRequired ?? false,
          getPreferredAllocationAvailable: false,
        }),
      listAndWatch: (call: ServerWritableStream<object, ListAndWatchResponse>) => {
        this.#streams.add(call);
        call.write({ devices: this.#devices });
        call.on('cancelled', () => this.#streams.delete(call));
        call.on('close', () => this.#streams.delete(call));
      },
      getPreferredAllocation: (_call: unknown, cb: sendUnaryData<object>) =>
        cb(null, { containerResponses: [] }),
      allocate: (
        call: ServerUnaryCall<AllocateRequest, AllocateResponse>,
        cb: sendUnaryData<AllocateResponse>,
      ) => {
        const containerResponses = call.request.containerRequests.map((req) => {
          this.allocations.push(req.devicesIds);
          const extra = this.#opts.allocateResponse?.(req.devicesIds) ?? {};
          const envVar = `${this.resource.replace(/[^A-Za-z0-9]/g, '_').toUpperCase()}_DEVICES`;
          return {
            envs: { [envVar]: req.devicesIds.join(','), ...extra.envs },
            mounts: extra.mounts ?? [],
            devices: extra.devices ?? [],
            annotations: extra.annotations ?? {},
            cdiDevices: [],
          };
        });
        cb(null, { containerResponses });
      },
      preStartContainer: (_call: unknown, cb: sendUnaryData<object>) => cb(null, {}),
    });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(unixTarget(this.socketPath), ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    this.#server = server;
    await this.register();
    // A new kubelet.sock means a restarted kubelet that forgot us: register again.
    this.#watcher = watch(this.#dir, (_event, file) => {
      if (file === 'kubelet.sock') {
        setTimeout(() => {
          this.register().catch(() => undefined);
        }, 100);
      }
    });
  }

  async register(): Promise<void> {
    const { RegistrationClient } = devicePluginApi();
    const client = new RegistrationClient(
      unixTarget(join(this.#dir, 'kubelet.sock')),
      credentials.createInsecure(),
    );
    try {
      await unary((cb) =>
        client.register(
          {
            version: DEVICE_PLUGIN_VERSION,
            endpoint: this.endpoint,
            resourceName: this.resource,
            options: {
              preStartRequired: this.#opts.preStartRequired ?? false,
              getPreferredAllocationAvailable: false,
            },
          },
          deadline(5_000),
          cb,
        ),
      );
      this.registrations += 1;
    } finally {
      client.close();
    }
  }

  /** Replaces the device list and streams it to the node agent. */
  setDevices(devices: Device[]): void {
    this.#devices = devices;
    for (const stream of this.#streams) stream.write({ devices });
  }

  async stop(): Promise<void> {
    this.#watcher?.close();
    for (const stream of this.#streams) stream.end();
    this.#streams.clear();
    const server = this.#server;
    if (server) await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
    await unlink(this.socketPath).catch(() => undefined);
  }
}

/** `count` healthy devices named `<prefix>-0` … */
export function healthyDevices(count: number, prefix = 'dev'): Device[] {
  return Array.from({ length: count }, (_, i) => ({ ID: `${prefix}-${i}`, health: HEALTHY }));
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      resource: { type: 'string' },
      devices: { type: 'string', default: '1' },
      dir: { type: 'string', default: '/var/lib/kubelet/device-plugins' },
      'device-node': { type: 'string' },
    },
  });
  if (!values.resource) {
    process.stderr.write(
      'usage: sample.ts --resource DOMAIN/NAME [--devices N] [--dir DIR] [--device-node HOST:CONTAINER]\n',
    );
    process.exit(2);
  }
  const plugin = new SampleDevicePlugin({
    dir: values.dir,
    resource: values.resource,
    devices: healthyDevices(Number(values.devices)),
    ...(values['device-node']
      ? {
          allocateResponse: () => {
            const [hostPath = '', containerPath = hostPath] = (values['device-node'] ?? '').split(':');
            return { devices: [{ hostPath, containerPath, permissions: 'rw' }] };
          },
        }
      : {}),
  });
  await plugin.start();
  process.stdout.write(`sample device plugin: ${values.resource} registered (${values.devices} devices)\n`);
  const stop = () => {
    void plugin.stop().then(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
