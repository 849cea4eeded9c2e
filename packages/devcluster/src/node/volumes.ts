// A pod's volumes under the kubelet's layout (var/lib/kubelet/pods/<uid>/volumes/kubernetes.io~<plugin>/<name>):
// emptyDir folders; configMap, secret, downwardAPI and projected volumes written the way the kubelet's atomic writer
// does (files in a timestamped folder behind a `..data` link, swapped in one rename, refreshed while the pod runs);
// service-account tokens through the TokenRequest API bound to the pod, renewed at 80 % of their lifetime; hostPath
// mapped into the node root (so nodes share none of the host's files; /dev, /proc and /sys are the machine's);
// PVCs bound to hostPath or local PVs (mapped the same way); image volumes from the local image store.
import { createHash, randomBytes } from 'node:crypto';
import {
  chmod,
  lstat,
  mkdir,
  readdir,
  readlink,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { dirname, join, posix } from 'node:path';
import type {
  CoreV1Api,
  V1ConfigMap,
  V1DownwardAPIVolumeFile,
  V1KeyToPath,
  V1Pod,
  V1Secret,
  V1Volume,
} from '@kubernetes/client-node';
import { fieldValue, resourceFieldValue, type DownwardContext } from './env.ts';
import { podVolumeDir, type NodePaths } from './layout.ts';

/** A volume could not be set up: reported as a FailedMount event, retried. */
export class VolumeError extends Error {
  constructor(volume: string, message: string) {
    super(`volume "${volume}": ${message}`);
    this.name = 'VolumeError';
  }
}

/** Where a volume's content is on the node, for the bind mounts of the containers that mount it. */
export interface PreparedVolume {
  name: string;
  path: string;
  readOnly: boolean;
}

/** Host paths that are the machine's own, not a node's: device nodes and kernel file systems. */
const MACHINE_PATHS = ['/dev', '/proc', '/sys'];

/**
 * Where a hostPath (or a hostPath/local PV) lives on a devcluster node: inside the node root, so that nodes are as
 * separate as real machines and pods never touch the host's files; device nodes and kernel file systems are the
 * machine's (a pod asking for /dev/kvm gets the real one).
 */
export function nodeHostPath(nodeRoot: string, path: string): string {
  const normal = posix.normalize(path);
  if (MACHINE_PATHS.some((p) => normal === p || normal.startsWith(`${p}/`))) return normal;
  return join(nodeRoot, normal);
}

type FileSet = Map<string, { data: Buffer; mode: number }>;
const emptyFiles = (): FileSet => new Map();

function timestampDir(): string {
  const d = new Date();
  const pad = (n: number) => String(n).padStart(2, '0');
  return `..${d.getUTCFullYear()}_${pad(d.getUTCMonth() + 1)}_${pad(d.getUTCDate())}_${pad(d.getUTCHours())}_${pad(d.getUTCMinutes())}_${pad(d.getUTCSeconds())}.${randomBytes(4).toString('hex')}`;
}

function digest(files: FileSet): string {
  const hash = createHash('sha256');
  for (const [path, f] of [...files].sort(([a], [b]) => a.localeCompare(b))) {
    hash.update(`${path}\0${f.mode}\0`).update(f.data).update('\0');
  }
  return hash.digest('hex');
}

/**
 * Writes `files` into `dir` as the kubelet's atomic writer does: a new timestamped folder, `..data` pointing at it
 * (swapped by rename, so readers see the old or the new set, never a mix), and one top-level link per entry.
 */
export async function writeAtomic(dir: string, files: FileSet): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const next = timestampDir();
  for (const [path, f] of files) {
    if (path.split('/').some((part) => part === '..' || part === '') || path.startsWith('/')) {
      throw new Error(`invalid file path ${JSON.stringify(path)} (relative, no "..")`);
    }
    const file = join(dir, next, path);
    await mkdir(dirname(file), { recursive: true, mode: 0o755 });
    await writeFile(file, f.data, { mode: f.mode });
    await chmod(file, f.mode);
  }
  await mkdir(join(dir, next), { recursive: true, mode: 0o755 });
  const previous = await readlink(join(dir, '..data')).catch(() => undefined);
  await rm(join(dir, '..data_tmp'), { force: true });
  await symlink(next, join(dir, '..data_tmp'));
  await rename(join(dir, '..data_tmp'), join(dir, '..data'));
  const top = new Set([...files.keys()].map((p) => p.split('/')[0] as string));
  for (const name of top) {
    const link = join(dir, name);
    const existing = await lstat(link).catch(() => undefined);
    if (!existing) await symlink(posix.join('..data', name), link);
  }
  for (const entry of await readdir(dir)) {
    if (entry.startsWith('..')) continue;
    if (!top.has(entry)) await rm(join(dir, entry), { recursive: true, force: true });
  }
  if (previous && previous !== next) await rm(join(dir, previous), { recursive: true, force: true });
}

function keyFiles(
  data: Record<string, Buffer>,
  items: V1KeyToPath[] | undefined,
  defaultMode: number,
  what: string,
  optional: boolean,
): FileSet {
  const files: FileSet = new Map();
  if (!items) {
    for (const [key, value] of Object.entries(data)) files.set(key, { data: value, mode: defaultMode });
    return files;
  }
  for (const item of items) {
    const value = data[item.key];
    if (value === undefined) {
      if (optional) continue;
      throw new Error(`${what} has no key ${item.key}`);
    }
    files.set(item.path, { data: value, mode: item.mode ?? defaultMode });
  }
  return files;
}

function configMapData(cm: V1ConfigMap): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(cm.data ?? {})) out[k] = Buffer.from(v, 'utf8');
  for (const [k, v] of Object.entries(cm.binaryData ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

function secretData(secret: V1Secret): Record<string, Buffer> {
  const out: Record<string, Buffer> = {};
  for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64');
  return out;
}

interface CachedToken {
  token: string;
  refreshAt: number;
}

export interface VolumeManagerOptions {
  paths: NodePaths;
  core: CoreV1Api;
  /** The folder of an image volume's image (throws ImageError when it is not available). */
  imageRoot: (reference: string) => Promise<string>;
}

export class VolumeManager {
  readonly #paths: NodePaths;
  readonly #core: CoreV1Api;
  readonly #imageRoot: (reference: string) => Promise<string>;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #written = new Map<string, string>();

  constructor(opts: VolumeManagerOptions) {
    this.#paths = opts.paths;
    this.#core = opts.core;
    this.#imageRoot = opts.imageRoot;
  }

  /**
   * Sets up (or refreshes) every volume of the pod and returns where each is. Throws VolumeError for the first
   * volume that cannot be set up yet (a missing ConfigMap, an unbound claim), which the caller reports and retries.
   */
  async prepare(pod: V1Pod, ctx: DownwardContext): Promise<Map<string, PreparedVolume>> {
    const out = new Map<string, PreparedVolume>();
    for (const volume of pod.spec?.volumes ?? []) {
      try {
        out.set(volume.name, await this.#prepareOne(pod, volume, ctx));
      } catch (err) {
        if (err instanceof VolumeError) throw err;
        throw new VolumeError(volume.name, err instanceof Error ? err.message : String(err));
      }
    }
    return out;
  }

  /** Forgets a pod's cached tokens and contents (its folder is removed by the caller). */
  forget(podUid: string): void {
    for (const key of [...this.#tokens.keys()]) if (key.startsWith(`${podUid}/`)) this.#tokens.delete(key);
    for (const key of [...this.#written.keys()]) if (key.includes(`/${podUid}/`)) this.#written.delete(key);
  }

  async #writeIfChanged(dir: string, files: FileSet): Promise<void> {
    const hash = digest(files);
    if (this.#written.get(dir) === hash && (await stat(join(dir, '..data')).catch(() => undefined))) return;
    await writeAtomic(dir, files);
    this.#written.set(dir, hash);
  }

  async #prepareOne(pod: V1Pod, volume: V1Volume, ctx: DownwardContext): Promise<PreparedVolume> {
    const uid = pod.metadata?.uid ?? '';
    const namespace = pod.metadata?.namespace ?? '';
    const dir = (plugin: string) => podVolumeDir(this.#paths, uid, plugin, volume.name);
    const name = volume.name;
    if (volume.emptyDir) {
      const path = dir('empty-dir');
      await mkdir(path, { recursive: true, mode: 0o777 });
      await chmod(path, 0o777);
      return { name, path, readOnly: false };
    }
    if (volume.hostPath) {
      const path = await this.#hostPath(name, volume.hostPath.path, volume.hostPath.type ?? '');
      return { name, path, readOnly: false };
    }
    if (volume.configMap) {
      const source = volume.configMap;
      const cm = await this.#configMap(namespace, source.name ?? '', source.optional ?? false);
      const files = cm
        ? keyFiles(
            configMapData(cm),
            source.items,
            source.defaultMode ?? 0o644,
            `ConfigMap ${source.name}`,
            source.optional ?? false,
          )
        : emptyFiles();
      const path = dir('configmap');
      await this.#writeIfChanged(path, files);
      return { name, path, readOnly: true };
    }
    if (volume.secret) {
      const source = volume.secret;
      const secret = await this.#secret(namespace, source.secretName ?? '', source.optional ?? false);
      const files = secret
        ? keyFiles(
            secretData(secret),
            source.items,
            source.defaultMode ?? 0o644,
            `Secret ${source.secretName}`,
            source.optional ?? false,
          )
        : emptyFiles();
      const path = dir('secret');
      await this.#writeIfChanged(path, files);
      return { name, path, readOnly: true };
    }
    if (volume.downwardAPI) {
      const files = this.#downward(
        volume.downwardAPI.items ?? [],
        volume.downwardAPI.defaultMode ?? 0o644,
        pod,
        ctx,
      );
      const path = dir('downward-api');
      await this.#writeIfChanged(path, files);
      return { name, path, readOnly: true };
    }
    if (volume.projected) {
      const files: FileSet = new Map();
      const mode = volume.projected.defaultMode ?? 0o644;
      for (const [i, source] of (volume.projected.sources ?? []).entries()) {
        let part: FileSet;
        if (source.configMap) {
          const cm = await this.#configMap(
            namespace,
            source.configMap.name ?? '',
            source.configMap.optional ?? false,
          );
          part = cm
            ? keyFiles(
                configMapData(cm),
                source.configMap.items,
                mode,
                `ConfigMap ${source.configMap.name}`,
                source.configMap.optional ?? false,
              )
            : emptyFiles();
        } else if (source.secret) {
          const secret = await this.#secret(
            namespace,
            source.secret.name ?? '',
            source.secret.optional ?? false,
          );
          part = secret
            ? keyFiles(
                secretData(secret),
                source.secret.items,
                mode,
                `Secret ${source.secret.name}`,
                source.secret.optional ?? false,
              )
            : emptyFiles();
        } else if (source.downwardAPI) {
          part = this.#downward(source.downwardAPI.items ?? [], mode, pod, ctx);
        } else if (source.serviceAccountToken) {
          const t = source.serviceAccountToken;
          const token = await this.#token(pod, `${name}/${i}`, t.audience, t.expirationSeconds);
          part = new Map([[t.path, { data: Buffer.from(token), mode }]]);
        } else {
          throw new VolumeError(
            name,
            `projected source ${i} is of a kind devcluster does not support (clusterTrustBundle, podCertificate)`,
          );
        }
        for (const [k, v] of part) files.set(k, v);
      }
      const path = dir('projected');
      await this.#writeIfChanged(path, files);
      return { name, path, readOnly: true };
    }
    if (volume.persistentVolumeClaim) {
      const path = await this.#claim(name, namespace, volume.persistentVolumeClaim.claimName);
      return { name, path, readOnly: volume.persistentVolumeClaim.readOnly ?? false };
    }
    if (volume.image) {
      const reference = volume.image.reference;
      if (!reference) throw new VolumeError(name, 'image.reference is empty');
      return { name, path: await this.#imageRoot(reference), readOnly: true };
    }
    const kind = Object.keys(volume).find((k) => k !== 'name') ?? 'unknown';
    throw new VolumeError(
      name,
      `volumes of type ${kind} are not supported on devcluster (see packages/devcluster/README.md)`,
    );
  }

  async #hostPath(volume: string, path: string, type: string): Promise<string> {
    const mapped = nodeHostPath(this.#paths.root, path);
    const st = await stat(mapped).catch(() => undefined);
    const fail = (what: string) => {
      throw new VolumeError(volume, `hostPath ${path} (on this node: ${mapped}) ${what}`);
    };
    switch (type) {
      case '':
        if (!st) await mkdir(mapped, { recursive: true, mode: 0o755 });
        break;
      case 'DirectoryOrCreate':
        if (!st) await mkdir(mapped, { recursive: true, mode: 0o755 });
        else if (!st.isDirectory()) fail('is not a directory');
        break;
      case 'Directory':
        if (!st?.isDirectory()) fail('is not an existing directory');
        break;
      case 'FileOrCreate':
        if (!st) {
          await mkdir(dirname(mapped), { recursive: true, mode: 0o755 });
          await writeFile(mapped, '', { mode: 0o644 });
        } else if (!st.isFile()) fail('is not a file');
        break;
      case 'File':
        if (!st?.isFile()) fail('is not an existing file');
        break;
      case 'Socket':
        if (!st?.isSocket()) fail('is not a socket');
        break;
      case 'CharDevice':
        if (!st?.isCharacterDevice()) fail('is not a character device');
        break;
      case 'BlockDevice':
        if (!st?.isBlockDevice()) fail('is not a block device');
        break;
      default:
        fail(`has an unknown type ${type}`);
    }
    return mapped;
  }

  async #claim(volume: string, namespace: string, claimName: string): Promise<string> {
    const pvc = await this.#core
      .readNamespacedPersistentVolumeClaim({ name: claimName, namespace })
      .catch((err: unknown) => {
        throw Object.assign(
          new VolumeError(
            volume,
            `PersistentVolumeClaim ${namespace}/${claimName}: ${(err as Error).message}`,
          ),
          {
            cause: err,
          },
        );
      });
    if (pvc.status?.phase !== 'Bound' || !pvc.spec?.volumeName) {
      throw new VolumeError(
        volume,
        `PersistentVolumeClaim ${namespace}/${claimName} is not bound yet (phase ${pvc.status?.phase ?? 'unknown'})`,
      );
    }
    const pv = await this.#core.readPersistentVolume({ name: pvc.spec.volumeName });
    const source =
      pv.spec?.hostPath ?? (pv.spec?.local ? { path: pv.spec.local.path, type: 'Directory' } : undefined);
    if (!source) {
      throw new VolumeError(
        volume,
        `PersistentVolume ${pv.metadata?.name} is neither hostPath nor local; devcluster binds claims only to static hostPath/local volumes`,
      );
    }
    if (pv.spec?.volumeMode === 'Block') {
      throw new VolumeError(
        volume,
        `PersistentVolume ${pv.metadata?.name} is a block volume; devcluster supports filesystem volumes only`,
      );
    }
    return this.#hostPath(volume, source.path, source.type ?? 'DirectoryOrCreate');
  }

  async #configMap(namespace: string, name: string, optional: boolean): Promise<V1ConfigMap | undefined> {
    try {
      return await this.#core.readNamespacedConfigMap({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code === 404) {
        if (optional) return undefined;
        throw new Error(`configmap "${name}" not found`, { cause: err });
      }
      throw err;
    }
  }

  async #secret(namespace: string, name: string, optional: boolean): Promise<V1Secret | undefined> {
    try {
      return await this.#core.readNamespacedSecret({ name, namespace });
    } catch (err) {
      if ((err as { code?: number }).code === 404) {
        if (optional) return undefined;
        throw new Error(`secret "${name}" not found`, { cause: err });
      }
      throw err;
    }
  }

  #downward(
    items: V1DownwardAPIVolumeFile[],
    defaultMode: number,
    pod: V1Pod,
    ctx: DownwardContext,
  ): FileSet {
    const files: FileSet = new Map();
    const containers = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    for (const item of items) {
      let value: string;
      if (item.fieldRef) value = fieldValue(item.fieldRef, ctx);
      else if (item.resourceFieldRef) value = resourceFieldValue(item.resourceFieldRef, containers, ctx);
      else throw new Error(`downwardAPI item ${item.path} names no field`);
      files.set(item.path, { data: Buffer.from(value), mode: item.mode ?? defaultMode });
    }
    return files;
  }

  async #token(
    pod: V1Pod,
    key: string,
    audience: string | undefined,
    expirationSeconds: number | undefined,
  ): Promise<string> {
    const uid = pod.metadata?.uid ?? '';
    const cacheKey = `${uid}/${key}`;
    const cached = this.#tokens.get(cacheKey);
    if (cached && cached.refreshAt > Date.now()) return cached.token;
    const seconds = Math.max(expirationSeconds ?? 3607, 600);
    const response = await this.#core.createNamespacedServiceAccountToken({
      name: pod.spec?.serviceAccountName ?? 'default',
      namespace: pod.metadata?.namespace ?? '',
      body: {
        spec: {
          audiences: audience ? [audience] : [],
          expirationSeconds: seconds,
          boundObjectRef: { apiVersion: 'v1', kind: 'Pod', name: pod.metadata?.name ?? '', uid },
        },
      },
    });
    const token = response.status?.token;
    if (!token) throw new Error('the TokenRequest returned no token');
    // The kubelet renews at 80 % of the token's lifetime (or after 24 h).
    const lifetimeMs = Math.min(seconds, 24 * 3600) * 1000;
    this.#tokens.set(cacheKey, { token, refreshAt: Date.now() + lifetimeMs * 0.8 });
    return token;
  }
}
