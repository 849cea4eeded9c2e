// The Handler contract over TCP with mutual TLS, with a throwaway CA made by openssl for the test.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { status } from '@grpc/grpc-js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { dialHandler, negotiateVersion, serveHandler } from './index.ts';
import type { HandlerImplementation, RunningServer, TlsPem } from './index.ts';

const run = promisify(execFile);
const curve = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];

/** A self-signed CA in `dir`/`name`.{key,crt}. */
async function makeCa(dir: string, name: string): Promise<void> {
  await run('openssl', [
    'req', '-x509', '-new', ...curve, '-days', '1', '-subj', `/CN=${name}`,
    '-addext', 'basicConstraints=critical,CA:TRUE',
    '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.crt`),
  ]); // prettier-ignore
}

/** A leaf certificate for `name`, signed by the CA `ca`, returned as PEMs. */
async function issue(dir: string, ca: string, name: string, extensions: string): Promise<TlsPem> {
  const path = (suffix: string): string => join(dir, `${name}.${suffix}`);
  await writeFile(
    path('ext'),
    `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\n${extensions}\n`,
  );
  await run('openssl', [
    'req',
    '-new',
    ...curve,
    '-subj',
    `/CN=${name}`,
    '-keyout',
    path('key'),
    '-out',
    path('csr'),
  ]);
  await run('openssl', [
    'x509', '-req', '-in', path('csr'), '-days', '1', '-set_serial', String(Date.now()),
    '-CA', join(dir, `${ca}.crt`), '-CAkey', join(dir, `${ca}.key`), '-extfile', path('ext'), '-out', path('crt'),
  ]); // prettier-ignore
  return {
    key: await readFile(path('key')),
    cert: await readFile(path('crt')),
    ca: await readFile(join(dir, `${ca}.crt`)),
  };
}

const handler: HandlerImplementation = {
  pause: (vmi) => ({ success: true, message: `paused ${vmi.namespace}/${vmi.name}` }),
  unpause: () => ({ success: true, message: '' }),
  softReboot: () => ({ success: true, message: '' }),
  guestOSInfo: () => ({
    success: true,
    message: '',
    guestOsInfoJson: Buffer.from('{"os":{"name":"busybox"}}'),
  }),
  console: (_vmi, stream) => {
    stream.pipe(stream);
  },
  vnc: (_vmi, stream) => {
    stream.pipe(stream);
  },
};

describe('Handler over TCP with mutual TLS', () => {
  let dir: string;
  let serverTls: TlsPem;
  let clientTls: TlsPem;
  let strangerTls: TlsPem;
  const servers: RunningServer[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvts-tls-'));
    await makeCa(dir, 'ca');
    await makeCa(dir, 'other-ca');
    serverTls = await issue(
      dir,
      'ca',
      'virt-handler',
      'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:virt-handler.kubevirt-ts,IP:127.0.0.1',
    );
    clientTls = await issue(dir, 'ca', 'virt-api', 'extendedKeyUsage=clientAuth');
    // Trusts our CA, but its own certificate comes from somebody else's.
    strangerTls = {
      ...(await issue(dir, 'other-ca', 'stranger', 'extendedKeyUsage=clientAuth')),
      ca: clientTls.ca,
    };
  });

  afterEach(async () => {
    await Promise.all(servers.splice(0).map((server) => server.shutdown(100)));
  });

  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('round-trips calls between a client and a server that both prove who they are', async () => {
    const server = await serveHandler({ host: '127.0.0.1', port: 0, tls: serverTls }, handler);
    servers.push(server);
    expect(server.port).toBeGreaterThan(0);
    expect(server.target).toBe(`127.0.0.1:${server.port}`);
    const port = server.port ?? 0;

    const client = dialHandler({ host: '127.0.0.1', port, tls: clientTls });
    try {
      expect(await negotiateVersion(client)).toBe('v1');
      const info = await client.guestOSInfo({ namespace: 'default', name: 'testvm' });
      expect(JSON.parse(info.guestOsInfoJson.toString())).toEqual({ os: { name: 'busybox' } });
    } finally {
      client.close();
    }

    // Dialing the pod IP while checking the name in the certificate, as virt-api will.
    const byName = dialHandler({
      host: '127.0.0.1',
      port,
      tls: { ...clientTls, serverName: 'virt-handler.kubevirt-ts' },
    });
    try {
      expect(await byName.pause({ namespace: 'default', name: 'testvm' })).toEqual({
        success: true,
        message: 'paused default/testvm',
      });
    } finally {
      byName.close();
    }
  });

  it('refuses a client whose certificate another CA signed', async () => {
    const server = await serveHandler({ host: '127.0.0.1', port: 0, tls: serverTls }, handler);
    servers.push(server);
    const client = dialHandler({ host: '127.0.0.1', port: server.port ?? 0, tls: strangerTls });
    try {
      await expect(
        client.pause({ namespace: 'default', name: 'testvm' }, { timeoutMs: 5_000 }),
      ).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
    } finally {
      client.close();
    }
  });

  it('refuses a server name the certificate does not carry', async () => {
    const server = await serveHandler({ host: '127.0.0.1', port: 0, tls: serverTls }, handler);
    servers.push(server);
    const client = dialHandler({
      host: '127.0.0.1',
      port: server.port ?? 0,
      tls: { ...clientTls, serverName: 'somebody-else.example' },
    });
    try {
      await expect(
        client.pause({ namespace: 'default', name: 'testvm' }, { timeoutMs: 5_000 }),
      ).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
    } finally {
      client.close();
    }
  });
});
