// libvirt's QEMU capability cache, made once and kept: a libvirt daemon with an empty cache probes every QEMU binary
// (about 8 s here) before it can start the first domain. The launcher image ships a filled cache; outside an image
// (devcluster, tests, the benchmark) this module fills one in a throw-away sandbox and caches it under
// ${XDG_CACHE_HOME:-~/.cache}/kubevirt-ts/qemu-capabilities/<key>/, keyed by the libvirt and QEMU builds (libvirt
// would reject, and re-probe, a cache made by another build). Launchers get it with --qemu-capabilities-seed.
// Usage as a script (prints the folder): node --conditions=@kubevirt-ts/source packages/launcher/src/capabilities-cache.ts
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { LibvirtDaemons } from './daemons.ts';
import { LibvirtHypervisor } from './libvirt/client.ts';
import { sandboxCommand } from './sandbox.ts';

const BINARIES = [
  '/usr/sbin/libvirtd',
  '/usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so',
  '/usr/bin/qemu-system-x86_64',
];

export function defaultCapabilitiesCacheRoot(): string {
  return join(process.env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kubevirt-ts', 'qemu-capabilities');
}

/** A key that changes whenever libvirt or QEMU is reinstalled or upgraded. */
export async function capabilitiesKey(): Promise<string> {
  const hash = createHash('sha256');
  for (const binary of BINARIES) {
    try {
      const s = await stat(binary);
      hash.update(`${binary}:${s.size}:${s.mtimeMs}:${s.ctimeMs}\n`);
    } catch {
      throw new Error(`${binary} is missing; install libvirt and QEMU with scripts/install-hypervisor.sh`);
    }
  }
  return hash.digest('hex').slice(0, 16);
}

async function xmlFiles(dir: string): Promise<string[]> {
  return (await readdir(dir).catch(() => [] as string[])).filter((f) => f.endsWith('.xml'));
}

/**
 * The folder of a filled capability cache for this machine's libvirt and QEMU, making it first when needed (about
 * 10 s, as root). Concurrent callers are safe: each fills its own folder and the first rename wins.
 */
export async function ensureCapabilityCache(options: { cacheRoot?: string } = {}): Promise<string> {
  const root = options.cacheRoot ?? defaultCapabilitiesCacheRoot();
  const dir = join(root, await capabilitiesKey());
  if ((await xmlFiles(dir)).length > 0) return dir;
  await mkdir(root, { recursive: true });
  const work = await mkdtemp(join(root, '.fill-'));
  try {
    const out = join(work, 'capabilities');
    await mkdir(out);
    const { command, args } = sandboxCommand(
      [
        process.execPath,
        '--conditions=@kubevirt-ts/source',
        fileURLToPath(import.meta.url),
        '--probe-into',
        out,
      ],
      { stateDir: join(work, 'state') },
    );
    await new Promise<void>((resolve, reject) => {
      const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
      child.on('error', reject);
      child.on('exit', (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`filling the QEMU capability cache failed (exit ${code}): ${stderr.trim()}`)),
      );
    });
    if ((await xmlFiles(out)).length === 0) throw new Error('libvirt wrote no QEMU capability file');
    try {
      await rename(out, dir);
    } catch (err) {
      if ((await xmlFiles(dir)).length === 0) throw err;
    }
    return dir;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Inside the sandbox: start the daemons on an empty cache, wait for the probe, copy the cache out. */
async function probeInto(out: string): Promise<void> {
  const { silentLogger } = await import('@kubevirt-ts/runtime/logger');
  const daemons = new LibvirtDaemons({ log: silentLogger(), startTimeoutMs: 120_000 });
  await daemons.start();
  try {
    const hv = await LibvirtHypervisor.connect({ socketPath: daemons.libvirtSocket });
    try {
      await hv.domainCapabilities();
    } finally {
      hv.close();
    }
    const source = '/var/cache/libvirt/qemu/capabilities';
    for (const f of await xmlFiles(source)) await copyFile(join(source, f), join(out, f));
  } finally {
    await daemons.stop();
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const i = process.argv.indexOf('--probe-into');
  if (i >= 0) await probeInto(process.argv[i + 1] as string);
  else process.stdout.write(`${await ensureCapabilityCache()}\n`);
}
