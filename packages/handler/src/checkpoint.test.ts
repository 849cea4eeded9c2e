// Checkpoints (ghost records) on the node: what a restarted handler reads back.
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CheckpointStore, type LauncherRecord } from './checkpoint.ts';

const record: LauncherRecord = {
  namespace: 'ns1',
  name: 'vm1',
  uid: '6f1c1d6e-0b7a-4c53-9d0e-1f2a3b4c5d6e',
  podUid: '0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d',
};

describe('CheckpointStore', () => {
  let dir: string;
  let store: CheckpointStore;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvts-ckpt-'));
    store = new CheckpointStore(dir);
    await store.init();
  });
  afterEach(() => rm(dir, { recursive: true, force: true }));

  it('reads back what was put, and forgets what was removed', async () => {
    const other = { ...record, name: 'vm2', uid: '11111111-2222-3333-4444-555555555555' };
    await store.put(record);
    await store.put(other);
    expect((await new CheckpointStore(dir).load()).records).toEqual(
      [other, record].sort((a, b) => a.uid.localeCompare(b.uid)),
    );
    await store.remove(record.uid);
    expect((await store.load()).records).toEqual([other]);
    // No temporary files are left behind by the atomic write.
    expect(await readdir(store.dir)).toEqual([`${other.uid}.json`]);
  });

  it('replaces a record of the same uid', async () => {
    await store.put(record);
    await store.put({ ...record, podUid: '99999999-8888-7777-6666-555555555555' });
    expect((await store.load()).records).toEqual([
      { ...record, podUid: '99999999-8888-7777-6666-555555555555' },
    ]);
  });

  it('reports unreadable files instead of failing, and leaves them in place', async () => {
    await store.put(record);
    await writeFile(join(store.dir, 'garbage.json'), '{not json');
    await writeFile(join(store.dir, '11111111-2222-3333-4444-555555555555.json'), JSON.stringify(record));
    const loaded = await store.load();
    expect(loaded.records).toEqual([record]);
    expect(loaded.invalid.map((i) => i.file.split('/').pop())).toEqual([
      '11111111-2222-3333-4444-555555555555.json',
      'garbage.json',
    ]);
  });

  it('refuses a malformed uid, which would escape its folder', async () => {
    await expect(store.put({ ...record, uid: '../../etc/x' })).rejects.toThrow(/incomplete checkpoint/);
    await expect(store.remove('../x')).rejects.toThrow(/malformed VMI uid/);
  });

  it('loads nothing from a folder that does not exist yet', async () => {
    expect(await new CheckpointStore(join(dir, 'missing')).load()).toEqual({ records: [], invalid: [] });
  });
});
