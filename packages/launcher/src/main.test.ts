// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help and rejected flags. Starting for real needs a pod's filesystem and root: test/launcher.test.ts does that.
import { fileURLToPath } from 'node:url';
import { serviceMain } from '@kubevirt-ts/runtime/main-testing';
import { describe, expect, it } from 'vitest';

const main = serviceMain(fileURLToPath(new URL('./main.ts', import.meta.url)), {
  ...process.env,
  NODE_NAME: '',
});
const run = (args: string[]) => main.run(args);

describe('virt-launcher main', () => {
  it('prints --help with its flags and exits 0', () => {
    const r = run(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: virt-launcher \[flags\]\n/);
    for (const f of [
      '--name <string>',
      '--namespace <string>',
      '--uid <string>',
      '--grace-period-seconds <seconds>',
      '--use-emulation',
      '--sockets-dir <path>',
      '--private-dir <path>',
      '--libvirt-runtime-dir <path>',
      '--container-disks-dir <path>',
      '--kernel-boot-dir <path>',
      '--qemu-capabilities-seed <path>',
      '--health-port <port>',
    ])
      expect(r.stdout).toContain(f);
  });

  it('rejects an unknown flag with a suggestion and exit code 2', () => {
    const r = run(['--grace-period=x']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "virt-launcher: unknown flag --grace-period; did you mean --grace-period-seconds? Run 'virt-launcher --help' to see every flag.\n",
    );
  });

  it('names a bad value and the expected form', () => {
    const r = run(['--name=a', '--namespace=b', '--uid=c', '--grace-period-seconds=soon']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain(
      'invalid value "soon" for --grace-period-seconds: expected an integer of at least 0',
    );
  });
});
