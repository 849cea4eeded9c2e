// Disk preparation: turns each of a VMI's volumes into a file QEMU can open, before the domain is defined.
// containerDisk: a qcow2 overlay in the private dir over the disk file found in the image volume; emptyDisk: a blank
// qcow2; cloudInitNoCloud: an ISO labelled cidata; hostDisk: the node's file (created when asked); filesystem PVC:
// disk.img in the volume's root (created to fill the volume when missing). Files that exist are reused, so Sync
// can run again while the guest uses them. Bad input becomes a DiskError naming the volume, never a crash.
import { execFile } from 'node:child_process';
import { mkdir, open, readdir, stat, statfs } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@kubevirt-ts/runtime';
import { buildNoCloudIso, resolveNoCloudData } from './cloudinit.ts';
import { DiskError } from './errors.ts';
import type { PreparedDisk } from './converter/convert.ts';
import { parseQuantity } from './vmi.ts';
import type { VMIVolume, VirtualMachineInstance } from './vmi.ts';

const run = promisify(execFile);

/** Where the pod's volumes are mounted (DESIGN.md §4a). */
export interface DiskLayout {
  /** The private emptyDir: overlays, empty disks and cloud-init ISOs are made here. */
  privateDir: string;
  /** containerDisk image volumes, one folder per volume. */
  containerDisksDir: string;
  /** cloud-init Secrets, one folder per volume. */
  secretsDir: string;
  /** Filesystem PVCs, one folder per volume. */
  pvcDir: string;
}

export function podDiskLayout(privateDir: string): DiskLayout {
  return {
    privateDir,
    containerDisksDir: '/var/run/kubevirt/container-disks',
    secretsDir: join(privateDir, 'secret'),
    pvcDir: join(privateDir, 'vmi-disks'),
  };
}

/** The share of a filesystem PVC that a new disk.img may fill (KubeVirt's default filesystem overhead is 5.5 %). */
const FILESYSTEM_OVERHEAD = 0.055;
const MiB = 1024 * 1024;

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

interface ImageInfo {
  format: string;
  virtualSize: number;
}

async function imageInfo(volume: string, path: string): Promise<ImageInfo> {
  try {
    // -U: the file may already be open by a running QEMU (a second Sync).
    const { stdout } = await run('qemu-img', ['info', '-U', '--output=json', path]);
    const info = JSON.parse(stdout) as { format: string; 'virtual-size': number };
    return { format: info.format, virtualSize: info['virtual-size'] };
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT')
      throw new Error('qemu-img is not installed in the launcher (package qemu-utils)', { cause: err });
    throw new DiskError(volume, `${path} is not a readable disk image: ${e.stderr?.trim() || e.message}`, {
      cause: err,
    });
  }
}

function diskFormat(volume: string, path: string, format: string): 'raw' | 'qcow2' {
  if (format === 'raw' || format === 'qcow2') return format;
  throw new DiskError(volume, `${path} is a ${format} image; only raw and qcow2 disks are supported`);
}

async function qemuImgCreate(volume: string, args: string[]): Promise<void> {
  try {
    await run('qemu-img', ['create', '-q', ...args]);
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new DiskError(volume, `qemu-img create failed: ${e.stderr?.trim() || e.message}`, { cause: err });
  }
}

/** The disk file of a containerDisk image: `path` when given, else the one file under disk/ (KubeVirt's layout). */
async function findContainerDiskFile(volume: VMIVolume, root: string): Promise<string> {
  const name = volume.name;
  if (!(await exists(root))) {
    throw new DiskError(
      name,
      `the containerDisk image is not mounted at ${root}; the launcher pod must mount its image volume there`,
    );
  }
  const explicit = volume.containerDisk?.path;
  if (explicit) {
    const file = join(root, explicit);
    if (!(await exists(file)))
      throw new DiskError(name, `the containerDisk image has no file ${explicit}; fix containerDisk.path`);
    return file;
  }
  for (const dir of [join(root, 'disk'), root]) {
    const entries = await readdir(dir, { withFileTypes: true }).catch(() => []);
    const files = entries.filter((e) => e.isFile() || e.isSymbolicLink()).map((e) => join(dir, e.name));
    if (files.length === 1) return files[0] as string;
    if (files.length > 1) {
      throw new DiskError(
        name,
        `the containerDisk image holds several files in ${dir}; name the disk with containerDisk.path`,
      );
    }
  }
  throw new DiskError(name, 'the containerDisk image holds no disk file under /disk; set containerDisk.path');
}

async function prepareContainerDisk(volume: VMIVolume, layout: DiskLayout): Promise<PreparedDisk> {
  const backing = await findContainerDiskFile(volume, join(layout.containerDisksDir, volume.name));
  const format = diskFormat(volume.name, backing, (await imageInfo(volume.name, backing)).format);
  const overlay = join(layout.privateDir, 'container-disks', `${volume.name}.qcow2`);
  if (!(await exists(overlay))) {
    await mkdir(dirname(overlay), { recursive: true });
    await qemuImgCreate(volume.name, ['-f', 'qcow2', '-F', format, '-b', backing, overlay]);
  }
  return { path: overlay, format: 'qcow2', backingStore: { path: backing, format } };
}

async function prepareEmptyDisk(volume: VMIVolume, layout: DiskLayout): Promise<PreparedDisk> {
  const capacity = parseQuantity(volume.emptyDisk?.capacity);
  if (capacity === undefined || capacity <= 0) {
    throw new DiskError(
      volume.name,
      `emptyDisk.capacity ${String(volume.emptyDisk?.capacity)} is not a positive size`,
    );
  }
  const path = join(layout.privateDir, 'empty-disks', `${volume.name}.qcow2`);
  if (!(await exists(path))) {
    await mkdir(dirname(path), { recursive: true });
    await qemuImgCreate(volume.name, ['-f', 'qcow2', path, String(Math.ceil(capacity))]);
  }
  return { path, format: 'qcow2' };
}

async function createSparseRaw(volume: string, path: string, size: number): Promise<void> {
  try {
    const handle = await open(path, 'wx');
    await handle.truncate(size);
    await handle.close();
  } catch (err) {
    throw new DiskError(volume, `cannot create ${path}: ${(err as Error).message}`, { cause: err });
  }
}

async function prepareHostDisk(volume: VMIVolume): Promise<PreparedDisk> {
  const hostDisk = volume.hostDisk;
  if (!hostDisk) throw new DiskError(volume.name, 'not a hostDisk');
  if (!hostDisk.path.startsWith('/'))
    throw new DiskError(volume.name, `hostDisk.path ${hostDisk.path} is not absolute`);
  if (!(await exists(hostDisk.path))) {
    if (hostDisk.type !== 'DiskOrCreate') {
      throw new DiskError(
        volume.name,
        `hostDisk ${hostDisk.path} does not exist; create it or use type DiskOrCreate`,
      );
    }
    const capacity = parseQuantity(hostDisk.capacity);
    if (capacity === undefined || capacity <= 0) {
      throw new DiskError(
        volume.name,
        'hostDisk of type DiskOrCreate needs a positive capacity to create the file',
      );
    }
    await mkdir(dirname(hostDisk.path), { recursive: true });
    await createSparseRaw(volume.name, hostDisk.path, Math.ceil(capacity));
  }
  const format = diskFormat(volume.name, hostDisk.path, (await imageInfo(volume.name, hostDisk.path)).format);
  return { path: hostDisk.path, format };
}

async function preparePvc(volume: VMIVolume, layout: DiskLayout): Promise<PreparedDisk> {
  const claim = volume.persistentVolumeClaim;
  const dir = join(layout.pvcDir, volume.name);
  if (!(await exists(dir))) {
    throw new DiskError(
      volume.name,
      `the PersistentVolumeClaim ${claim?.claimName ?? ''} is not mounted at ${dir}`,
    );
  }
  const fs = await statfs(dir);
  const fsBytes = fs.blocks * fs.bsize;
  const path = join(dir, 'disk.img');
  if (!(await exists(path))) {
    if (claim?.readOnly)
      throw new DiskError(volume.name, `the read-only PVC ${claim.claimName} holds no disk.img`);
    // Fill the volume, less the filesystem's own overhead, in whole MiB.
    const size = Math.floor((fsBytes * (1 - FILESYSTEM_OVERHEAD)) / MiB) * MiB;
    if (size <= 0)
      throw new DiskError(volume.name, `the PVC ${claim?.claimName ?? ''} is too small to hold a disk`);
    await createSparseRaw(volume.name, path, size);
  }
  const info = await imageInfo(volume.name, path);
  const format = diskFormat(volume.name, path, info.format);
  if (format === 'raw' && info.virtualSize > fsBytes) {
    throw new DiskError(
      volume.name,
      `disk.img (${info.virtualSize} bytes) is larger than its PVC ${claim?.claimName ?? ''} (${fsBytes} bytes); ` +
        'shrink the image or use a larger claim',
    );
  }
  return { path, format, readonly: claim?.readOnly === true };
}

async function prepareCloudInit(
  vmi: VirtualMachineInstance,
  volume: VMIVolume,
  layout: DiskLayout,
): Promise<PreparedDisk> {
  const path = join(layout.privateDir, 'cloud-init', volume.name, 'noCloud.iso');
  if (!(await exists(path))) {
    const data = await resolveNoCloudData(vmi, volume, join(layout.secretsDir, volume.name));
    await buildNoCloudIso(data, path);
  }
  return { path, format: 'raw' };
}

/**
 * Prepares every volume a disk uses. Returns the disks by volume name; rejects with the first DiskError.
 * Volumes no disk uses are left alone (KubeVirt attaches only volumes with a disk).
 */
export async function prepareDisks(
  vmi: VirtualMachineInstance,
  layout: DiskLayout,
  log: Logger,
): Promise<Record<string, PreparedDisk>> {
  const used = new Set((vmi.spec.domain.devices.disks ?? []).map((d) => d.name));
  const disks: Record<string, PreparedDisk> = {};
  for (const volume of vmi.spec.volumes ?? []) {
    if (!used.has(volume.name)) continue;
    let prepared: PreparedDisk;
    if (volume.containerDisk) prepared = await prepareContainerDisk(volume, layout);
    else if (volume.emptyDisk) prepared = await prepareEmptyDisk(volume, layout);
    else if (volume.cloudInitNoCloud) prepared = await prepareCloudInit(vmi, volume, layout);
    else if (volume.hostDisk) prepared = await prepareHostDisk(volume);
    else if (volume.persistentVolumeClaim) prepared = await preparePvc(volume, layout);
    else {
      const source = Object.keys(volume).find((k) => k !== 'name') ?? 'none';
      throw new DiskError(volume.name, `volume source ${source} is not supported by this launcher`);
    }
    disks[volume.name] = prepared;
    log.debug({ volume: volume.name, path: prepared.path, format: prepared.format }, 'disk prepared');
  }
  return disks;
}
