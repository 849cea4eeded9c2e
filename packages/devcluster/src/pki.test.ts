import { createPublicKey, createPrivateKey, sign, verify, X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  apiserverSubjectAltNames,
  createCertificateAuthority,
  ensurePki,
  generateClusterPki,
  issueCertificate,
  loadCertificateAuthority,
  pkiFiles,
  readPki,
  type ClusterPki,
} from './pki.ts';

// Checked with Node's own X509 implementation (OpenSSL), independent of the library that made the certificates.
const cert = (pem: string) => new X509Certificate(pem);

function assertSignedBy(leafPem: string, caPem: string): void {
  const leaf = cert(leafPem);
  const ca = cert(caPem);
  expect(leaf.checkIssued(ca)).toBe(true);
  expect(leaf.verify(ca.publicKey)).toBe(true);
}

function assertKeyMatches(certPem: string, keyPem: string): void {
  const data = Buffer.from('devcluster');
  const signature = sign('sha256', data, createPrivateKey(keyPem));
  expect(verify('sha256', data, cert(certPem).publicKey, signature)).toBe(true);
}

describe('generateClusterPki', () => {
  let pki: ClusterPki;
  beforeAll(async () => {
    pki = await generateClusterPki();
  });

  it('makes self-signed CAs', () => {
    for (const ca of [pki.ca, pki.frontProxyCa]) {
      const c = cert(ca.certPem);
      expect(c.ca).toBe(true);
      expect(c.verify(c.publicKey)).toBe(true);
      assertKeyMatches(ca.certPem, ca.keyPem);
    }
    expect(cert(pki.ca.certPem).subject).not.toBe(cert(pki.frontProxyCa.certPem).subject);
  });

  it('chains every cluster certificate to the cluster CA, each with its own key', () => {
    for (const name of [
      'apiserver',
      'admin',
      'controllerManager',
      'scheduler',
      'controllerManagerServing',
      'schedulerServing',
    ] as const) {
      assertSignedBy(pki[name].certPem, pki.ca.certPem);
      assertKeyMatches(pki[name].certPem, pki[name].keyPem);
      expect(cert(pki[name].certPem).ca).toBe(false);
    }
    expect(cert(pki.frontProxyClient.certPem).checkIssued(cert(pki.ca.certPem))).toBe(false);
  });

  it('chains the front-proxy client to the front-proxy CA', () => {
    assertSignedBy(pki.frontProxyClient.certPem, pki.frontProxyCa.certPem);
    expect(cert(pki.frontProxyClient.certPem).subject).toBe('CN=front-proxy-client');
  });

  it('gives the API server every name it is reached by', () => {
    const san = cert(pki.apiserver.certPem).subjectAltName ?? '';
    for (const ip of ['172.30.0.1', '127.0.0.1', '10.96.0.1']) expect(san).toContain(`IP Address:${ip}`);
    for (const dns of [
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      'kubernetes.default.svc.cluster.local',
    ]) {
      expect(san).toContain(`DNS:${dns}`);
    }
    expect(cert(pki.apiserver.certPem).checkIP('172.30.0.1')).toBe('172.30.0.1');
    expect(cert(pki.apiserver.certPem).checkHost('kubernetes.default.svc')).toBe('kubernetes.default.svc');
    expect(cert(pki.apiserver.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1']);
  });

  it('names the users Kubernetes authorizes', () => {
    expect(cert(pki.admin.certPem).subject.split('\n')).toEqual(['CN=kubevirt-ts-admin', 'O=system:masters']);
    expect(cert(pki.controllerManager.certPem).subject).toBe('CN=system:kube-controller-manager');
    expect(cert(pki.scheduler.certPem).subject).toBe('CN=system:kube-scheduler');
    expect(cert(pki.admin.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.2']);
  });

  it('makes a service-account key pair that signs and verifies', () => {
    const data = Buffer.from('token');
    const signature = sign('sha256', data, createPrivateKey(pki.serviceAccount.privateKeyPem));
    expect(verify('sha256', data, createPublicKey(pki.serviceAccount.publicKeyPem), signature)).toBe(true);
  });

  it('uses positive, distinct serial numbers', () => {
    const serials = [pki.ca, pki.apiserver, pki.admin, pki.scheduler].map(
      (p) => cert(p.certPem).serialNumber,
    );
    expect(new Set(serials).size).toBe(serials.length);
    for (const serial of serials) {
      // 16 bytes, first in 0x01..0x7f: positive and minimally DER-encoded, as Go requires.
      expect(serial).toMatch(/^[0-9A-F]{32}$/i);
      const first = Number.parseInt(serial.slice(0, 2), 16);
      expect(first).toBeGreaterThan(0);
      expect(first).toBeLessThan(0x80);
    }
  });
});

describe('issueCertificate', () => {
  it('issues from a CA loaded back from its PEMs', async () => {
    const original = await createCertificateAuthority('test-ca');
    const loaded = await loadCertificateAuthority(original.certPem, original.keyPem);
    const leaf = await issueCertificate(loaded, {
      commonName: 'webhook.ns.svc',
      usage: 'server-and-client',
      dnsNames: ['webhook.ns.svc'],
      ips: ['172.30.0.1'],
    });
    assertSignedBy(leaf.certPem, original.certPem);
    expect(cert(leaf.certPem).keyUsage).toEqual(['1.3.6.1.5.5.7.3.1', '1.3.6.1.5.5.7.3.2']);
    expect(cert(leaf.certPem).checkHost('webhook.ns.svc')).toBe('webhook.ns.svc');
  });

  it('does not chain to a different CA', async () => {
    const a = await createCertificateAuthority('a');
    const b = await createCertificateAuthority('b');
    const leaf = await issueCertificate(a, { commonName: 'x', usage: 'client' });
    expect(cert(leaf.certPem).verify(cert(b.certPem).publicKey)).toBe(false);
  });
});

describe('apiserverSubjectAltNames', () => {
  it('includes the namespace address, loopback and the kubernetes Service IP', () => {
    expect(apiserverSubjectAltNames().ips).toEqual(['172.30.0.1', '127.0.0.1', '10.96.0.1']);
  });
});

describe('ensurePki', () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'devcluster-pki-'));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('writes owner-only files once and reuses them', async () => {
    const first = await ensurePki(dir);
    expect(first.created).toBe(true);
    expect((await stat(pkiFiles(dir).ca.key)).mode & 0o777).toBe(0o600);
    const second = await ensurePki(dir);
    expect(second.created).toBe(false);
    expect(second.pki.ca.certPem).toBe(first.pki.ca.certPem);
    expect(second.pki.serviceAccount.privateKeyPem).toBe(first.pki.serviceAccount.privateKeyPem);
  });

  it('reports an incomplete PKI as missing', async () => {
    await rm(pkiFiles(dir).schedulerServing.key);
    expect(await readPki(dir)).toBeUndefined();
  });
});
