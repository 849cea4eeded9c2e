// cloud-init NoCloud for a VMI: the user-data and network-data come inline, base64-encoded, or from a Secret the
// controller mounts into the pod; the launcher writes them with a meta-data file onto an ISO labelled cidata.
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { DiskError } from './errors.ts';
import type { VMIVolume, VirtualMachineInstance } from './vmi.ts';

const run = promisify(execFile);

export interface NoCloudData {
  userData: string;
  networkData?: string | undefined;
  metaData: string;
}

// KubeVirt's Secret keys; both spellings are accepted, as KubeVirt does.
const USER_DATA_KEYS = ['userdata', 'userData'];
const NETWORK_DATA_KEYS = ['networkdata', 'networkData'];

async function readSecretKey(dirs: string[], keys: string[]): Promise<string | undefined> {
  for (const dir of dirs) {
    for (const key of keys) {
      try {
        return await readFile(join(dir, key), 'utf8');
      } catch {
        // next key
      }
    }
  }
  return undefined;
}

function decodeBase64(volume: string, field: string, value: string): string {
  const trimmed = value.replace(/\s+/g, '');
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(trimmed) || trimmed.length % 4 !== 0) {
    throw new DiskError(volume, `cloudInitNoCloud.${field} is not valid base64`);
  }
  return Buffer.from(trimmed, 'base64').toString('utf8');
}

/**
 * The NoCloud files of a volume. A Secret is read from `secretDir` (the Secret of secretRef); a separate network-data
 * Secret from `<secretDir>-ndata`, KubeVirt's mount for networkDataSecretRef.
 */
export async function resolveNoCloudData(
  vmi: VirtualMachineInstance,
  volume: VMIVolume,
  secretDir: string,
): Promise<NoCloudData> {
  const source = volume.cloudInitNoCloud ?? {};
  const name = volume.name;
  let userData: string | undefined;
  if (source.userData !== undefined) userData = source.userData;
  else if (source.userDataBase64 !== undefined)
    userData = decodeBase64(name, 'userDataBase64', source.userDataBase64);
  else if (source.secretRef) {
    userData = await readSecretKey([secretDir], USER_DATA_KEYS);
    if (userData === undefined) {
      throw new DiskError(
        name,
        `the Secret ${source.secretRef.name ?? ''} has no userdata key (looked in ${secretDir}); add the user-data under the key userdata`,
      );
    }
  }
  let networkData: string | undefined;
  if (source.networkData !== undefined) networkData = source.networkData;
  else if (source.networkDataBase64 !== undefined)
    networkData = decodeBase64(name, 'networkDataBase64', source.networkDataBase64);
  else if (source.networkDataSecretRef) {
    networkData = await readSecretKey([`${secretDir}-ndata`, secretDir], NETWORK_DATA_KEYS);
    if (networkData === undefined) {
      throw new DiskError(
        name,
        `the Secret ${source.networkDataSecretRef.name ?? ''} has no networkdata key`,
      );
    }
  }
  if (userData === undefined && networkData === undefined) {
    throw new DiskError(
      name,
      'cloudInitNoCloud has neither user-data nor network-data; set userData, userDataBase64 or secretRef',
    );
  }
  const hostname = vmi.spec.hostname ?? vmi.metadata.name;
  const metaData = `instance-id: ${vmi.metadata.name}.${vmi.metadata.namespace}\nlocal-hostname: ${hostname}\n`;
  return { userData: userData ?? '', networkData, metaData };
}

/** Writes the ISO (volume id cidata, Joliet + Rock Ridge as cloud-init expects) atomically at `target`. */
export async function buildNoCloudIso(data: NoCloudData, target: string): Promise<void> {
  await mkdir(dirname(target), { recursive: true });
  const staging = await mkdtemp(join(dirname(target), '.cidata-'));
  try {
    const files = ['user-data', 'meta-data'];
    await writeFile(join(staging, 'user-data'), data.userData);
    await writeFile(join(staging, 'meta-data'), data.metaData);
    if (data.networkData !== undefined) {
      await writeFile(join(staging, 'network-config'), data.networkData);
      files.push('network-config');
    }
    const iso = join(staging, 'noCloud.iso');
    try {
      await run('genisoimage', ['-quiet', '-output', iso, '-volid', 'cidata', '-joliet', '-rock', ...files], {
        cwd: staging,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      if (e.code === 'ENOENT')
        throw new Error('genisoimage is not installed in the launcher', { cause: err });
      throw new Error(`genisoimage failed: ${e.stderr?.trim() || e.message}`, { cause: err });
    }
    await rename(iso, target);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
}
