import { lstat, mkdtemp, readFile, readlink, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { nodeHostPath, writeAtomic } from './volumes.ts';

describe('nodeHostPath', () => {
  it('maps host paths into the node root, except the machine’s devices and kernel file systems', () => {
    expect(nodeHostPath('/nodes/n1', '/var/lib/kubelet/pods')).toBe('/nodes/n1/var/lib/kubelet/pods');
    expect(nodeHostPath('/nodes/n1', '/var/../etc')).toBe('/nodes/n1/etc');
    expect(nodeHostPath('/nodes/n1', '/dev/kvm')).toBe('/dev/kvm');
    expect(nodeHostPath('/nodes/n1', '/sys/fs/cgroup')).toBe('/sys/fs/cgroup');
    expect(nodeHostPath('/nodes/n1', '/devices')).toBe('/nodes/n1/devices');
  });
});

describe('writeAtomic', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'atomic-'));
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('writes files behind ..data and swaps the whole set on update', async () => {
    await writeAtomic(
      dir,
      new Map([
        ['a', { data: Buffer.from('1'), mode: 0o644 }],
        ['sub/b', { data: Buffer.from('2'), mode: 0o400 }],
      ]),
    );
    expect(await readFile(join(dir, 'a'), 'utf8')).toBe('1');
    expect(await readFile(join(dir, 'sub', 'b'), 'utf8')).toBe('2');
    expect((await lstat(join(dir, 'a'))).isSymbolicLink()).toBe(true);
    expect((await stat(join(dir, 'sub', 'b'))).mode & 0o777).toBe(0o400);
    const first = await readlink(join(dir, '..data'));

    await writeAtomic(dir, new Map([['a', { data: Buffer.from('3'), mode: 0o644 }]]));
    expect(await readFile(join(dir, 'a'), 'utf8')).toBe('3');
    expect(await readlink(join(dir, '..data'))).not.toBe(first);
    const entries = await readdir(dir);
    expect(entries).not.toContain('sub');
    expect(entries).not.toContain(first);
  });

  it('refuses paths that leave the volume', async () => {
    await expect(
      writeAtomic(dir, new Map([['../x', { data: Buffer.from(''), mode: 0o644 }]])),
    ).rejects.toThrow(/invalid file path/);
  });
});
