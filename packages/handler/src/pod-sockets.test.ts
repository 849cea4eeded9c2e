// Finding a launcher pod's sockets folder, and reaching a deep one through a short symlink.
import { mkdir, mkdtemp, readlink, rm } from 'node:fs/promises';
import { createServer, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { PodSockets } from './pod-sockets.ts';

const POD = '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d';

describe('PodSockets', () => {
  let root: string;
  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvts-ps-'));
  });
  afterEach(() => rm(root, { recursive: true, force: true }));

  it("uses the kubelet's emptyDir layout", () => {
    expect(new PodSockets('/pods', '/s').socketsDir(POD)).toBe(
      `/pods/${POD}/volumes/kubernetes.io~empty-dir/sockets`,
    );
  });

  it('returns the real folder when it is short enough', async () => {
    const sockets = new PodSockets('/pods', join(root, 's'));
    expect(await sockets.reachableDir(POD)).toBe(`/pods/${POD}/volumes/kubernetes.io~empty-dir/sockets`);
  });

  it('links a deep folder and a socket served through the link is reachable at the real path', async () => {
    const deep = join(root, 'a'.repeat(40), 'b'.repeat(40), 'pods');
    const sockets = new PodSockets(deep, join(root, 's'));
    await mkdir(sockets.socketsDir(POD), { recursive: true });
    expect(await sockets.exists(POD)).toBe(true);
    const dir = await sockets.reachableDir(POD);
    expect(dir).toBe(join(root, 's', POD));
    expect(await readlink(dir)).toBe(sockets.socketsDir(POD));
    // Idempotent.
    expect(await sockets.reachableDir(POD)).toBe(dir);

    const server = createServer((c) => c.end('hello'));
    await new Promise<void>((resolve) => server.listen(join(dir, 'notify-sock'), resolve));
    try {
      const text = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = connect(join(dir, 'notify-sock'));
        c.on('data', (b: Buffer) => (got += b.toString()));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
      expect(text).toBe('hello');
    } finally {
      server.close();
    }
    await sockets.release(POD);
    await expect(readlink(dir)).rejects.toThrow(/ENOENT/);
  });

  it('says which flags to change when even the link would be too long', async () => {
    const sockets = new PodSockets(join(root, 'x'.repeat(100)), join(root, 'y'.repeat(100)));
    await expect(sockets.reachableDir(POD)).rejects.toThrow(/shorter --state-dir/);
  });

  it('reports a missing pod folder', async () => {
    expect(await new PodSockets(root, join(root, 's')).exists(POD)).toBe(false);
  });
});
