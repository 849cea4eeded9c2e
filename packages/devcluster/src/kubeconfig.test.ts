import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { renderKubeconfig, writeKubeconfig } from './kubeconfig.ts';

const caPem = '-----BEGIN CERTIFICATE-----\nCA\n-----END CERTIFICATE-----\n';

describe('renderKubeconfig', () => {
  it('embeds client certificates that client-node reads back', () => {
    const kc = new KubeConfig();
    kc.loadFromString(
      renderKubeconfig({
        name: 'devcluster',
        user: 'admin',
        server: 'https://127.0.0.1:36443',
        caPem,
        credentials: { kind: 'client-certificate', certPem: 'CERT', keyPem: 'KEY' },
      }),
    );
    expect(kc.getCurrentCluster()?.server).toBe('https://127.0.0.1:36443');
    expect(Buffer.from(kc.getCurrentCluster()?.caData ?? '', 'base64').toString()).toBe(caPem);
    expect(Buffer.from(kc.getCurrentUser()?.certData ?? '', 'base64').toString()).toBe('CERT');
    expect(Buffer.from(kc.getCurrentUser()?.keyData ?? '', 'base64').toString()).toBe('KEY');
  });

  it('carries a token and a default namespace', () => {
    const kc = new KubeConfig();
    kc.loadFromString(
      renderKubeconfig({
        name: 'devcluster',
        user: 'system:serviceaccount:kubevirt:virt-api',
        server: 'https://172.30.0.1:6443',
        caPem,
        credentials: { kind: 'token', token: 'abc.def' },
        namespace: 'kubevirt',
      }),
    );
    expect(kc.getCurrentUser()?.token).toBe('abc.def');
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe('kubevirt');
  });
});

describe('writeKubeconfig', () => {
  it('writes an owner-only file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'devcluster-kc-'));
    try {
      const path = join(dir, 'nested', 'a.kubeconfig');
      await writeKubeconfig(path, {
        name: 'x',
        user: 'u',
        server: 'https://s',
        caPem,
        credentials: { kind: 'token', token: 't' },
      });
      expect((await stat(path)).mode & 0o777).toBe(0o600);
      expect(await readFile(path, 'utf8')).toContain('server: https://s');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
