// The node flags of the launcher's image (image/node-flags; why: docs/adr/0007-launcher-node-flags.md): the
// entrypoint and the Dockerfile use that file, and the project's Node accepts the flags and starts virt-launcher
// under them from source. The memory and Sync numbers behind them come from `pnpm bench`, beside plain node.
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');
const flags = read('../image/node-flags')
  .split('\n')
  .map((line) => line.trim())
  .filter((line) => line !== '' && !line.startsWith('#'));

describe("the launcher image's node flags", () => {
  it('are node options, used by the entrypoint and copied by the Dockerfile', () => {
    for (const flag of flags) expect(flag).toMatch(/^--[a-z][a-z0-9-]*(=\S+)?$/);
    expect(read('../image/entrypoint.sh')).toMatch(
      /^exec node .*\/usr\/local\/lib\/kubevirt-ts\/node-flags.* \/app\/dist\/main\.js "\$@"$/m,
    );
    expect(read('../Dockerfile')).toMatch(/COPY .*packages\/launcher\/image\/node-flags/);
  });

  it('start virt-launcher on this Node', () => {
    const main = fileURLToPath(new URL('./main.ts', import.meta.url));
    const r = spawnSync(process.execPath, [...flags, '--conditions=@kubevirt-ts/source', main, '--help'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_NAME: '' },
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: virt-launcher \[flags\]\n/);
  });
});
