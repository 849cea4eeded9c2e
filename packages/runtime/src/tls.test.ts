// Certificate reading and reloading, with certificates issued by ./pki.ts and checked through node:crypto and a
// real TLS handshake.
import fs from 'node:fs';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import type { TLSSocket } from 'node:tls';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from './logger.ts';
import { createCertificateAuthority, issueCertificate, type CertificateAuthority } from './pki.ts';
import {
  CertificateError,
  FileCertificateSource,
  checkCertificateMaterial,
  materialFromSecret,
  parseCertificates,
  type CertificateMaterial,
} from './tls.ts';

const HOUR = 3_600_000;
let ca: CertificateAuthority;
let otherCa: CertificateAuthority;

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'test-ca', validityMs: 24 * HOUR });
  otherCa = await createCertificateAuthority({ commonName: 'other-ca', validityMs: 24 * HOUR });
});

async function serving(dnsNames = ['localhost'], validityMs = HOUR, from = ca) {
  return issueCertificate(from, {
    commonName: 'virt-api',
    usages: ['server'],
    dnsNames,
    ipAddresses: ['127.0.0.1'],
    validityMs,
  });
}

describe('pki', () => {
  it('issues a leaf that chains to its CA with the requested names and usages', async () => {
    const leaf = await serving(['virt-api.kubevirt.svc']);
    const info = checkCertificateMaterial({ cert: leaf.certPem, key: leaf.keyPem, origin: 'test' });
    expect(info.dnsNames).toEqual(['virt-api.kubevirt.svc']);
    expect(info.ipAddresses).toEqual(['127.0.0.1']);
    expect(info.subject).toBe('CN=virt-api');
    const [cert] = parseCertificates(leaf.certPem);
    const [caCert] = parseCertificates(ca.certPem);
    expect(cert?.checkIssued(caCert!)).toBe(true);
    expect(cert?.verify(caCert!.publicKey)).toBe(true);
    expect(cert?.verify(parseCertificates(otherCa.certPem)[0]!.publicKey)).toBe(false);
    expect(cert?.keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('never lets a leaf outlive its CA', async () => {
    const leaf = await serving(['x'], 1000 * HOUR);
    expect(leaf.notAfter.getTime()).toBeLessThanOrEqual(ca.notAfter.getTime());
  });
});

describe('checkCertificateMaterial', () => {
  it('rejects a key that belongs to another certificate, naming the origin', async () => {
    const a = await serving();
    const b = await serving();
    expect(() => checkCertificateMaterial({ cert: a.certPem, key: b.keyPem, origin: 'secret ns/x' })).toThrow(
      'secret ns/x: the private key does not belong to the certificate',
    );
  });

  it('rejects an expired certificate and garbage', async () => {
    const a = await serving();
    const m: CertificateMaterial = { cert: a.certPem, key: a.keyPem, origin: 'o' };
    expect(() => checkCertificateMaterial(m, a.notAfter.getTime() + 1000)).toThrow(/expired at/);
    expect(() => checkCertificateMaterial({ ...m, cert: 'nonsense' })).toThrow(CertificateError);
    expect(() => checkCertificateMaterial({ ...m, key: 'nonsense' })).toThrow(/private key does not parse/);
  });
});

describe('materialFromSecret', () => {
  it('decodes tls.crt, tls.key and ca.crt, and names a missing key', () => {
    const b64 = (s: string) => Buffer.from(s).toString('base64');
    const m = materialFromSecret({
      metadata: { name: 'certs', namespace: 'kv' },
      data: { 'tls.crt': b64('C'), 'tls.key': b64('K'), 'ca.crt': b64('A') },
    });
    expect(m).toEqual({ cert: 'C', key: 'K', ca: 'A', origin: 'secret kv/certs' });
    expect(() => materialFromSecret({ metadata: { name: 'certs', namespace: 'kv' }, data: {} })).toThrow(
      'secret kv/certs lacks tls.crt',
    );
  });
});

describe('FileCertificateSource', () => {
  let dir: string;
  let source: FileCertificateSource | undefined;
  afterEach(async () => {
    await source?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the files, reloads on change, keeps the old pair when the new one is broken', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tls-test-'));
    const certFile = path.join(dir, 'tls.crt');
    const keyFile = path.join(dir, 'tls.key');
    const first = await serving();
    fs.writeFileSync(certFile, first.certPem);
    fs.writeFileSync(keyFile, first.keyPem);
    source = new FileCertificateSource({ certFile, keyFile, log: silentLogger(), debounceMs: 20 });
    const seen: string[] = [];
    source.onChange((m) => seen.push(m.cert));
    source.start();
    expect(seen).toEqual([first.certPem]);

    // A real server that swaps its context on change: the second handshake must present the new certificate.
    const server = https.createServer({ cert: first.certPem, key: first.keyPem }, (_req, res) =>
      res.end('ok'),
    );
    source.onChange((m) => server.setSecureContext({ cert: m.cert, key: m.key }));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const peerSerial = () =>
      new Promise<string>((resolve, reject) => {
        const req = https.get({ host: '127.0.0.1', port, ca: ca.certPem, agent: false }, (res) => {
          const serial = (res.socket as TLSSocket).getPeerCertificate().serialNumber;
          res.resume();
          res.on('end', () => resolve(serial));
        });
        req.on('error', reject);
      });
    try {
      expect(await peerSerial()).toBe(parseCertificates(first.certPem)[0]?.serialNumber);

      const second = await serving();
      fs.writeFileSync(keyFile, second.keyPem);
      fs.writeFileSync(certFile, second.certPem);
      await expect.poll(() => seen.length, { timeout: 10_000 }).toBe(2);
      expect(seen[1]).toBe(second.certPem);
      expect(await peerSerial()).toBe(parseCertificates(second.certPem)[0]?.serialNumber);

      fs.writeFileSync(keyFile, 'broken');
      await expect.poll(() => source?.lastError(), { timeout: 10_000 }).toMatch(/private key does not parse/);
      expect(source.current()?.cert).toBe(second.certPem);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
