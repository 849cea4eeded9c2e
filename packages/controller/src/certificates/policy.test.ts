// The rotation decisions, with real certificates issued at chosen times.
import { X509Certificate } from 'node:crypto';
import {
  createCertificateAuthority,
  issueCertificate,
  type CertificateAuthority,
} from '@kubevirt-ts/runtime/pki';
import { parseCertificates } from '@kubevirt-ts/runtime';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  DEFAULT_POLICIES,
  decideCa,
  decideLeaf,
  leafSpecs,
  mergeBundle,
  nextBundleExpiry,
  policyProblems,
  type LeafSpec,
} from './policy.ts';

const HOUR = 3_600_000;
const T0 = Date.UTC(2030, 0, 1);
const caPolicy = { durationMs: 100 * HOUR, renewBeforeMs: 20 * HOUR };
const leafPolicy = { durationMs: 10 * HOUR, renewBeforeMs: 4 * HOUR };

const specs = leafSpecs({
  namespace: 'kubevirt',
  clusterDomain: 'cluster.local',
  apiServiceName: 'virt-api',
  apiSecretName: 'api-certs',
  handlerServerSecretName: 'handler-server-certs',
  handlerClientSecretName: 'handler-certs',
});
const apiSpec = specs[0] as LeafSpec;

let ca: CertificateAuthority;
let caCert: X509Certificate;
let otherCa: CertificateAuthority;

async function leafFor(
  spec: LeafSpec,
  opts: { now?: number; from?: CertificateAuthority; dnsNames?: string[] } = {},
) {
  const leaf = await issueCertificate(opts.from ?? ca, {
    commonName: spec.commonName,
    usages: spec.usages,
    dnsNames: opts.dnsNames ?? spec.dnsNames,
    validityMs: leafPolicy.durationMs,
    now: opts.now ?? T0,
  });
  return { cert: leaf.certPem, key: leaf.keyPem };
}

beforeAll(async () => {
  ca = await createCertificateAuthority({ commonName: 'ca-1', validityMs: caPolicy.durationMs, now: T0 });
  caCert = new X509Certificate(ca.certPem);
  otherCa = await createCertificateAuthority({
    commonName: 'ca-2',
    validityMs: caPolicy.durationMs,
    now: T0,
  });
});

describe('leafSpecs', () => {
  it("gives virt-api the Service's DNS names and the handler a name usable as servername", () => {
    expect(apiSpec).toMatchObject({
      secretName: 'api-certs',
      commonName: 'virt-api.kubevirt.svc',
      dnsNames: [
        'virt-api',
        'virt-api.kubevirt',
        'virt-api.kubevirt.svc',
        'virt-api.kubevirt.svc.cluster.local',
      ],
    });
    expect(specs.map((s) => [s.secretName, s.usages])).toEqual([
      ['api-certs', ['server', 'client']],
      ['handler-server-certs', ['server', 'client']],
      ['handler-certs', ['client']],
    ]);
  });
});

describe('policyProblems', () => {
  it('accepts the defaults and names the flags of inconsistent durations', () => {
    expect(policyProblems(DEFAULT_POLICIES)).toEqual([]);
    expect(policyProblems({ ca: caPolicy, leaf: { durationMs: HOUR, renewBeforeMs: 2 * HOUR } })).toEqual([
      '--cert-renew-before must be shorter than --cert-duration, or every certificate would be renewed at once',
    ]);
    expect(policyProblems({ ca: { durationMs: 0, renewBeforeMs: 1 }, leaf: leafPolicy })).toContain(
      '--ca-duration must be positive',
    );
  });
});

describe('decideCa', () => {
  const opts = { forced: false, now: T0 + HOUR, policy: caPolicy };

  it('keeps a good CA until renewBefore ahead of expiry, then renews', () => {
    const state = { certPem: ca.certPem, keyPem: ca.keyPem };
    expect(decideCa(state, opts)).toEqual({ action: 'keep', renewAt: ca.notAfter.getTime() - 20 * HOUR });
    expect(decideCa(state, { ...opts, now: ca.notAfter.getTime() - 20 * HOUR })).toEqual({
      action: 'issue',
      reason: 'the CA is due for renewal',
    });
  });

  it('issues when missing, broken, mismatched, not a CA, or forced', async () => {
    expect(decideCa(undefined, opts)).toEqual({ action: 'issue', reason: 'no CA yet' });
    expect(decideCa({ certPem: 'x', keyPem: ca.keyPem }, opts).action).toBe('issue');
    expect(decideCa({ certPem: ca.certPem, keyPem: otherCa.keyPem }, opts)).toEqual({
      action: 'issue',
      reason: 'the CA is unusable: its key does not belong to it',
    });
    const leaf = await leafFor(apiSpec);
    expect(decideCa({ certPem: leaf.cert, keyPem: leaf.key }, opts)).toEqual({
      action: 'issue',
      reason: 'the CA certificate is not a self-signed CA',
    });
    expect(decideCa({ certPem: ca.certPem, keyPem: ca.keyPem }, { ...opts, forced: true })).toEqual({
      action: 'issue',
      reason: 'rotation was forced',
    });
  });
});

describe('decideLeaf', () => {
  const opts = { forced: false, now: T0 + HOUR, policy: leafPolicy };

  it('keeps a good leaf until it is due', async () => {
    const leaf = await leafFor(apiSpec);
    const notAfter = new Date(new X509Certificate(leaf.cert).validTo).getTime();
    expect(decideLeaf(leaf, caCert, apiSpec, opts)).toEqual({ action: 'keep', renewAt: notAfter - 4 * HOUR });
    expect(decideLeaf(leaf, caCert, apiSpec, { ...opts, now: notAfter - 4 * HOUR }).action).toBe('issue');
  });

  it('reissues under a new CA, for changed names, a foreign key, or when forced', async () => {
    const leaf = await leafFor(apiSpec);
    expect(decideLeaf(leaf, new X509Certificate(otherCa.certPem), apiSpec, opts)).toEqual({
      action: 'issue',
      reason: 'the certificate is not signed by the current CA',
    });
    const renamed = await leafFor(apiSpec, { dnsNames: ['virt-api'] });
    expect(decideLeaf(renamed, caCert, apiSpec, opts)).toEqual({
      action: 'issue',
      reason: 'its DNS names differ from the wanted ones',
    });
    const other = await leafFor(apiSpec);
    expect(decideLeaf({ cert: leaf.cert, key: other.key }, caCert, apiSpec, opts).action).toBe('issue');
    expect(decideLeaf(leaf, caCert, specs[1] as LeafSpec, opts)).toMatchObject({
      action: 'issue',
      reason: expect.stringMatching(/^its subject is CN=virt-api/) as unknown,
    });
    expect(decideLeaf(leaf, caCert, apiSpec, { ...opts, forced: true })).toEqual({
      action: 'issue',
      reason: 'rotation was forced',
    });
    expect(decideLeaf(undefined, caCert, apiSpec, opts)).toEqual({
      action: 'issue',
      reason: 'no certificate yet',
    });
  });
});

describe('mergeBundle', () => {
  it('puts the current CA first, keeps unexpired older CAs once, and drops expired ones', async () => {
    const older = await createCertificateAuthority({ commonName: 'old', validityMs: 2 * HOUR, now: T0 });
    const previous = [older.certPem, otherCa.certPem, otherCa.certPem].join('');
    const bundle = mergeBundle(ca.certPem, previous, T0 + HOUR);
    expect(parseCertificates(bundle).map((c) => c.subject)).toEqual(['CN=ca-1', 'CN=old', 'CN=ca-2']);
    expect(nextBundleExpiry(bundle, ca.certPem)).toBe(older.notAfter.getTime());

    const later = mergeBundle(ca.certPem, bundle, T0 + 3 * HOUR);
    expect(parseCertificates(later).map((c) => c.subject)).toEqual(['CN=ca-1', 'CN=ca-2']);
    expect(mergeBundle(ca.certPem, 'garbage', T0)).toBe(mergeBundle(ca.certPem, undefined, T0));
    expect(nextBundleExpiry(mergeBundle(ca.certPem, undefined, T0), ca.certPem)).toBeUndefined();
  });
});
