// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag or inconsistent durations, a clear failure without a Kubernetes configuration,
// and a start that campaigns for leadership, serves /livez and /readyz and exits 0 on SIGTERM.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fatalLine, serviceMain, unreachableKubeconfig } from '@kubevirt-ts/runtime/main-testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const controller = serviceMain(fileURLToPath(new URL('./main.ts', import.meta.url)), {
  ...process.env,
  KUBECONFIG: '/nonexistent',
  POD_NAMESPACE: '',
});
const run = (args: string[]) => controller.run(args);

let dir: string;
let kubeconfig: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virt-controller-main-'));
  // An API server that does not answer: the controller must still start and keep campaigning.
  kubeconfig = unreachableKubeconfig(dir);
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
      `--kubeconfig=${kubeconfig}`,
      '--cert-duration=1h',
      '--cert-renew-before=2h',
    ]);
    expect(durations.status).toBe(1);
    expect(fatalLine(durations.stdout)?.error).toContain(
      '--cert-renew-before must be shorter than --cert-duration',
    );
  });

  it('starts, campaigns, serves /livez and /readyz, and exits 0 on SIGTERM', async () => {
    const service = controller.start([
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
      `--kubeconfig=${kubeconfig}`,
      '--pod-name=test-replica',
    ]);
    try {
      const port = await service.port();
      expect((await fetch(`http://127.0.0.1:${port}/livez`)).status).toBe(200);
      expect((await fetch(`http://127.0.0.1:${port}/readyz`)).status).toBe(200);
      expect(await service.line((l) => l.msg === 'campaigning for leadership')).toMatchObject({
        identity: 'test-replica',
        lease: 'kubevirt/virt-controller',
      });
      expect(service.lines[0]).toMatchObject({ service: 'virt-controller', level: 'info' });
      service.kill('SIGTERM');
      expect(await service.exited).toBe(0);
      expect(service.lines.at(-1)).toMatchObject({ msg: 'shutdown complete', code: 0 });
    } finally {
      service.kill();
    }
  });
});
