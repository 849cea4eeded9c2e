// What an image means on a devcluster node, which has no container engine and pulls nothing: a small, explicit
// table. Each entry plays the part of an OCI image config (entrypoint, cmd, env, working dir) and names the paths
// that belong to the image's own filesystem, which every container gets as private, fresh copies.
// - this project's images (repositories from charts/kubevirt-ts/values.yaml, any registry and tag) run the service
//   from this working tree's source with the project's Node 24, as `node /app/dist/main.js` would in the image;
// - `node:24` (docker.io/library/node, tags 24 and 24-*) runs the project's Node 24;
// - images in the local image store (a folder per image under the devcluster cache) serve image volumes, such as
//   the test guest's container disk; they have no command.
// Everything else fails as ErrImagePull would, saying what the table holds.
import { link, mkdir, readFile, rename, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';

/** The default PATH of a container, as container runtimes set it when the image sets none. */
export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/** The test guest's image, as the example manifests name it (any tag). */
export const TEST_GUEST_REPOSITORY = 'registry.kubevirt-ts.dev/test-guest';

export interface ImageReference {
  /** As written in the pod. */
  raw: string;
  registry: string;
  /** Repository path without the registry, e.g. `library/node` or `kubevirt-ts/virt-handler`. */
  path: string;
  tag: string;
  digest: string | undefined;
}

/** Parses `[registry/]path[:tag][@digest]` with Docker's defaults (docker.io, library/, latest). */
export function parseImageReference(raw: string): ImageReference {
  let rest = raw.trim();
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  const firstSlash = rest.indexOf('/');
  const first = firstSlash >= 0 ? rest.slice(0, firstSlash) : '';
  const hasRegistry =
    firstSlash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  const registry = hasRegistry ? first : 'docker.io';
  let remainder = hasRegistry ? rest.slice(firstSlash + 1) : rest;
  let tag = 'latest';
  const colon = remainder.lastIndexOf(':');
  if (colon > remainder.lastIndexOf('/')) {
    tag = remainder.slice(colon + 1);
    remainder = remainder.slice(0, colon);
  }
  const path = registry === 'docker.io' && !remainder.includes('/') ? `library/${remainder}` : remainder;
  return { raw, registry, path, tag, digest };
}

/** A path of the image's own filesystem that each container gets privately (fresh tmpfs, then the seed). */
export interface PrivatePath {
  path: string;
  /** Files copied in: from a host file or folder (its content), or literal content. */
  seed?: { from: string; to?: string }[];
}

/** A file the image has at `path` instead of the host's (written into the container's own layer). */
export interface ImageFile {
  path: string;
  source: string;
}

export interface ImageConfig {
  kind: 'service' | 'node' | 'store';
  reference: string;
  entrypoint: string[];
  cmd: string[];
  env: Record<string, string>;
  workingDir: string | undefined;
  /** Run a tiny init as PID 1 that forwards signals and reaps orphans (the launcher image uses tini). */
  init: boolean;
  privatePaths: PrivatePath[];
  files: ImageFile[];
  /** For store images: the folder holding the image's content (what an image volume shows). */
  rootfs: string | undefined;
}

/** Why an image cannot be used: the waiting reason the kubelet would show, and a message saying what to do. */
export class ImageError extends Error {
  readonly reason: 'ErrImagePull' | 'InvalidImageName';
  constructor(reason: 'ErrImagePull' | 'InvalidImageName', message: string) {
    super(message);
    this.name = 'ImageError';
    this.reason = reason;
  }
}

export const SERVICES = ['controller', 'api', 'handler', 'launcher'] as const;
export type ServiceName = (typeof SERVICES)[number];

export interface ImageTableContext {
  /** The repository's root (the working tree the services run from). */
  repoRoot: string;
  /** The project's Node 24 binary. */
  nodeBinary: string;
  /** Repository path of each service's image, from the chart's values.yaml (e.g. kubevirt-ts/virt-api). */
  serviceRepositories: Record<ServiceName, string>;
  /** Root of the local image store. */
  storeDir: string;
  /** Folder of filled QEMU capability files for the launcher's /var/cache/libvirt, when there is one. */
  qemuCapabilities: string | undefined;
  /** The node flags the launcher's image starts it with (launcherNodeFlags); none when absent. */
  launcherNodeFlags?: string[];
}

/**
 * The node flags of virt-launcher's image: packages/launcher/image/node-flags (one a line, # comments), which the
 * image's entrypoint.sh passes to `node` as well.
 */
export async function launcherNodeFlags(repoRoot: string): Promise<string[]> {
  const file = join(repoRoot, 'packages', 'launcher', 'image', 'node-flags');
  return (await readFile(file, 'utf8'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** The repository path of each service's image, read from the chart (one source of truth for image names). */
export async function chartServiceRepositories(repoRoot: string): Promise<Record<ServiceName, string>> {
  const file = join(repoRoot, 'charts', 'kubevirt-ts', 'values.yaml');
  const values = parse(await readFile(file, 'utf8')) as Record<string, { image?: { repository?: string } }>;
  const out = {} as Record<ServiceName, string>;
  for (const service of SERVICES) {
    const repository = values[service]?.image?.repository;
    if (!repository) throw new Error(`${file} has no ${service}.image.repository`);
    out[service] = repository;
  }
  return out;
}

function nodePath(ctx: ImageTableContext): string {
  return `${dirname(ctx.nodeBinary)}:${DEFAULT_PATH}`;
}

function serviceImage(service: ServiceName, ref: ImageReference, ctx: ImageTableContext): ImageConfig {
  const pkg = join(ctx.repoRoot, 'packages', service);
  const config: ImageConfig = {
    kind: 'service',
    reference: ref.raw,
    entrypoint: [ctx.nodeBinary, '--conditions=@kubevirt-ts/source', join(pkg, 'src', 'main.ts')],
    cmd: [],
    env: { PATH: nodePath(ctx), NODE_ENV: 'production' },
    workingDir: pkg,
    init: false,
    privatePaths: [],
    files: [],
    rootfs: undefined,
  };
  if (service === 'launcher') {
    // What packages/launcher/Dockerfile puts in the image: its qemu.conf, libvirt's empty state folders and a
    // filled QEMU capability cache (without it every launcher pays libvirt's 8 s probe), behind tini, and node
    // started with the entrypoint's flags.
    config.entrypoint.splice(1, 0, ...(ctx.launcherNodeFlags ?? []));
    config.init = true;
    config.files = [{ path: '/etc/libvirt/qemu.conf', source: join(pkg, 'image', 'qemu.conf') }];
    config.privatePaths = [
      { path: '/var/lib/libvirt' },
      { path: '/var/log/libvirt' },
      {
        path: '/var/cache/libvirt',
        ...(ctx.qemuCapabilities ? { seed: [{ from: ctx.qemuCapabilities, to: 'qemu/capabilities' }] } : {}),
      },
    ];
  }
  return config;
}

/** The store folder of an image: `<store>/<registry>/<path>/<tag>/`. */
export function storeImageDir(storeDir: string, ref: ImageReference): string {
  return join(storeDir, ref.registry, ...ref.path.split('/'), ref.tag);
}

/**
 * The image a container or image volume names. Throws ImageError for an image devcluster cannot provide; store
 * images are looked up on disk (resolveStoreImage), the rest is pure.
 */
export async function resolveImage(raw: string, ctx: ImageTableContext): Promise<ImageConfig> {
  if (!raw || /\s/.test(raw)) {
    throw new ImageError('InvalidImageName', `invalid image name ${JSON.stringify(raw)}`);
  }
  const ref = parseImageReference(raw);
  if (ref.digest) {
    throw new ImageError(
      'ErrImagePull',
      `image ${raw}: devcluster has no registry and cannot resolve digests; name the image by tag`,
    );
  }
  for (const service of SERVICES) {
    if (ref.path === ctx.serviceRepositories[service]) return serviceImage(service, ref, ctx);
  }
  if (ref.registry === 'docker.io' && ref.path === 'library/node' && /^24($|[-.])/.test(ref.tag)) {
    // The node:24 image's CMD; its entrypoint script only prefixes `node` to flag-only argument lists.
    return {
      kind: 'node',
      reference: raw,
      entrypoint: [],
      cmd: ['node'],
      env: { PATH: nodePath(ctx), NODE_VERSION: process.versions.node, YARN_VERSION: '' },
      workingDir: undefined,
      init: false,
      privatePaths: [],
      files: [],
      rootfs: undefined,
    };
  }
  const dir = storeImageDir(ctx.storeDir, ref);
  const present = await stat(join(dir, 'rootfs')).then(
    (s) => s.isDirectory(),
    () => false,
  );
  if (present) {
    return {
      kind: 'store',
      reference: raw,
      entrypoint: [],
      cmd: [],
      env: {},
      workingDir: undefined,
      init: false,
      privatePaths: [],
      files: [],
      rootfs: join(dir, 'rootfs'),
    };
  }
  throw new ImageError(
    'ErrImagePull',
    `image ${raw} is not available on devcluster (no container engine, no registry): a node runs node:24, this ` +
      `project's images (${SERVICES.map((s) => ctx.serviceRepositories[s]).join(', ')}, any registry and tag) and the images in ` +
      `its local store ${ctx.storeDir}; see packages/devcluster/README.md, "Images"`,
  );
}

/** True for the test guest's image, which the store can build on demand. */
export function isTestGuestImage(raw: string): boolean {
  const ref = parseImageReference(raw);
  return `${ref.registry}/${ref.path}` === TEST_GUEST_REPOSITORY && !ref.digest;
}

async function linkOrCopy(from: string, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true });
  try {
    await link(from, to);
  } catch {
    await copyFile(from, to);
  }
}

/**
 * Puts an image into the store from files on this machine: `files` maps paths inside the image to host files
 * (hard links where possible). Atomic: the image appears whole or not at all.
 */
export async function importStoreImage(
  storeDir: string,
  raw: string,
  files: Record<string, string>,
  about: Record<string, string>,
): Promise<string> {
  const dir = storeImageDir(storeDir, parseImageReference(raw));
  const work = `${dir}.importing-${process.pid}`;
  await rm(work, { recursive: true, force: true });
  for (const [inside, host] of Object.entries(files)) {
    await linkOrCopy(host, join(work, 'rootfs', inside));
  }
  await writeFile(
    join(work, 'image.json'),
    `${JSON.stringify({ reference: raw, ...about, importedAt: new Date().toISOString() }, null, 2)}\n`,
  );
  await rm(dir, { recursive: true, force: true });
  await mkdir(dirname(dir), { recursive: true });
  await rename(work, dir);
  return dir;
}

/**
 * The test guest (built by ../guest/build.ts, cached) as the image `registry.kubevirt-ts.dev/test-guest:<tag>`:
 * /disk/disk.qcow2 for a containerDisk, /boot/vmlinuz and /boot/initrd.img for kernel boot.
 */
export async function ensureTestGuestImage(
  storeDir: string,
  raw: string,
  log: (message: string) => void,
): Promise<string> {
  const { buildTestGuest, testGuestVersion } = await import('../guest/build.ts');
  const dir = storeImageDir(storeDir, parseImageReference(raw));
  const current = await readFile(join(dir, 'image.json'), 'utf8').then(
    (text) => (JSON.parse(text) as { guestVersion?: string }).guestVersion,
    () => undefined,
  );
  // A guest rebuilt with other content has another version; the store follows it.
  if (current === testGuestVersion()) return dir;
  const guest = await buildTestGuest({ log });
  return importStoreImage(
    storeDir,
    raw,
    {
      'disk/disk.qcow2': guest.containerDisk,
      'boot/vmlinuz': guest.kernel,
      'boot/initrd.img': guest.initrd,
    },
    { source: guest.dir, guestVersion: guest.version },
  );
}
