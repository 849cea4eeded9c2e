// The device manager against a real plugin over real unix sockets (gRPC, v1beta1), in a temporary folder.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { credentials } from '@grpc/grpc-js';
import { devicePluginApi, UNHEALTHY } from '@kubevirt-ts/proto/deviceplugin';
import { deadline, unary, validResourceName } from './helpers.ts';
import { DeviceManager } from './manager.ts';
import { healthyDevices, SampleDevicePlugin } from './sample.ts';

const log = pino({ level: 'silent' });

async function until<T>(check: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('DeviceManager', () => {
  let dir: string;
  let manager: DeviceManager;
  let changes: number;
  const plugins: SampleDevicePlugin[] = [];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'dp-'));
    changes = 0;
    manager = new DeviceManager({ dir, log, onChange: () => (changes += 1), endpointGraceMs: 60_000 });
    await manager.start();
  });

  afterEach(async () => {
    for (const p of plugins.splice(0)) await p.stop();
    await manager.stop();
    await rm(dir, { recursive: true, force: true });
  });

  async function plugin(resource: string, count: number): Promise<SampleDevicePlugin> {
    const p = new SampleDevicePlugin({
      dir,
      resource,
      devices: healthyDevices(count),
      allocateResponse: (ids) => ({
        devices: ids.map(() => ({ containerPath: '/dev/null', hostPath: '/dev/null', permissions: 'rw' })),
      }),
    });
    plugins.push(p);
    await p.start();
    return p;
  }

  it('publishes the devices a registered plugin streams, and follows health changes', async () => {
    const p = await plugin('example.com/widget', 3);
    const counts = await until(() => manager.resources().get('example.com/widget')?.capacity === 3);
    expect(counts).toBe(true);
    expect(manager.resources().get('example.com/widget')).toEqual({ capacity: 3, allocatable: 3 });
    p.setDevices([...healthyDevices(2), { ID: 'dev-2', health: UNHEALTHY }]);
    await until(() => manager.resources().get('example.com/widget')?.allocatable === 2);
    expect(manager.resources().get('example.com/widget')).toEqual({ capacity: 3, allocatable: 2 });
    expect(changes).toBeGreaterThanOrEqual(2);
  });

  it('allocates distinct free devices per container and applies the plugin response', async () => {
    const p = await plugin('example.com/widget', 2);
    await until(() => manager.resources().get('example.com/widget')?.capacity === 2);
    const a = await manager.allocate('pod-a', 'c', 'example.com/widget', 1);
    const b = await manager.allocate('pod-b', 'c', 'example.com/widget', 1);
    expect(a.deviceIds).not.toEqual(b.deviceIds);
    expect(a.response.envs.EXAMPLE_COM_WIDGET_DEVICES).toBe(a.deviceIds.join(','));
    expect(a.response.devices[0]?.hostPath).toBe('/dev/null');
    expect(p.allocations).toHaveLength(2);
    await expect(manager.allocate('pod-c', 'c', 'example.com/widget', 1)).rejects.toThrow(
      /0 healthy and free/,
    );
    manager.release('pod-a');
    const c = await manager.allocate('pod-c', 'c', 'example.com/widget', 1);
    expect(c.deviceIds).toEqual(a.deviceIds);
  });

  it('marks a plugin whose stream ended as unavailable, and takes it back when it registers again', async () => {
    const p = await plugin('example.com/widget', 1);
    await until(() => manager.resources().get('example.com/widget')?.capacity === 1);
    await p.stop();
    await until(() => manager.resources().get('example.com/widget')?.allocatable === 0);
    expect(manager.resources().get('example.com/widget')).toEqual({ capacity: 1, allocatable: 0 });
    await expect(manager.allocate('pod', 'c', 'example.com/widget', 1)).rejects.toThrow(
      /no device plugin serves/,
    );
    await plugin('example.com/widget', 2);
    await until(() => manager.resources().get('example.com/widget')?.allocatable === 2);
  });

  it('refuses a registration with another version or an invalid resource name', async () => {
    const { RegistrationClient } = devicePluginApi();
    const client = new RegistrationClient(
      `unix://${join(dir, 'kubelet.sock')}`,
      credentials.createInsecure(),
    );
    try {
      await expect(
        unary((cb) =>
          client.register(
            { version: 'v1alpha', endpoint: 'x.sock', resourceName: 'example.com/x' },
            deadline(2_000),
            cb,
          ),
        ),
      ).rejects.toThrow(/version "v1alpha" is not supported/);
      await expect(
        unary((cb) =>
          client.register(
            { version: 'v1beta1', endpoint: 'x.sock', resourceName: 'widget' },
            deadline(2_000),
            cb,
          ),
        ),
      ).rejects.toThrow(/has no domain/);
    } finally {
      client.close();
    }
  });
});

describe('validResourceName', () => {
  it('accepts domain/name and refuses the kubernetes.io domain', () => {
    expect(validResourceName('devices.kubevirt.io/kvm')).toBeUndefined();
    expect(validResourceName('kubernetes.io/foo')).toMatch(/kubernetes.io domain/);
    expect(validResourceName('Example.com/foo')).toMatch(/DNS subdomain/);
  });
});
