import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RCS } from './guest-files.ts';

// The boot script's list reader, run by the guest's own shell (busybox, from scripts/install-hypervisor.sh).
const ITEMS = /^items\(\) \{\n[\s\S]*?\n\}\n/m.exec(RCS)?.[0];

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'guest-files-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function items(key: string, userData: string | undefined): Promise<string[]> {
  const file = join(dir, 'user-data');
  if (userData === undefined) await rm(file, { force: true });
  else await writeFile(file, userData);
  const { stdout } = await promisify(execFile)('/bin/busybox', [
    'sh',
    '-c',
    `${ITEMS ?? ''}\nitems "$1" "$2"`,
    'sh',
    key,
    file,
  ]);
  return stdout.split('\n').filter((line) => line !== '');
}

describe('the boot script’s user-data list reader', () => {
  it('is in the boot script', () => {
    expect(ITEMS).toBeDefined();
  });

  it('reads a block list under its key, without quotes, up to the next key', async () => {
    const userData = [
      '#cloud-config',
      'hostname: g',
      'ssh_authorized_keys:',
      '  - ssh-ed25519 AAAAC3Nza1 me@laptop',
      '  # a comment in the list',
      '',
      '  - "ssh-ed25519 AAAAC3Nza2 quoted"',
      "  - 'ssh-rsa AAAAB3Nza3 single'   ",
      'marker: not-a-key',
      '  - not in the list',
      '',
    ].join('\n');
    expect(await items('ssh_authorized_keys', userData)).toEqual([
      'ssh-ed25519 AAAAC3Nza1 me@laptop',
      'ssh-ed25519 AAAAC3Nza2 quoted',
      'ssh-rsa AAAAB3Nza3 single',
    ]);
  });

  it('reads a list written at the key’s own indentation, as YAML allows', async () => {
    expect(await items('ssh_authorized_keys', 'ssh_authorized_keys:\n- ssh-ed25519 AAAA k\n')).toEqual([
      'ssh-ed25519 AAAA k',
    ]);
  });

  it('reads nothing for a missing key, a flow list, another key with the same prefix, or no user-data', async () => {
    expect(await items('ssh_authorized_keys', '#cloud-config\nhostname: g\n')).toEqual([]);
    expect(await items('ssh_authorized_keys', 'ssh_authorized_keys: [a, b]\n')).toEqual([]);
    expect(await items('ssh_authorized_keys', 'ssh_authorized_keys_extra:\n  - x\n')).toEqual([]);
    expect(await items('ssh_authorized_keys', undefined)).toEqual([]);
  });
});
