// The checked-in src/gen must be exactly what `generate` writes from proto/ and LOADER_OPTIONS.
import { mkdtemp, readFile, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { GEN_DIR, generate, genTypesFlags } from '../scripts/generate.ts';
import { LOADER_OPTIONS } from './options.ts';

async function snapshot(dir: string): Promise<Map<string, string>> {
  const files = new Map<string, string>();
  for (const entry of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    files.set(path.slice(dir.length), await readFile(path, 'utf8'));
  }
  return files;
}

describe('generated types', () => {
  const dirs: string[] = [];
  afterAll(async () => {
    await Promise.all(dirs.map((dir) => rm(dir, { recursive: true, force: true })));
  });

  it('src/gen is up to date with proto/ (run `pnpm --filter @kubevirt-ts/proto generate` if this fails)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'kvts-gen-'));
    dirs.push(dir);
    const out = join(dir, 'gen');
    await generate(out);
    const fresh = await snapshot(out);
    const checkedIn = await snapshot(GEN_DIR);
    expect([...checkedIn.keys()].sort()).toEqual([...fresh.keys()].sort());
    for (const [file, text] of fresh) expect(checkedIn.get(file), file).toBe(text);
  });

  it('passes LOADER_OPTIONS to the generator flag for flag', () => {
    expect(genTypesFlags(LOADER_OPTIONS)).toEqual([
      '--longs=String',
      '--enums=String',
      '--defaults',
      '--oneofs',
    ]);
  });

  it('refuses a loader option it cannot pass on, so types and loader cannot drift', () => {
    expect(() => genTypesFlags({ ...LOADER_OPTIONS, longs: Object })).toThrow(/LOADER_OPTIONS.longs/);
    expect(() => genTypesFlags({ ...LOADER_OPTIONS, alternateCommentMode: true })).toThrow(
      /alternateCommentMode/,
    );
  });
});
