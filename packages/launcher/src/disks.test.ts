// Disk preparation with the real tools (qemu-img, genisoimage from scripts/install-hypervisor.sh) on temporary files.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, rm, stat, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '@kubevirt-ts/runtime/logger';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { prepareDisks } from './disks.ts';
import type { DiskLayout } from './disks.ts';
import { DiskError } from './errors.ts';
import type { VMIVolume, VirtualMachineInstance } from './vmi.ts';

const hasTools = ['qemu-img', 'genisoimage', 'isoinfo'].every((tool) => {
  const probe = spawnSync(tool, ['--version']);
  return !(probe.error && 'code' in probe.error && probe.error.code === 'ENOENT');
});

let root: string;
let layout: DiskLayout;

beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'disks-'));
  layout = {
    privateDir: join(root, 'private'),
    containerDisksDir: join(root, 'container-disks'),
    secretsDir: join(root, 'private', 'secret'),
    pvcDir: join(root, 'private', 'vmi-disks'),
  };
  await mkdir(layout.privateDir, { recursive: true });
});

afterEach(async () => {
  await rm(root, { recursive: true, force: true });
});

function vmiWith(...volumes: VMIVolume[]): VirtualMachineInstance {
  return {
    metadata: { name: 'vm1', namespace: 'ns1', uid: 'u-1' },
    spec: {
      hostname: 'host-1',
      domain: { devices: { disks: volumes.map((v) => ({ name: v.name })) } },
      volumes,
    },
  };
}

function imageInfo(path: string): Record<string, unknown> {
  return JSON.parse(
    execFileSync('qemu-img', ['info', '-U', '--output=json', path], { encoding: 'utf8' }),
  ) as Record<string, unknown>;
}

function isoFile(iso: string, name: string): string {
  return execFileSync('isoinfo', ['-R', '-i', iso, '-x', `/${name}`], { encoding: 'utf8' });
}

const prepare = (vmi: VirtualMachineInstance) => prepareDisks(vmi, layout, silentLogger());

describe.runIf(process.env.CI === 'true' || hasTools)('prepareDisks', () => {
  it('puts a qcow2 overlay in the private dir over the one file under disk/ of a containerDisk, and reuses it', async () => {
    const image = join(layout.containerDisksDir, 'root', 'disk');
    await mkdir(image, { recursive: true });
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', join(image, 'os.qcow2'), '64M']);
    const vmi = vmiWith({ name: 'root', containerDisk: { image: 'example/os' } });
    const disks = await prepare(vmi);
    const overlay = join(layout.privateDir, 'container-disks', 'root.qcow2');
    expect(disks.root).toEqual({
      path: overlay,
      format: 'qcow2',
      backingStore: { path: join(image, 'os.qcow2'), format: 'qcow2' },
    });
    expect(imageInfo(overlay)).toMatchObject({
      format: 'qcow2',
      'virtual-size': 64 * 2 ** 20,
      'backing-filename': join(image, 'os.qcow2'),
    });
    const first = await stat(overlay);
    await prepare(vmi);
    expect((await stat(overlay)).ino).toBe(first.ino);
  });

  it('says what is wrong with a containerDisk image', async () => {
    const vmi = vmiWith({ name: 'root', containerDisk: { image: 'example/os' } });
    await expect(prepare(vmi)).rejects.toThrow(/volume root: the containerDisk image is not mounted at/);
    const image = join(layout.containerDisksDir, 'root', 'disk');
    await mkdir(image, { recursive: true });
    await expect(prepare(vmi)).rejects.toThrow(/holds no disk file under \/disk; set containerDisk.path/);
    await writeFile(join(image, 'a.img'), 'x');
    await writeFile(join(image, 'b.img'), 'x');
    await expect(prepare(vmi)).rejects.toThrow(/several files .* name the disk with containerDisk.path/);
    execFileSync('qemu-img', ['create', '-q', '-f', 'vmdk', join(image, 'c.vmdk'), '1M']);
    await expect(
      prepare(vmiWith({ name: 'root', containerDisk: { image: 'x', path: 'disk/c.vmdk' } })),
    ).rejects.toThrow(/is a vmdk image; only raw and qcow2 disks are supported/);
  });

  it('creates an emptyDisk of the capacity asked for', async () => {
    const disks = await prepare(vmiWith({ name: 'scratch', emptyDisk: { capacity: '2Gi' } }));
    expect(disks.scratch?.format).toBe('qcow2');
    expect(imageInfo(disks.scratch?.path as string)).toMatchObject({
      format: 'qcow2',
      'virtual-size': 2 * 2 ** 30,
    });
    await expect(prepare(vmiWith({ name: 'bad', emptyDisk: { capacity: 'big' } }))).rejects.toThrow(
      /emptyDisk.capacity big is not a positive size/,
    );
  });

  it('uses a hostDisk, creating it only for DiskOrCreate', async () => {
    const path = join(root, 'host', 'disk.img');
    await expect(prepare(vmiWith({ name: 'h', hostDisk: { path, type: 'Disk' } }))).rejects.toThrow(
      /hostDisk .* does not exist; create it or use type DiskOrCreate/,
    );
    const disks = await prepare(
      vmiWith({ name: 'h', hostDisk: { path, type: 'DiskOrCreate', capacity: '10Mi' } }),
    );
    expect(disks.h).toEqual({ path, format: 'raw' });
    expect((await stat(path)).size).toBe(10 * 2 ** 20);
  });

  it('fills a filesystem PVC with disk.img when it has none, and refuses one larger than the volume', async () => {
    const dir = join(layout.pvcDir, 'data');
    await mkdir(dir, { recursive: true });
    const vmi = vmiWith({ name: 'data', persistentVolumeClaim: { claimName: 'data-claim' } });
    const disks = await prepare(vmi);
    const fs = await statfs(dir);
    const size = (await stat(join(dir, 'disk.img'))).size;
    expect(disks.data).toEqual({ path: join(dir, 'disk.img'), format: 'raw', readonly: false });
    expect(size % 2 ** 20).toBe(0);
    expect(size).toBeLessThan(fs.blocks * fs.bsize);
    expect(size).toBeGreaterThan(fs.blocks * fs.bsize * 0.9);
    await rm(join(dir, 'disk.img'));
    await writeFile(join(dir, 'disk.img'), '');
    execFileSync('truncate', ['-s', String(fs.blocks * fs.bsize + 2 ** 30), join(dir, 'disk.img')]);
    await expect(prepare(vmi)).rejects.toThrow(
      /volume data: disk.img \(\d+ bytes\) is larger than its PVC data-claim/,
    );
    await expect(
      prepare(vmiWith({ name: 'other', persistentVolumeClaim: { claimName: 'c' } })),
    ).rejects.toThrow(/is not mounted at/);
  });

  it('writes a cidata ISO with the user-data, network-data and meta-data of the VMI', async () => {
    const vmi = vmiWith({
      name: 'ci',
      cloudInitNoCloud: {
        userDataBase64: Buffer.from('#cloud-config\nmarker: hi\n').toString('base64'),
        networkData: 'version: 2\n',
      },
    });
    const iso = (await prepare(vmi)).ci?.path as string;
    expect(execFileSync('isoinfo', ['-d', '-i', iso], { encoding: 'utf8' })).toMatch(/Volume id: cidata/);
    expect(isoFile(iso, 'user-data')).toBe('#cloud-config\nmarker: hi\n');
    expect(isoFile(iso, 'network-config')).toBe('version: 2\n');
    expect(isoFile(iso, 'meta-data')).toBe('instance-id: vm1.ns1\nlocal-hostname: host-1\n');
  });

  it('reads the user-data from the Secret mounted for secretRef, and says when it is missing', async () => {
    const vmi = vmiWith({ name: 'ci', cloudInitNoCloud: { secretRef: { name: 'my-secret' } } });
    await expect(prepare(vmi)).rejects.toThrow(/the Secret my-secret has no userdata key/);
    await mkdir(join(layout.secretsDir, 'ci'), { recursive: true });
    await writeFile(join(layout.secretsDir, 'ci', 'userData'), '#cloud-config\nmarker: from-secret\n');
    expect(isoFile((await prepare(vmi)).ci?.path as string, 'user-data')).toContain('from-secret');
  });

  it('rejects bad cloud-init input and unsupported sources with a DiskError', async () => {
    await expect(
      prepare(vmiWith({ name: 'ci', cloudInitNoCloud: { userDataBase64: 'not base64!' } })),
    ).rejects.toThrow(/cloudInitNoCloud.userDataBase64 is not valid base64/);
    await expect(prepare(vmiWith({ name: 'ci', cloudInitNoCloud: {} }))).rejects.toThrow(
      /neither user-data nor network-data/,
    );
    const unsupported = vmiWith({ name: 'cm', configMap: { name: 'x' } });
    await expect(prepare(unsupported)).rejects.toBeInstanceOf(DiskError);
    await expect(prepare(unsupported)).rejects.toThrow(/volume source configMap is not supported/);
  });
});
