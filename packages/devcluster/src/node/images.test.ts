import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ImageError,
  isTestGuestImage,
  parseImageReference,
  resolveImage,
  storeImageDir,
  type ImageTableContext,
} from './images.ts';

describe('parseImageReference', () => {
  it('applies Docker’s defaults', () => {
    expect(parseImageReference('node:24')).toMatchObject({
      registry: 'docker.io',
      path: 'library/node',
      tag: '24',
    });
    expect(parseImageReference('ghcr.io/kubevirt-ts/virt-api:0.1.0')).toMatchObject({
      registry: 'ghcr.io',
      path: 'kubevirt-ts/virt-api',
      tag: '0.1.0',
    });
    expect(parseImageReference('localhost:5000/a/b')).toMatchObject({
      registry: 'localhost:5000',
      path: 'a/b',
      tag: 'latest',
    });
    expect(parseImageReference('x/y@sha256:abc')).toMatchObject({
      registry: 'docker.io',
      path: 'x/y',
      digest: 'sha256:abc',
    });
  });
});

describe('resolveImage', () => {
  let store: string;
  let ctx: ImageTableContext;
  beforeAll(async () => {
    store = await mkdtemp(join(tmpdir(), 'images-'));
    ctx = {
      repoRoot: '/repo',
      nodeBinary: '/tools/node/bin/node',
      serviceRepositories: {
        controller: 'kubevirt-ts/virt-controller',
        api: 'kubevirt-ts/virt-api',
        handler: 'kubevirt-ts/virt-handler',
        launcher: 'kubevirt-ts/virt-launcher',
      },
      storeDir: store,
      qemuCapabilities: '/cache/caps',
      launcherNodeFlags: ['--no-opt'],
    };
    await mkdir(join(storeImageDir(store, parseImageReference('registry.example/disks/x:1')), 'rootfs'), {
      recursive: true,
    });
  });
  afterAll(() => rm(store, { recursive: true, force: true }));

  it('runs node:24 with the project’s Node first on PATH', async () => {
    const image = await resolveImage('docker.io/library/node:24-slim', ctx);
    expect(image).toMatchObject({ kind: 'node', cmd: ['node'], entrypoint: [] });
    expect(image.env.PATH?.startsWith('/tools/node/bin:')).toBe(true);
  });

  it('runs this project’s images from source, from any registry and tag', async () => {
    const image = await resolveImage('registry.local/kubevirt-ts/virt-handler:dev', ctx);
    expect(image.entrypoint).toEqual([
      '/tools/node/bin/node',
      '--conditions=@kubevirt-ts/source',
      '/repo/packages/handler/src/main.ts',
    ]);
  });

  it('gives the launcher its own libvirt folders, seeded capability cache, qemu.conf and node flags, behind an init', async () => {
    const image = await resolveImage('ghcr.io/kubevirt-ts/virt-launcher:0.1.0', ctx);
    expect(image.init).toBe(true);
    expect(image.privatePaths.map((p) => p.path)).toEqual([
      '/var/lib/libvirt',
      '/var/log/libvirt',
      '/var/cache/libvirt',
    ]);
    expect(image.privatePaths[2]?.seed).toEqual([{ from: '/cache/caps', to: 'qemu/capabilities' }]);
    expect(image.entrypoint).toEqual([
      '/tools/node/bin/node',
      '--no-opt',
      '--conditions=@kubevirt-ts/source',
      '/repo/packages/launcher/src/main.ts',
    ]);
    expect(image.files).toEqual([
      { path: '/etc/libvirt/qemu.conf', source: '/repo/packages/launcher/image/qemu.conf' },
    ]);
  });

  it('serves store images as folders and refuses everything else like ErrImagePull', async () => {
    expect((await resolveImage('registry.example/disks/x:1', ctx)).rootfs).toMatch(
      /registry\.example\/disks\/x\/1\/rootfs$/,
    );
    await expect(resolveImage('node:22', ctx)).rejects.toBeInstanceOf(ImageError);
    await expect(resolveImage('quay.io/nothing:1', ctx)).rejects.toThrow(
      /quay.io\/nothing:1 is not available on devcluster/,
    );
    await expect(resolveImage('node@sha256:00', ctx)).rejects.toThrow(/cannot resolve digests/);
    await expect(resolveImage('bad name', ctx)).rejects.toMatchObject({ reason: 'InvalidImageName' });
  });

  it('knows the test guest’s repository', () => {
    expect(isTestGuestImage('registry.kubevirt-ts.dev/test-guest:latest')).toBe(true);
    expect(isTestGuestImage('registry.kubevirt-ts.dev/other:latest')).toBe(false);
  });
});
