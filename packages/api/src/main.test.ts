// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag, and a start that serves /livez and exits 0 on SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const nodeArgs = ['--conditions=@kubevirt-ts/source', main];
const env = { ...process.env, KUBECONFIG: '/nonexistent', POD_NAMESPACE: '' };

function run(args: string[]) {
  return spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8', env, timeout: 60_000 });
}

describe('virt-api main', () => {
  it('prints --help with its flags and exits 0', () => {
    const r = run(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: virt-api \[flags\]\n/);
    for (const f of ['--kubeconfig <path>', '--namespace <string>', '--health-port <port>', '--log-level'])
      expect(r.stdout).toContain(f);
  });

  it('rejects an unknown flag with a suggestion and exit code 2', () => {
    const r = run(['--helth-port=x']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "virt-api: unknown flag --helth-port; did you mean --health-port? Run 'virt-api --help' to see every flag.\n",
    );
  });

  it('starts, serves /livez and /readyz, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [...nodeArgs, '--health-port=0', '--health-bind-address=127.0.0.1'],
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
      expect(lines[0]).toMatchObject({ service: 'virt-api', level: 'info' });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.at(-1)).toMatchObject({ msg: 'shutdown complete', code: 0 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
