// The production bundle of each service, made exactly as its Dockerfile makes it (build with turbo, then
// `pnpm deploy --prod`), must start on its own: copied outside the workspace, with no source condition, no
// devDependencies and no parent node_modules to fall back on, `node dist/main.js --help` prints the service's usage.
// This is what the images run; the images themselves cannot be built on these machines (no container engine).
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const repoRoot = join(import.meta.dirname, '..', '..');
const services = [
  { pkg: 'controller', program: 'virt-controller' },
  { pkg: 'api', program: 'virt-api' },
  { pkg: 'handler', program: 'virt-handler' },
  { pkg: 'launcher', program: 'virt-launcher' },
] as const;

// Building four services and their dependencies takes a while on a 2-core machine; this bounds a hung build.
const timeout = 600_000;

function run(command: string, args: string[], cwd: string): SpawnSyncReturns<string> {
  const r = spawnSync(command, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, TURBO_TELEMETRY_DISABLED: '1', TURBO_NO_UPDATE_NOTIFIER: '1' },
  });
  if (r.error !== undefined) {
    throw new Error(`cannot run ${command} (is the toolchain on PATH? run through make): ${r.error.message}`);
  }
  if (r.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${r.status}:\n${r.stdout}\n${r.stderr}`);
  }
  return r;
}

const workDir = mkdtempSync(join(tmpdir(), 'kubevirt-ts-bundle-'));
afterAll(() => {
  rmSync(workDir, { recursive: true, force: true });
});

// The bundle must not be able to resolve anything from a node_modules folder above it.
function ancestorNodeModules(dir: string): string[] {
  const found: string[] = [];
  for (let d = dirname(dir); ; d = dirname(d)) {
    if (existsSync(join(d, 'node_modules'))) found.push(join(d, 'node_modules'));
    if (dirname(d) === d) return found;
  }
}

// Built once, on first use by any test (not in a hook, so a failed build fails every test instead of skipping it).
let built: Error | true | undefined;
function buildAll(): void {
  if (built === undefined) {
    try {
      const filters = services.map((s) => `--filter=@kubevirt-ts/${s.pkg}...`);
      run('pnpm', ['turbo', 'run', 'build', ...filters, '--output-logs=errors-only'], repoRoot);
      built = true;
    } catch (err) {
      built = err instanceof Error ? err : new Error(String(err));
    }
  }
  if (built !== true) throw built;
}

describe('the pruned production bundle', () => {
  it('lives where no node_modules above it could hide a missing dependency', () => {
    expect(ancestorNodeModules(join(workDir, 'bundle'))).toEqual([]);
  });

  it.each(services)(
    'of $program starts without the workspace and prints its usage',
    ({ pkg, program }) => {
      buildAll();
      const out = join(workDir, pkg);
      // --prefer-offline: deploy resolves a lockfile of its own and may need package metadata the store lacks.
      run('pnpm', ['--filter', `@kubevirt-ts/${pkg}`, 'deploy', '--prod', '--prefer-offline', out], repoRoot);
      expect(existsSync(join(out, 'dist', 'main.js'))).toBe(true);
      // Production installs no devDependency: the bundle has no TypeScript compiler or test runner in it.
      expect(existsSync(join(out, 'node_modules', 'typescript'))).toBe(false);
      expect(existsSync(join(out, 'node_modules', 'vitest'))).toBe(false);

      const env = { ...process.env };
      delete env.NODE_OPTIONS;
      delete env.NODE_PATH;
      const r = spawnSync(process.execPath, [join(out, 'dist', 'main.js'), '--help'], {
        cwd: out,
        encoding: 'utf8',
        env,
      });
      expect(r.error).toBeUndefined();
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^Usage: ${program} `));
      expect(r.stdout).toContain('--health-port');
    },
    timeout,
  );
});
