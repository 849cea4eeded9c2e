// The device plugins against a kubelet stand-in that speaks the real v1beta1 API over gRPC: it serves
// Registration on kubelet.sock, and for every registration dials the plugin back, streams ListAndWatch and calls
// Allocate, as the kubelet's device manager does. A protocol peer, not a mock of the kubelet's behaviour.
import { mkdir, mkdtemp, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  Server,
  ServerCredentials,
  credentials,
  status,
  type Client,
  type ClientReadableStream,
  type ServerUnaryCall,
  type sendUnaryData,
} from '@grpc/grpc-js';
import { silentLogger } from '@kubevirt-ts/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  devicePluginApi,
  type AllocateRequest,
  type AllocateResponse,
  type DevicePluginOptions,
  type ListAndWatchResponse,
  type RegisterRequest,
} from '@kubevirt-ts/proto/deviceplugin';
import { DevicePlugins, KUBEVIRT_DEVICES } from './plugin.ts';

type Unary<Req, Res> = (
  req: Req,
  opts: { deadline: Date },
  cb: (err: Error | null, res?: Res) => void,
) => void;
interface PluginClient extends Client {
  getDevicePluginOptions: Unary<object, DevicePluginOptions>;
  listAndWatch(req: object): ClientReadableStream<ListAndWatchResponse>;
  allocate: Unary<AllocateRequest, AllocateResponse>;
}

const call = <Req, Res>(fn: Unary<Req, Res>, req: Req): Promise<Res> =>
  new Promise((resolve, reject) =>
    fn(req, { deadline: new Date(Date.now() + 5_000) }, (err, res) =>
      err ? reject(err) : resolve(res as Res),
    ),
  );

interface PluginView {
  request: RegisterRequest;
  client: PluginClient;
  lists: ListAndWatchResponse[];
}

/** The kubelet's side of the device-plugin API. */
class FakeKubelet {
  readonly plugins = new Map<string, PluginView>();
  readonly registrations: RegisterRequest[] = [];
  refuse: string | undefined;
  readonly #dir: string;
  readonly #server = new Server();

  private constructor(dir: string) {
    this.#dir = dir;
  }

  static async start(dir: string): Promise<FakeKubelet> {
    const k = new FakeKubelet(dir);
    k.#server.addService(devicePluginApi().registration, {
      Register: (c: ServerUnaryCall<RegisterRequest, object>, cb: sendUnaryData<object>) => {
        k.registrations.push(c.request);
        if (k.refuse !== undefined) {
          cb({ code: status.INVALID_ARGUMENT, details: k.refuse });
          return;
        }
        cb(null, {});
        k.#connect(c.request);
      },
    });
    await new Promise<void>((resolve, reject) =>
      k.#server.bindAsync(`unix://${join(dir, 'kubelet.sock')}`, ServerCredentials.createInsecure(), (err) =>
        err ? reject(err) : resolve(),
      ),
    );
    return k;
  }

  #connect(request: RegisterRequest): void {
    this.plugins.get(request.resourceName)?.client.close();
    const { DevicePluginClient } = devicePluginApi();
    const client = new DevicePluginClient(
      `unix://${join(this.#dir, request.endpoint)}`,
      credentials.createInsecure(),
    ) as PluginClient;
    const view: PluginView = { request, client, lists: [] };
    this.plugins.set(request.resourceName, view);
    const stream = client.listAndWatch({});
    stream.on('data', (r: ListAndWatchResponse) => view.lists.push(r));
    stream.on('error', () => undefined);
  }

  /** Stops like a restarting kubelet: its socket goes, and so does every plugin socket in the folder. */
  async crash(): Promise<void> {
    for (const p of this.plugins.values()) p.client.close();
    this.#server.forceShutdown();
    for (const f of await readdir(this.#dir))
      if (f.endsWith('.sock')) await unlink(join(this.#dir, f)).catch(() => undefined);
  }

  async stop(): Promise<void> {
    for (const p of this.plugins.values()) p.client.close();
    await new Promise<void>((resolve) => this.#server.tryShutdown(() => resolve()));
  }
}

async function until<T>(check: () => T | undefined | false, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('device plugins with a kubelet on kubelet.sock', () => {
  let root: string;
  let dir: string;
  let dev: string;
  let kubelet: FakeKubelet | undefined;
  let plugins: DevicePlugins | undefined;

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvts-dp-'));
    dir = join(root, 'dp');
    dev = join(root, 'dev');
    await mkdir(dir);
    await mkdir(join(dev, 'net'), { recursive: true });
    for (const f of ['kvm', 'net/tun', 'vhost-net']) await writeFile(join(dev, f), '');
  });
  afterEach(async () => {
    await plugins?.stop();
    await kubelet?.stop();
    plugins = undefined;
    kubelet = undefined;
    await rm(root, { recursive: true, force: true });
  });

  const startPlugins = async (count = 1000): Promise<DevicePlugins> => {
    plugins = new DevicePlugins({ dir, linkDir: root, devDir: dev, count, log: silentLogger(), pollMs: 100 });
    await plugins.start();
    return plugins;
  };

  it('registers kvm, tun and vhost-net, lists 1000 healthy devices each, and allocates the device node', async () => {
    kubelet = await FakeKubelet.start(dir);
    const p = await startPlugins();
    await until(() => p.allRegistered(), 'registration');
    expect(kubelet.registrations.map((r) => [r.version, r.resourceName, r.endpoint]).sort()).toEqual([
      ['v1beta1', 'devices.kubevirt.io/kvm', 'kubevirt-kvm.sock'],
      ['v1beta1', 'devices.kubevirt.io/tun', 'kubevirt-tun.sock'],
      ['v1beta1', 'devices.kubevirt.io/vhost-net', 'kubevirt-vhost-net.sock'],
    ]);
    for (const kind of KUBEVIRT_DEVICES) {
      const view = kubelet.plugins.get(kind.resourceName)!;
      const list = await until(() => view.lists[0], `${kind.resourceName} device list`);
      expect(list.devices).toHaveLength(1000);
      expect(new Set(list.devices.map((d) => d.ID)).size).toBe(1000);
      expect(list.devices.every((d) => d.health === 'Healthy')).toBe(true);

      expect(await call(view.client.getDevicePluginOptions.bind(view.client), {})).toEqual({
        preStartRequired: false,
        getPreferredAllocationAvailable: false,
      });
      const allocated = await call(view.client.allocate.bind(view.client), {
        containerRequests: [{ devicesIds: [list.devices[7]!.ID] }],
      });
      expect(allocated.containerResponses).toEqual([
        {
          envs: {},
          mounts: [],
          devices: [{ containerPath: kind.devicePath, hostPath: kind.devicePath, permissions: 'rw' }],
          annotations: {},
          cdiDevices: [],
        },
      ]);
    }
  });

  it('advertises the configured number of slots', async () => {
    kubelet = await FakeKubelet.start(dir);
    const p = await startPlugins(3);
    await until(() => p.allRegistered(), 'registration');
    const view = kubelet.plugins.get('devices.kubevirt.io/kvm')!;
    expect((await until(() => view.lists[0], 'list')).devices.map((d) => d.ID)).toEqual([
      'kvm0',
      'kvm1',
      'kvm2',
    ]);
  });

  it('reports a device that vanishes as Unhealthy on the open stream, and Healthy again when it returns', async () => {
    kubelet = await FakeKubelet.start(dir);
    const p = await startPlugins(2);
    await until(() => p.allRegistered(), 'registration');
    const view = kubelet.plugins.get('devices.kubevirt.io/kvm')!;
    await until(() => view.lists[0], 'first list');
    await unlink(join(dev, 'kvm'));
    const sick = await until(
      () => view.lists.find((l) => l.devices.every((d) => d.health === 'Unhealthy')),
      'Unhealthy',
    );
    expect(sick.devices).toHaveLength(2);
    await writeFile(join(dev, 'kvm'), '');
    await until(() => view.lists.at(-1)?.devices.every((d) => d.health === 'Healthy'), 'Healthy again');
    // The other plugins' devices never changed.
    expect(kubelet.plugins.get('devices.kubevirt.io/tun')!.lists).toHaveLength(1);
  });

  it('waits for a kubelet that is not there yet, then registers', async () => {
    const p = await startPlugins();
    expect(p.allRegistered()).toBe(false);
    kubelet = await FakeKubelet.start(dir);
    await until(() => p.allRegistered(), 'registration after the kubelet came');
    expect(kubelet.registrations).toHaveLength(3);
  });

  it('serves again and registers again after the kubelet restarts and wipes the folder', async () => {
    kubelet = await FakeKubelet.start(dir);
    const p = await startPlugins(5);
    await until(() => p.allRegistered(), 'first registration');
    await kubelet.crash();
    await until(() => !p.allRegistered(), 'noticing the kubelet is gone');
    kubelet = await FakeKubelet.start(dir);
    await until(() => kubelet!.registrations.length === 3 && p.allRegistered(), 're-registration');
    // The new kubelet can talk to the plugins through their new sockets.
    const view = kubelet.plugins.get('devices.kubevirt.io/vhost-net')!;
    expect((await until(() => view.lists[0], 'list from the new kubelet')).devices).toHaveLength(5);
    expect((await readdir(dir)).sort()).toEqual([
      'kubelet.sock',
      'kubevirt-kvm.sock',
      'kubevirt-tun.sock',
      'kubevirt-vhost-net.sock',
    ]);
  });

  it('keeps retrying while the kubelet refuses the registration', async () => {
    kubelet = await FakeKubelet.start(dir);
    kubelet.refuse = 'resource name already registered';
    const p = await startPlugins();
    await until(() => kubelet!.registrations.length >= 6, 'retries');
    expect(p.allRegistered()).toBe(false);
    kubelet.refuse = undefined;
    await until(() => p.allRegistered(), 'registration once accepted');
  });

  it('removes its sockets when it stops', async () => {
    kubelet = await FakeKubelet.start(dir);
    const p = await startPlugins();
    await until(() => p.allRegistered(), 'registration');
    await p.stop();
    plugins = undefined;
    expect(await readdir(dir)).toEqual(['kubelet.sock']);
  });
});
