// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag, a start that serves HTTPS from certificate files and exits 0 on SIGTERM, and
// a clear failure without a Kubernetes configuration.
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { fatalLine, serviceMain, unreachableKubeconfig } from '@kubevirt-ts/runtime/main-testing';
import { createCertificateAuthority, issueCertificate } from '@kubevirt-ts/runtime/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const virtApi = serviceMain(fileURLToPath(new URL('./main.ts', import.meta.url)), {
  ...process.env,
  KUBECONFIG: '/nonexistent',
  POD_NAMESPACE: '',
});
const run = (args: string[]) => virtApi.run(args);

let dir: string;
let caPem: string;
let kubeconfig: string;
beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virt-api-main-'));
  const ca = await createCertificateAuthority({ commonName: 'ca', validityMs: 3_600_000 });
  caPem = ca.certPem;
  const leaf = await issueCertificate(ca, {
    commonName: 'virt-api',
    usages: ['server'],
    dnsNames: ['localhost'],
    validityMs: 3_600_000,
  });
  fs.writeFileSync(path.join(dir, 'tls.crt'), leaf.certPem);
  fs.writeFileSync(path.join(dir, 'tls.key'), leaf.keyPem);
  // An API server that does not answer: the service must still start and report not-ready.
  kubeconfig = unreachableKubeconfig(dir);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('virt-api main', () => {
  it('prints --help with its flags and exits 0', () => {
    const r = run(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: virt-api \[flags\]\n/);
    for (const f of [
      '--kubeconfig <path>',
      '--namespace <string>',
      '--health-port <port>',
      '--log-level',
      '--port <port>',
      '--tls-secret <string>',
      '--tls-cert-file <path>',
      '--privileged-service-accounts <names>',
    ])
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

  it('exits 1 naming the problem when there is no Kubernetes configuration', () => {
    const r = run(['--health-port=0', '--health-bind-address=127.0.0.1']);
    expect(r.status).toBe(1);
    expect(fatalLine(r.stdout)).toMatchObject({
      msg: 'cannot start',
      error: expect.stringContaining('/nonexistent') as unknown,
    });
  });

  it('serves HTTPS from certificate files, reports not-ready without its caches, exits 0 on SIGTERM', async () => {
    const service = virtApi.start([
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
      '--port=0',
      '--bind-address=127.0.0.1',
      `--kubeconfig=${kubeconfig}`,
      `--tls-cert-file=${path.join(dir, 'tls.crt')}`,
      `--tls-key-file=${path.join(dir, 'tls.key')}`,
    ]);
    try {
      const [healthPort, httpsPort] = await Promise.all([
        service.port('serving /livez'),
        service.port('serving admission webhooks'),
      ]);
      expect((await fetch(`http://127.0.0.1:${healthPort}/livez`)).status).toBe(200);
      const readyz = await fetch(`http://127.0.0.1:${healthPort}/readyz`);
      expect(readyz.status).toBe(503);
      expect(await readyz.text()).toMatch(/\[-\]virt-api failed: caches not synced yet/);
      const discovery = await new Promise<number>((resolve, reject) =>
        https
          .get(
            { host: '127.0.0.1', port: httpsPort, path: '/apis', ca: caPem, servername: 'localhost' },
            (res) => {
              res.resume();
              resolve(res.statusCode ?? 0);
            },
          )
          .on('error', reject),
      );
      expect(discovery).toBe(200);
      service.kill('SIGTERM');
      expect(await service.exited).toBe(0);
      expect(service.lines.at(-1)).toMatchObject({ msg: 'shutdown complete', code: 0 });
    } finally {
      service.kill();
    }
  });
});
