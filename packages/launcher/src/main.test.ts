// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag, and a start that serves /livez and exits 0 on SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const nodeArgs = ['--conditions=@kubevirt-ts/source', main];
const env = { ...process.env, NODE_NAME: '' };

function run(args: string[]) {
  return spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8', env, timeout: 60_000 });
}

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

  it('starts, serves /livez and /readyz, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        ...nodeArgs,
        '--name=vm1',
        '--namespace=default',
        '--uid=u-1',
        '--use-emulation',
        '--health-port=0',
        '--health-bind-address=127.0.0.1',
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: Record<string, unknown>[] = [];
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const port = await new Promise<number>((resolve, reject) => {
        child.on('exit', () => reject(new Error(`exited early: ${JSON.stringify(lines)}`)));
        createInterface({ input: child.stdout }).on('line', (line) => {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (typeof entry.port === 'number') resolve(entry.port);
        });
      });
      expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      await expect.poll(() => lines.some((l) => String(l.msg).includes('not implemented yet'))).toBe(true);
      expect(lines[0]).toMatchObject({ service: 'virt-launcher', level: 'info' });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.at(-1)).toMatchObject({ msg: 'shutdown complete', code: 0 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
