import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  binaryCache,
  compareVersions,
  ensureBinaries,
  expectedStamp,
  goDirective,
  goModulesDir,
  KUBERNETES_COMMANDS,
  kubernetesLdflags,
  pinnedVersions,
  readModuleFiles,
  requiredVersion,
} from './binaries.ts';
import { DevclusterError } from './errors.ts';

describe('go.mod reading', () => {
  it('finds required versions in block and single-line form', () => {
    const goMod =
      'module x\n\ngo 1.25.0\n\nrequire k8s.io/kubernetes v1.35.4\n\nrequire (\n\tgo.etcd.io/etcd/server/v3 v3.6.16\n)\n';
    expect(requiredVersion(goMod, 'k8s.io/kubernetes')).toBe('v1.35.4');
    expect(requiredVersion(goMod, 'go.etcd.io/etcd/server/v3')).toBe('v3.6.16');
    expect(requiredVersion(goMod, 'k8s.io/api')).toBeUndefined();
    expect(goDirective(goMod)).toBe('1.25.0');
  });

  it('reads the pins of this repository', async () => {
    const versions = await pinnedVersions();
    expect(versions.kubernetes).toMatch(/^v1\.(3[5-9]|[4-9]\d)\.\d+$/);
    expect(versions.etcd).toMatch(/^v3\.6\.\d+$/);
    expect(versions.coredns).toMatch(/^v1\.\d+\.\d+$/);
  });

  it('compares dotted versions numerically', () => {
    expect(compareVersions('1.26.8', '1.26.0')).toBe(1);
    expect(compareVersions('1.9', '1.26')).toBe(-1);
    expect(compareVersions('1.26', '1.26.0')).toBe(0);
  });
});

describe('kubernetesLdflags', () => {
  it('stamps the release into component-base', () => {
    const flags = kubernetesLdflags('v1.35.4', '2026-01-01T00:00:00Z');
    expect(flags).toContain('-X k8s.io/component-base/version.gitVersion=v1.35.4');
    expect(flags).toContain('-X k8s.io/component-base/version.gitMajor=1');
    expect(flags).toContain('-X k8s.io/component-base/version.gitMinor=35');
  });

  it('refuses a version it cannot split', () => {
    expect(() => kubernetesLdflags('main', '')).toThrow(DevclusterError);
  });
});

describe('expectedStamp', () => {
  it('changes with go.sum, so a changed pin rebuilds', async () => {
    const files = await readModuleFiles(goModulesDir());
    const versions = await pinnedVersions();
    const before = expectedStamp(files, versions);
    const after = expectedStamp({ ...files, k8s: { ...files.k8s, goSum: `${files.k8s.goSum}x` } }, versions);
    expect(after.kubernetes.inputs).not.toBe(before.kubernetes.inputs);
    expect(after.etcd).toEqual(before.etcd);
    expect(after.coredns).toEqual(before.coredns);
  });

  it('rebuilds CoreDNS alone when its plugin list changes', async () => {
    const files = await readModuleFiles(goModulesDir());
    const versions = await pinnedVersions();
    const before = expectedStamp(files, versions);
    const after = expectedStamp(
      { ...files, coredns: { ...files.coredns, main: `${files.coredns.main}// another plugin\n` } },
      versions,
    );
    expect(after.coredns.inputs).not.toBe(before.coredns.inputs);
    expect(after.kubernetes).toEqual(before.kubernetes);
  });
});

describe('ensureBinaries', () => {
  let cacheRoot: string;
  let savedPath: string | undefined;

  beforeEach(async () => {
    cacheRoot = await mkdtemp(join(tmpdir(), 'devcluster-cache-'));
    savedPath = process.env.PATH;
  });
  afterEach(async () => {
    process.env.PATH = savedPath;
    await rm(cacheRoot, { recursive: true, force: true });
  });

  async function fillCache(stamp: unknown): Promise<string> {
    const versions = await pinnedVersions();
    const cache = binaryCache(cacheRoot, versions.kubernetes);
    await mkdir(cache.binDir, { recursive: true });
    for (const name of [...KUBERNETES_COMMANDS, 'etcd', 'coredns', 'helm']) {
      await writeFile(join(cache.binDir, name), '#!/bin/sh\n');
      await chmod(join(cache.binDir, name), 0o755);
    }
    await writeFile(cache.stampFile, JSON.stringify(stamp));
    return cache.binDir;
  }

  it('builds nothing when the stamp matches and every binary is there', async () => {
    const stamp = expectedStamp(await readModuleFiles(goModulesDir()), await pinnedVersions());
    const binDir = await fillCache(stamp);
    process.env.PATH = '/nonexistent';
    const result = await ensureBinaries({ cacheRoot, progress: () => undefined });
    expect(result.built).toEqual([]);
    expect(result.binDir).toBe(binDir);
    expect(binDir).toBe(join(cacheRoot, 'k8s', result.versions.kubernetes, 'bin'));
  });

  it('says what to install when a build is needed and Go is missing', async () => {
    const stamp = expectedStamp(await readModuleFiles(goModulesDir()), await pinnedVersions());
    await fillCache({ ...stamp, kubernetes: { ...stamp.kubernetes, inputs: 'stale' } });
    process.env.PATH = join(cacheRoot, 'empty-path');
    const attempt = ensureBinaries({ cacheRoot, progress: () => undefined });
    await expect(attempt).rejects.toBeInstanceOf(DevclusterError);
    await expect(attempt).rejects.toThrow(/needs Go/);
    await expect(attempt.catch((err: DevclusterError) => err.hint)).resolves.toMatch(
      /install Go 1\.26 or newer/,
    );
    // The stale part was not recorded as built.
    const versions = await pinnedVersions();
    const saved = JSON.parse(
      await readFile(binaryCache(cacheRoot, versions.kubernetes).stampFile, 'utf8'),
    ) as {
      kubernetes: { inputs: string };
    };
    expect(saved.kubernetes.inputs).toBe('stale');
  });
});
