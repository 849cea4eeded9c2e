// Runs the real entry point as users do (node with the source condition, no build) and checks what a user sees:
// --help, a rejected unknown flag, flags that do not go together, and a start without a cluster. A start against a
// real API server is test/handler.test.ts's business.
import { fileURLToPath } from 'node:url';
import { serviceMain } from '@kubevirt-ts/runtime/main-testing';
import { describe, expect, it } from 'vitest';

const main = serviceMain(fileURLToPath(new URL('./main.ts', import.meta.url)), {
  ...process.env,
  KUBECONFIG: '/nonexistent',
  NODE_NAME: '',
});
const run = (args: string[]) => main.run(args);

describe('virt-handler main', () => {
  it('prints --help with its flags and exits 0', () => {
    const r = run(['--help']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/^Usage: virt-handler \[flags\]\n/);
    for (const f of [
      '--kubeconfig <path>',
      '--node-name <string>',
      'env NODE_NAME',
      '--pods-dir <path>',
      '--state-dir <path>',
      '--device-plugins-dir <path>',
      '--grpc-port <port>',
      '--allowed-client-names <names>',
      '--unresponsive-timeout <duration>',
      '--health-port <port>',
    ])
      expect(r.stdout).toContain(f);
  });

  it('rejects an unknown flag with a suggestion and exit code 2', () => {
    const r = run(['--nodename=x']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      "virt-handler: unknown flag --nodename; did you mean --node-name? Run 'virt-handler --help' to see every flag.\n",
    );
  });

  it('requires --node-name or NODE_NAME', () => {
    const r = run([]);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('missing required flag --node-name (or environment variable NODE_NAME)');
  });

  it('refuses half a set of TLS file flags with exit code 2', () => {
    const r = run(['--node-name=node-a', '--tls-cert-file=/tmp/x.crt', '--health-port=0']);
    expect(r.status).toBe(2);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines.at(-1)).toMatchObject({
      level: 'fatal',
      msg: '--tls-cert-file, --tls-key-file and --tls-ca-file go together; pass all three or none',
    });
  });

  it('exits 1 naming the problem when there is no usable kubeconfig', () => {
    const r = run(['--node-name=node-a', '--health-port=0', '--health-bind-address=127.0.0.1']);
    expect(r.status).toBe(1);
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ service: 'virt-handler', level: 'info' });
    const fatal = lines.find((l) => l.level === 'fatal') as
      { msg: string; err: { message: string } } | undefined;
    expect(fatal?.msg).toBe('cannot load a Kubernetes client configuration');
    expect(fatal?.err.message).toContain('KUBECONFIG names files that do not exist: /nonexistent');
  });
});
