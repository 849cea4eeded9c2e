// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag or inconsistent durations, a clear failure without a Kubernetes configuration,
// and a start that campaigns for leadership, serves /livez and /readyz and exits 0 on SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const nodeArgs = ['--conditions=@kubevirt-ts/source', main];
const env = { ...process.env, KUBECONFIG: '/nonexistent', POD_NAMESPACE: '' };

function run(args: string[]) {
  return spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8', env, timeout: 60_000 });
}

function fatalLine(stdout: string): Record<string, unknown> | undefined {
  return stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .find((l) => l.level === 'fatal');
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virt-controller-main-'));
  // A kubeconfig whose API server does not answer: the controller must still start and keep campaigning.
  fs.writeFileSync(
    path.join(dir, 'kubeconfig'),
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n'),
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('virt-controller main', () => {
  it('prints --help with its flags and exits 0', () => {
    const r = run(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: virt-controller \[flags\]\n/);
    for (const f of [
      '--kubeconfig <path>',
      '--namespace <string>',
      '--health-port <port>',
      '--log-level',
      '--shutdown-timeout',
      '--ca-secret <string>',
      '--cert-renew-before <duration>',
      '--mutating-webhook-configurations <names>',
    ])
      expect(r.stdout).toContain(f);
  });

  it('rejects an unknown flag with a suggestion and exit code 2', () => {
    const r = run(['--kubeconfg=x']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "virt-controller: unknown flag --kubeconfg; did you mean --kubeconfig? Run 'virt-controller --help' to see every flag.\n",
    );
  });

  it('exits 1 naming the problem without a Kubernetes configuration or with inconsistent durations', () => {
    const noConfig = run(['--health-port=0', '--health-bind-address=127.0.0.1']);
    expect(noConfig.status).toBe(1);
    expect(fatalLine(noConfig.stdout)).toMatchObject({
      msg: 'cannot start',
      error: expect.stringContaining('/nonexistent') as unknown,
    });
    const durations = run([
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
      `--kubeconfig=${path.join(dir, 'kubeconfig')}`,
      '--cert-duration=1h',
      '--cert-renew-before=2h',
    ]);
    expect(durations.status).toBe(1);
    expect(fatalLine(durations.stdout)?.error).toContain(
      '--cert-renew-before must be shorter than --cert-duration',
    );
  });

  it('starts, campaigns, serves /livez and /readyz, and exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        ...nodeArgs,
        '--health-port=0',
        '--health-bind-address=127.0.0.1',
        `--kubeconfig=${path.join(dir, 'kubeconfig')}`,
        '--pod-name=test-replica',
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
      await expect.poll(() => lines.some((l) => l.msg === 'campaigning for leadership')).toBe(true);
      expect(lines.find((l) => l.msg === 'campaigning for leadership')).toMatchObject({
        identity: 'test-replica',
        lease: 'kubevirt/virt-controller',
      });
      expect(lines[0]).toMatchObject({ service: 'virt-controller', level: 'info' });
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.at(-1)).toMatchObject({ msg: 'shutdown complete', code: 0 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
