// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag, a start that serves HTTPS from certificate files and exits 0 on SIGTERM, and
// a clear failure without a Kubernetes configuration.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createCertificateAuthority, issueCertificate } from '@kubevirt-ts/runtime/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const main = fileURLToPath(new URL('./main.ts', import.meta.url));
const nodeArgs = ['--conditions=@kubevirt-ts/source', main];
const env = { ...process.env, KUBECONFIG: '/nonexistent', POD_NAMESPACE: '' };

function run(args: string[]) {
  return spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8', env, timeout: 60_000 });
}

let dir: string;
let caPem: string;
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
  // A kubeconfig whose API server does not answer: the service must still start and report not-ready.
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
    const fatal = r.stdout
      .split('\n')
      .filter((l) => l !== '')
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .find((l) => l.level === 'fatal');
    expect(fatal).toMatchObject({
      msg: 'cannot start',
      error: expect.stringContaining('/nonexistent') as unknown,
    });
  });

  it('serves HTTPS from certificate files, reports not-ready without its caches, exits 0 on SIGTERM', async () => {
    const child = spawn(
      process.execPath,
      [
        ...nodeArgs,
        '--health-port=0',
        '--health-bind-address=127.0.0.1',
        '--port=0',
        '--bind-address=127.0.0.1',
        `--kubeconfig=${path.join(dir, 'kubeconfig')}`,
        `--tls-cert-file=${path.join(dir, 'tls.crt')}`,
        `--tls-key-file=${path.join(dir, 'tls.key')}`,
      ],
      { env, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const lines: Record<string, unknown>[] = [];
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const portOf = (msg: string) =>
      new Promise<number>((resolve, reject) => {
        child.on('exit', () => reject(new Error(`exited early: ${JSON.stringify(lines)}`)));
        const check = () => {
          const hit = lines.find((l) => String(l.msg).startsWith(msg) && typeof l.port === 'number');
          if (hit) resolve(hit.port as number);
        };
        createInterface({ input: child.stdout }).on('line', (line) => {
          lines.push(JSON.parse(line) as Record<string, unknown>);
          check();
        });
      });
    try {
      const [healthPort, httpsPort] = await Promise.all([
        portOf('serving /livez'),
        portOf('serving admission webhooks'),
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
      child.kill('SIGTERM');
      expect(await exited).toBe(0);
      expect(lines.at(-1)).toMatchObject({ msg: 'shutdown complete', code: 0 });
    } finally {
      child.kill('SIGKILL');
    }
  });
});
