// handler.v1 over mutual TLS with certificates made for the test: who may call (a certificate from the CA with the
// trusted name), who may not (no certificate, another CA, the CA but another name), the console as a byte stream to
// the pod's serial socket, and a certificate rotation picked up without a restart.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server as NetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as tlsConnect } from 'node:tls';
import { credentials, status } from '@grpc/grpc-js';
import { RpcError, dialHandler, negotiateVersion, type RunningServer } from '@kubevirt-ts/proto';
import { FileCertificateSource, silentLogger } from '@kubevirt-ts/runtime';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
  type KeyUsage,
} from '@kubevirt-ts/runtime/pki';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { vmiIn } from '../test/unit-fixtures.ts';
import { SourceCertificateProvider, startHandlerServer, type HandlerBackend } from './handler-server.ts';
import type { LauncherLink } from './launcher-link.ts';

const DAY = 24 * 3_600_000;
const CLIENT_NAME = 'kubevirt.io:system:client:virt-handler';

interface Pem {
  key: string;
  cert: string;
  ca: string;
}

async function leaf(
  ca: CertificateAuthority,
  commonName: string,
  usages: KeyUsage[],
  dnsNames: string[] = [],
): Promise<Pem> {
  const c = await issueCertificate(ca, { commonName, usages, dnsNames, validityMs: DAY });
  return { key: c.keyPem, cert: c.certPem, ca: ca.certPem };
}

describe('handler.v1 over mutual TLS', () => {
  let dir: string;
  let ca: CertificateAuthority;
  let client: Pem;
  let source: FileCertificateSource;
  let provider: SourceCertificateProvider;
  let server: RunningServer;
  let serial: NetServer;
  const commands: string[] = [];
  const log = silentLogger();

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'kvts-hs-'));
    ca = await createCertificateAuthority({ commonName: 'kubevirt.io', validityMs: 7 * DAY });
    const serverPem = await leaf(
      ca,
      'kubevirt.io:system:node:virt-handler',
      ['server', 'client'],
      ['virt-handler'],
    );
    client = await leaf(ca, CLIENT_NAME, ['client']);
    await writeFile(join(dir, 'tls.crt'), serverPem.cert);
    await writeFile(join(dir, 'tls.key'), serverPem.key);
    await writeFile(join(dir, 'ca.crt'), ca.certPem);

    // The pod's serial socket: an echo that says hello first, like a console with a prompt.
    serial = createServer((s) => {
      s.write('login: ');
      s.pipe(s);
    });
    await new Promise<void>((resolve) => serial.listen(join(dir, 'serial0'), resolve));

    const link = {
      command: (rpc: string) => {
        commands.push(rpc);
        return Promise.resolve({ success: true, message: '' });
      },
      rawGuestInfo: () =>
        Promise.resolve({
          success: true,
          message: '',
          guestInfoJson: Buffer.from('{"os":{"name":"busybox"}}'),
        }),
    } as unknown as LauncherLink;
    const backend: HandlerBackend = {
      find(ref) {
        if (ref.namespace !== 'ns1' || ref.name !== 'vm1') {
          throw new RpcError(
            status.NOT_FOUND,
            `VMI ${ref.namespace}/${ref.name} is not running on node node-a`,
          );
        }
        return { vmi: vmiIn('Running'), link, socketsDir: dir };
      },
    };
    source = new FileCertificateSource({
      certFile: join(dir, 'tls.crt'),
      keyFile: join(dir, 'tls.key'),
      caFile: join(dir, 'ca.crt'),
      log,
      debounceMs: 20,
    });
    provider = new SourceCertificateProvider(source);
    source.start();
    expect(await provider.whenLoaded()).toBe(true);
    server = await startHandlerServer({
      host: '127.0.0.1',
      port: 0,
      provider,
      allowedClientNames: [CLIENT_NAME],
      backend,
      log,
    });
  });

  afterAll(async () => {
    await server?.shutdown(0);
    provider?.close();
    await source?.stop();
    serial?.close();
    await rm(dir, { recursive: true, force: true });
  });

  const dial = (tls: Pem) =>
    dialHandler(
      { host: '127.0.0.1', port: server.port!, tls: { ...tls, serverName: 'virt-handler' } },
      { deadlinesMs: { short: 3_000, normal: 3_000 } },
    );

  it('serves a caller with the trusted client certificate', async () => {
    const c = dial(client);
    try {
      expect(await negotiateVersion(c)).toBe('v1');
      expect(await c.pause({ namespace: 'ns1', name: 'vm1' })).toEqual({ success: true, message: '' });
      expect(await c.unpause({ namespace: 'ns1', name: 'vm1' })).toEqual({ success: true, message: '' });
      expect(commands.slice(-2)).toEqual(['pause', 'unpause']);
      const info = await c.guestOSInfo({ namespace: 'ns1', name: 'vm1' });
      expect(JSON.parse(info.guestOsInfoJson.toString())).toEqual({ os: { name: 'busybox' } });
      await expect(c.pause({ namespace: 'ns1', name: 'other' })).rejects.toMatchObject({
        code: status.NOT_FOUND,
      });
    } finally {
      c.close();
    }
  });

  it('streams the serial console both ways', async () => {
    const c = dial(client);
    try {
      const stream = c.console({ namespace: 'ns1', name: 'vm1' });
      let text = '';
      stream.on('data', (b: Buffer) => (text += b.toString()));
      stream.write('root\n');
      const deadline = Date.now() + 5_000;
      while (!text.includes('login: root\n') && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      expect(text).toBe('login: root\n');
      stream.end();
    } finally {
      c.close();
    }
  });

  it('refuses a caller without a client certificate', async () => {
    // Trusts the server, presents nothing.
    const c = dialHandler(
      { host: '127.0.0.1', port: server.port!, tls: credentials.createSsl(Buffer.from(ca.certPem)) },
      {
        deadlinesMs: { short: 3_000, normal: 3_000 },
        channelOptions: {
          'grpc.ssl_target_name_override': 'virt-handler',
          'grpc.default_authority': 'virt-handler',
        },
      },
    );
    const before = commands.length;
    try {
      await expect(c.pause({ namespace: 'ns1', name: 'vm1' })).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
    } finally {
      c.close();
    }
    expect(commands.length).toBe(before);
  });

  it('refuses a caller whose certificate another CA signed', async () => {
    const stranger = await createCertificateAuthority({ commonName: 'stranger', validityMs: DAY });
    const pem = await leaf(stranger, CLIENT_NAME, ['client']);
    const c = dial({ ...pem, ca: ca.certPem });
    const before = commands.length;
    try {
      await expect(c.pause({ namespace: 'ns1', name: 'vm1' })).rejects.toMatchObject({
        code: status.UNAVAILABLE,
      });
    } finally {
      c.close();
    }
    expect(commands.length).toBe(before);
  });

  it('refuses a caller with a certificate of the CA but another name, before the call runs', async () => {
    const pem = await leaf(ca, 'virt-api.kubevirt.svc', ['client']);
    const c = dial(pem);
    const before = commands.length;
    try {
      const err = (await c.pause({ namespace: 'ns1', name: 'vm1' }).catch((e: unknown) => e)) as RpcError;
      expect(err).toBeInstanceOf(RpcError);
      expect(err.code).toBe(status.PERMISSION_DENIED);
      expect(err.details).toContain('CN=virt-api.kubevirt.svc is not allowed');
      const stream = c.console({ namespace: 'ns1', name: 'vm1' });
      const streamErr = await new Promise<unknown>((resolve) => stream.on('error', resolve));
      expect(streamErr).toMatchObject({ code: status.PERMISSION_DENIED });
    } finally {
      c.close();
    }
    expect(commands.length).toBe(before);
  });

  it('serves a rotated server certificate to new connections without a restart', async () => {
    const peerSerial = (): Promise<string> =>
      new Promise((resolve, reject) => {
        const s = tlsConnect({
          host: '127.0.0.1',
          port: server.port!,
          ca: ca.certPem,
          key: client.key,
          cert: client.cert,
          servername: 'virt-handler',
          ALPNProtocols: ['h2'],
        });
        s.once('secureConnect', () => {
          resolve(s.getPeerCertificate().serialNumber);
          s.destroy();
        });
        s.once('error', reject);
      });
    const before = await peerSerial();
    const rotated = await leaf(
      ca,
      'kubevirt.io:system:node:virt-handler',
      ['server', 'client'],
      ['virt-handler'],
    );
    await writeFile(join(dir, 'tls.key'), rotated.key);
    await writeFile(join(dir, 'tls.crt'), rotated.cert);
    const deadline = Date.now() + 10_000;
    let after = before;
    while (after === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      after = await peerSerial();
    }
    expect(after).not.toBe(before);
    const c = dial(client);
    try {
      expect(await c.pause({ namespace: 'ns1', name: 'vm1' })).toEqual({ success: true, message: '' });
    } finally {
      c.close();
    }
  });
});
