import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTestGuest, parseLdd, testGuestVersion } from './build.ts';

describe('parseLdd', () => {
  it('lists every resolved library and the dynamic loader', () => {
    const out = [
      '\tlinux-vdso.so.1 (0x00007ffd)',
      '\tlibglib-2.0.so.0 => /lib/x86_64-linux-gnu/libglib-2.0.so.0 (0x00007f)',
      '\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)',
      '\t/lib64/ld-linux-x86-64.so.2 (0x00007f)',
    ].join('\n');
    expect(parseLdd(out)).toEqual([
      '/lib/x86_64-linux-gnu/libglib-2.0.so.0',
      '/lib/x86_64-linux-gnu/libc.so.6',
      '/lib64/ld-linux-x86-64.so.2',
    ]);
  });

  it('names a library the host lacks', () => {
    expect(() => parseLdd('\tliburing.so.2 => not found')).toThrow(
      /needs a library the host lacks: liburing.so.2/,
    );
    expect(() => parseLdd('\tlibtomcrypt.so.1 => not found', 'dropbear')).toThrow(
      /dropbear needs a library the host lacks: libtomcrypt.so.1/,
    );
  });
});

describe('buildTestGuest', () => {
  it('returns a cached build without building anything', async () => {
    const root = await mkdtemp(join(tmpdir(), 'guest-cache-'));
    try {
      const dir = join(root, testGuestVersion());
      await mkdir(dir);
      await writeFile(
        join(dir, 'manifest.json'),
        JSON.stringify({ kernelRelease: '6.1.0-99-amd64', packages: {} }),
      );
      const guest = await buildTestGuest({
        cacheRoot: root,
        log: () => expect.fail('a warm run must not build'),
      });
      expect(guest).toMatchObject({
        version: testGuestVersion(),
        kernelRelease: '6.1.0-99-amd64',
        kernel: join(dir, 'kernel-boot', 'boot', 'vmlinuz'),
        containerDisk: join(dir, 'container-disk', 'disk', 'guest.qcow2'),
        kernelBootPaths: { kernelPath: '/boot/vmlinuz', initrdPath: '/boot/initrd.img' },
      });
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });

  it('versions the cache by content', () => {
    expect(testGuestVersion()).toMatch(/^v\d+-[0-9a-f]{12}$/);
    expect(testGuestVersion()).toBe(testGuestVersion());
  });
});
