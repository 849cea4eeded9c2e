// Builds the test guest (also the demo's guest) from Debian packages and caches it: a Debian kernel with a busybox
// initramfs, as a kernel-boot image (vmlinuz + initrd) and as a bootable containerDisk (qcow2, syslinux on FAT).
// Usage as a script: node --conditions=@kubevirt-ts/source packages/devcluster/src/guest/build.ts
// It needs the tools scripts/install-hypervisor.sh installs, and apt access to Debian's packages.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFile,
  chmod,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rename,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { homedir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import {
  ACPID_MAP,
  ACPI_POWER_SCRIPT,
  GUEST_MODULES,
  INIT,
  INITTAB,
  RCS,
  UDHCPC_SCRIPT,
  osRelease,
  syslinuxConfig,
} from './guest-files.ts';
import { orderModules } from './modules.ts';

const run = promisify(execFile);

/** Bump when the build steps change in a way the guest files' content does not show. */
const BUILD_FORMAT = 2;
/** Debian's SSH server (dropbear and dropbearkey), the libraries it needs beyond the host's, and an SFTP server. */
const SSH_PACKAGES = ['dropbear-bin', 'libtomcrypt1', 'libtommath1', 'openssh-sftp-server'] as const;
/** The guest's own version, as its os-release and the guest agent report it. */
export const GUEST_OS_VERSION = '1';
/** Kernel arguments for kernel boot; the containerDisk's syslinux passes the same. */
export const TEST_GUEST_KERNEL_ARGS = 'console=ttyS0';

export interface TestGuest {
  /** Cache version: changes whenever the guest's content would. */
  version: string;
  /** The cache folder holding everything below. */
  dir: string;
  /** Debian kernel release the guest runs, e.g. 6.1.0-56-amd64. */
  kernelRelease: string;
  /** The kernel (bzImage) for kernel boot. */
  kernel: string;
  /** The initramfs (gzip cpio) for kernel boot. */
  initrd: string;
  /** Kernel arguments the guest expects for kernel boot (serial console on ttyS0). */
  kernelArgs: string;
  /** A folder laid out as a kernel-boot container image: boot/vmlinuz and boot/initrd.img. */
  kernelBootImage: string;
  /** Paths of kernel and initrd inside kernelBootImage, as a VMI's kernelBoot.container names them. */
  kernelBootPaths: { kernelPath: string; initrdPath: string };
  /** The bootable disk (qcow2) for a containerDisk. */
  containerDisk: string;
  /** A folder laid out as a containerDisk image: disk/guest.qcow2. */
  containerDiskImage: string;
  /** What the guest agent reports from its os-release. */
  os: { id: string; name: string; prettyName: string; versionId: string };
}

export interface BuildTestGuestOptions {
  /** Root of the cache; default ${XDG_CACHE_HOME:-~/.cache}/kubevirt-ts/guest. */
  cacheRoot?: string;
  /** Progress messages (the build takes tens of seconds); default: none. */
  log?: (message: string) => void;
}

export function defaultGuestCacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kubevirt-ts', 'guest');
}

/** The cache version: a digest of everything that decides the guest's content. */
export function testGuestVersion(): string {
  const digest = createHash('sha256')
    .update(
      JSON.stringify([
        BUILD_FORMAT,
        GUEST_OS_VERSION,
        TEST_GUEST_KERNEL_ARGS,
        SSH_PACKAGES,
        GUEST_MODULES,
        INIT,
        INITTAB,
        RCS,
        ACPID_MAP,
        ACPI_POWER_SCRIPT,
        UDHCPC_SCRIPT,
      ]),
    )
    .digest('hex');
  return `v${BUILD_FORMAT}-${digest.slice(0, 12)}`;
}

interface Manifest {
  kernelRelease: string;
  packages: Record<string, string>;
}

function describe(dir: string, version: string, manifest: Manifest): TestGuest {
  const kernelBootImage = join(dir, 'kernel-boot');
  const containerDiskImage = join(dir, 'container-disk');
  return {
    version,
    dir,
    kernelRelease: manifest.kernelRelease,
    kernel: join(kernelBootImage, 'boot', 'vmlinuz'),
    initrd: join(kernelBootImage, 'boot', 'initrd.img'),
    kernelArgs: TEST_GUEST_KERNEL_ARGS,
    kernelBootImage,
    kernelBootPaths: { kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' },
    containerDisk: join(containerDiskImage, 'disk', 'guest.qcow2'),
    containerDiskImage,
    os: {
      id: 'kubevirt-ts-guest',
      name: 'kubevirt-ts test guest',
      prettyName: `kubevirt-ts test guest ${GUEST_OS_VERSION} (Debian kernel, busybox)`,
      versionId: GUEST_OS_VERSION,
    },
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

async function tool(
  cmd: string,
  args: string[],
  cwd?: string,
  env?: Record<string, string>,
): Promise<string> {
  try {
    const { stdout } = await run(cmd, args, {
      cwd,
      env: env === undefined ? undefined : { ...process.env, ...env },
      maxBuffer: 64 * 1024 * 1024,
    });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') {
      throw new Error(`test guest build: '${cmd}' is not installed; run scripts/install-hypervisor.sh`, {
        cause: err,
      });
    }
    throw new Error(`test guest build: '${cmd} ${args.join(' ')}' failed: ${e.stderr?.trim() || e.message}`, {
      cause: err,
    });
  }
}

/**
 * Returns the cached test guest, building it first when this version is not cached yet. A warm call reads one
 * manifest and builds nothing. Concurrent builders are safe: each builds in its own folder and the first rename wins.
 */
export async function buildTestGuest(options: BuildTestGuestOptions = {}): Promise<TestGuest> {
  const log = options.log ?? (() => undefined);
  const version = testGuestVersion();
  const root = options.cacheRoot ?? defaultGuestCacheRoot();
  const dir = join(root, version);
  const manifestPath = join(dir, 'manifest.json');
  if (await exists(manifestPath)) {
    return describe(dir, version, JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest);
  }

  await mkdir(root, { recursive: true });
  const work = await mkdtemp(join(root, `.build-${version}-`));
  try {
    const manifest = await buildInto(work, log);
    await writeFile(join(work, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rm(join(work, 'tmp'), { recursive: true, force: true });
    try {
      await rename(work, dir);
    } catch (err) {
      // Another builder finished first; its result is as good as ours.
      if (!(await exists(manifestPath))) throw err;
    }
    log(`test guest ${version} cached in ${dir}`);
    await pruneOtherVersions(root, version, log);
    return describe(dir, version, JSON.parse(await readFile(manifestPath, 'utf8')) as Manifest);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

// Older builds are never used again once this version exists; they cost 30 MB each.
async function pruneOtherVersions(root: string, keep: string, log: (m: string) => void): Promise<void> {
  for (const entry of await readdir(root)) {
    if (entry !== keep && /^v\d+-[0-9a-f]+$/.test(entry)) {
      await rm(join(root, entry), { recursive: true, force: true });
      log(`removed the outdated test guest ${entry}`);
    }
  }
}

async function aptDownload(pkg: string, into: string): Promise<{ deb: string; version: string }> {
  // Three tries: the package archive is the one thing here that is not local, and a DNS blip must not fail a
  // whole CI run.
  for (let attempt = 1; ; attempt++) {
    try {
      await tool('apt-get', ['download', '-q', pkg], into);
      break;
    } catch (err) {
      if (attempt >= 3) throw err;
      await new Promise((r) => setTimeout(r, 3000 * attempt));
    }
  }
  const deb = (await readdir(into)).find((f) => f.startsWith(`${pkg}_`) && f.endsWith('.deb'));
  if (!deb) throw new Error(`test guest build: apt-get download ${pkg} left no .deb in ${into}`);
  const version = (await tool('dpkg-deb', ['-f', join(into, deb), 'Version'])).trim();
  return { deb: join(into, deb), version };
}

async function buildInto(work: string, log: (m: string) => void): Promise<Manifest> {
  const tmp = join(work, 'tmp');
  const debs = join(tmp, 'debs');
  await mkdir(debs, { recursive: true });

  // The kernel: whatever linux-image-amd64 currently points at (old ones leave the archive with each update).
  const depends = await tool('apt-cache', ['depends', 'linux-image-amd64']);
  const kernelPkg = /Depends:\s*(linux-image-\S+-amd64)/.exec(depends)?.[1];
  if (!kernelPkg) {
    throw new Error(
      'test guest build: apt-cache does not know linux-image-amd64; run apt-get update (the build downloads ' +
        "Debian's kernel package)",
    );
  }
  log(`downloading ${kernelPkg}, qemu-guest-agent and dropbear-bin`);
  const kernel = await aptDownload(kernelPkg, debs);
  const agent = await aptDownload('qemu-guest-agent', debs);
  const ssh: Record<string, string> = {};
  const sshTree = join(tmp, 'ssh');
  // The SSH server, the two libraries it links that a machine with the hypervisor packages lacks (the rest, libc,
  // zlib, libcrypt and gmp, come from the host as qemu-ga's do), and OpenSSH's SFTP server, which scp uses.
  for (const pkg of SSH_PACKAGES) {
    const { deb, version } = await aptDownload(pkg, debs);
    await tool('dpkg-deb', ['-x', deb, sshTree]);
    ssh[pkg] = version;
  }
  const kernelTree = join(tmp, 'kernel');
  const agentTree = join(tmp, 'agent');
  // Only the kernel image and the module tree are needed from the 70 MB package.
  await mkdir(kernelTree);
  await tool('sh', [
    '-c',
    `dpkg-deb --fsys-tarfile "$1" | tar -x -C "$2" ./boot ./lib/modules`,
    'sh',
    kernel.deb,
    kernelTree,
  ]);
  await tool('dpkg-deb', ['-x', agent.deb, agentTree]);
  const kernelRelease = (await readdir(join(kernelTree, 'lib', 'modules')))[0];
  if (!kernelRelease) throw new Error(`test guest build: ${kernelPkg} has no lib/modules tree`);

  log(`assembling the initramfs for kernel ${kernelRelease}`);
  const rootfs = join(tmp, 'rootfs');
  const modulesDir = join(kernelTree, 'lib', 'modules', kernelRelease);
  const order = await moduleLoadOrder(modulesDir);
  await assembleRootfs(rootfs, modulesDir, order, agentTree, sshTree);
  const kernelBoot = join(work, 'kernel-boot', 'boot');
  await mkdir(kernelBoot, { recursive: true });
  const vmlinuz = join(kernelTree, 'boot', `vmlinuz-${kernelRelease}`);
  await copyFile(vmlinuz, join(kernelBoot, 'vmlinuz'));
  await tool(
    'sh',
    [
      '-c',
      'find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -6 > "$1"',
      'sh',
      join(kernelBoot, 'initrd.img'),
    ],
    rootfs,
  );

  log('making the bootable containerDisk');
  await makeBootDisk(
    tmp,
    join(kernelBoot, 'vmlinuz'),
    join(kernelBoot, 'initrd.img'),
    join(work, 'container-disk', 'disk', 'guest.qcow2'),
  );

  const busybox = (await tool('dpkg-query', ['-W', '-f=${Version}', 'busybox-static'])).trim();
  return {
    kernelRelease,
    packages: {
      [kernelPkg]: kernel.version,
      'qemu-guest-agent': agent.version,
      ...ssh,
      'busybox-static': busybox,
    },
  };
}

/** Module files (relative to the module tree) in load order: every module after the ones it depends on. */
async function moduleLoadOrder(modulesDir: string): Promise<string[]> {
  const files = new Map<string, string>();
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith('.ko')) files.set(entry.name.slice(0, -3).replaceAll('-', '_'), path);
    }
  };
  await walk(join(modulesDir, 'kernel'));
  const builtin = new Set(
    (await readFile(join(modulesDir, 'modules.builtin'), 'utf8'))
      .split('\n')
      .filter(Boolean)
      .map((p) => basename(p, '.ko').replaceAll('-', '_')),
  );
  const deps = new Map<string, string[]>();
  const pending: string[] = [...GUEST_MODULES];
  while (pending.length > 0) {
    const name = pending.pop() as string;
    if (deps.has(name) || builtin.has(name)) continue;
    const file = files.get(name);
    if (!file) throw new Error(`test guest build: kernel module ${name} is neither a module nor built in`);
    const list = (await tool('modinfo', ['-F', 'depends', file]))
      .trim()
      .split(',')
      .filter(Boolean)
      .map((d) => d.replaceAll('-', '_'));
    deps.set(
      name,
      list.filter((d) => !builtin.has(d)),
    );
    pending.push(...list);
  }
  return orderModules(deps).map((name) => (files.get(name) as string).slice(modulesDir.length + 1));
}

async function assembleRootfs(
  rootfs: string,
  modulesDir: string,
  modules: string[],
  agentTree: string,
  sshTree: string,
): Promise<void> {
  for (const d of [
    'bin',
    'sbin',
    'usr/bin',
    'usr/sbin',
    'etc/init.d',
    'etc/acpi',
    'proc',
    'sys',
    'dev',
    'run',
    'tmp',
    'lib/modules',
    'lib64',
    'var',
    'root',
  ]) {
    await mkdir(join(rootfs, d), { recursive: true });
  }
  await symlink('../run', join(rootfs, 'var', 'run'));
  await copyFile('/bin/busybox', join(rootfs, 'bin', 'busybox'));
  for (const applet of (await tool('/bin/busybox', ['--list-full'])).split('\n').filter(Boolean)) {
    if (applet === 'bin/busybox') continue;
    const depth = applet.split('/').length - 1;
    await symlink(`${'../'.repeat(depth)}bin/busybox`, join(rootfs, applet)).catch(
      (err: NodeJS.ErrnoException) => {
        if (err.code !== 'EEXIST') throw err;
      },
    );
  }

  const files: [string, string, number][] = [
    ['init', INIT, 0o755],
    ['etc/inittab', INITTAB, 0o644],
    ['etc/init.d/rcS', RCS, 0o755],
    ['etc/acpid.conf', ACPID_MAP, 0o644],
    ['etc/acpi/power.sh', ACPI_POWER_SCRIPT, 0o755],
    ['etc/udhcpc.script', UDHCPC_SCRIPT, 0o755],
    ['etc/os-release', osRelease(GUEST_OS_VERSION), 0o644],
    ['etc/hostname', 'testguest\n', 0o644],
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\n', 0o644],
    ['etc/group', 'root:x:0:\n', 0o644],
    ['etc/shells', '/bin/sh\n', 0o644],
    ['etc/modules.order', modules.map((m) => basename(m)).join('\n') + '\n', 0o644],
  ];
  for (const [path, content, mode] of files) {
    await writeFile(join(rootfs, path), content);
    await chmod(join(rootfs, path), mode);
  }
  for (const m of modules) await copyFile(join(modulesDir, m), join(rootfs, 'lib', 'modules', basename(m)));

  // The guest agent, the SSH server and its key generator, each with every library it links, at the same paths
  // (the loader finds them there).
  await copyProgram(rootfs, agentTree, 'usr/sbin/qemu-ga');
  await copyProgram(rootfs, sshTree, 'usr/sbin/dropbear');
  await copyProgram(rootfs, sshTree, 'usr/bin/dropbearkey');
  // dropbear runs the SFTP subsystem from /usr/lib/sftp-server; Debian's package links it there too.
  await copyProgram(rootfs, sshTree, 'usr/lib/openssh/sftp-server');
  await symlink('openssh/sftp-server', join(rootfs, 'usr', 'lib', 'sftp-server'));
}

/**
 * Copies the program at `path` of an unpacked package tree into the rootfs, with every library it links: from the
 * same tree where the tree has it, else from the host, each at its path in the guest.
 */
async function copyProgram(rootfs: string, tree: string, path: string): Promise<void> {
  const program = join(tree, path);
  await mkdir(dirname(join(rootfs, path)), { recursive: true });
  await copyFile(program, join(rootfs, path));
  await chmod(join(rootfs, path), 0o755);
  const treeLibs = join(tree, 'usr', 'lib', 'x86_64-linux-gnu');
  const output = await tool('ldd', [program], undefined, { LD_LIBRARY_PATH: treeLibs });
  for (const lib of parseLdd(output, basename(path))) {
    const inGuest = lib.startsWith(`${tree}/`) ? lib.slice(tree.length) : lib;
    await mkdir(join(rootfs, dirname(inGuest)), { recursive: true });
    await copyFile(lib, join(rootfs, inGuest));
  }
}

/** The absolute library paths in ldd's output, the dynamic loader included. */
export function parseLdd(output: string, program = 'qemu-ga'): string[] {
  const libs: string[] = [];
  for (const line of output.split('\n')) {
    const resolved = /=>\s*(\/\S+)/.exec(line)?.[1] ?? /^\s*(\/\S+)\s+\(/.exec(line)?.[1];
    if (resolved) libs.push(resolved);
    else if (/=>\s*not found/.test(line))
      throw new Error(`test guest build: ${program} needs a library the host lacks: ${line.trim()}`);
  }
  return libs;
}

// A 64 MiB disk with one FAT partition at 1 MiB, syslinux in the partition's boot sector and its MBR code in
// the disk's first 440 bytes; SeaBIOS boots it and syslinux loads the same kernel and initramfs.
async function makeBootDisk(tmp: string, vmlinuz: string, initrd: string, out: string): Promise<void> {
  const raw = join(tmp, 'disk.raw');
  const cfg = join(tmp, 'syslinux.cfg');
  await writeFile(cfg, syslinuxConfig(TEST_GUEST_KERNEL_ARGS));
  await tool('truncate', ['-s', '64M', raw]);
  await tool('sh', ['-c', 'echo "start=2048, type=c, bootable" | sfdisk --quiet "$1"', 'sh', raw]);
  // 63 MiB in 1 KiB blocks: the partition, from sector 2048 to the end.
  await tool('mkfs.vfat', ['--offset', '2048', '-n', 'GUESTBOOT', raw, String(63 * 1024)]);
  await tool('syslinux', ['--offset', String(1024 * 1024), '--install', raw]);
  await tool('dd', [
    'if=/usr/lib/syslinux/mbr/mbr.bin',
    `of=${raw}`,
    'bs=440',
    'count=1',
    'conv=notrunc',
    'status=none',
  ]);
  await tool('mcopy', ['-i', `${raw}@@1M`, vmlinuz, initrd, cfg, '::/']);
  await mkdir(dirname(out), { recursive: true });
  await tool('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, out]);
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const started = Date.now();
  const guest = await buildTestGuest({ log: (m) => process.stderr.write(`guest: ${m}\n`) });
  process.stderr.write(`guest: ready in ${((Date.now() - started) / 1000).toFixed(1)} s\n`);
  process.stdout.write(JSON.stringify(guest, null, 2) + '\n');
}
