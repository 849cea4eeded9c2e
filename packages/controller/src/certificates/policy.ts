// The decisions of the certificate loop (DESIGN.md §4b) as pure functions: which certificates virt-api and
// virt-handler need, when a CA or leaf must be (re)issued, and which CAs the trust bundle carries. The loop in
// loop.ts only reads state, calls these, and writes what they decide.
//
// Rotation without an outage relies on ordering and overlap:
// - a new CA joins the bundle next to the old one (which stays until it expires), the bundle reaches the webhook
//   configurations and the APIService first, and only then are leaves reissued under the new CA;
// - a leaf is renewed `renewBefore` ahead of its expiry, while the old one is still valid, so a server that has not
//   reloaded yet keeps serving a certificate its peers accept.
import { createPrivateKey, type X509Certificate } from 'node:crypto';
import { parseCertificates, type CertificateMaterial } from '@kubevirt-ts/runtime';
import type { KeyUsage } from '@kubevirt-ts/runtime/pki';

export interface RotationPolicy {
  /** Lifetime of a newly issued certificate. */
  durationMs: number;
  /** Renew this long before expiry. */
  renewBeforeMs: number;
}

export interface CertificatePolicies {
  ca: RotationPolicy;
  leaf: RotationPolicy;
}

/** KubeVirt's defaults: a CA lives 7 days and is renewed 2 days early; leaves live 1 day, renewed 12 h early. */
export const DEFAULT_POLICIES: CertificatePolicies = {
  ca: { durationMs: 7 * 24 * 3_600_000, renewBeforeMs: 2 * 24 * 3_600_000 },
  leaf: { durationMs: 24 * 3_600_000, renewBeforeMs: 12 * 3_600_000 },
};

/** Problems with a set of policies, as messages naming the flags; empty when usable. */
export function policyProblems(p: CertificatePolicies): string[] {
  const problems: string[] = [];
  for (const [name, policy, flag] of [
    ['CA', p.ca, 'ca'],
    ['certificate', p.leaf, 'cert'],
  ] as const) {
    if (policy.durationMs <= 0) problems.push(`--${flag}-duration must be positive`);
    if (policy.renewBeforeMs <= 0) problems.push(`--${flag}-renew-before must be positive`);
    if (policy.renewBeforeMs >= policy.durationMs) {
      problems.push(
        `--${flag}-renew-before must be shorter than --${flag}-duration, or every ${name} would be renewed at once`,
      );
    }
  }
  if (p.leaf.durationMs > p.ca.durationMs - p.ca.renewBeforeMs) {
    // Leaves are capped at their CA's expiry anyway; a leaf living longer than the CA's safe window would be
    // reissued with a shorter life on every CA rotation, which is legal but surprising.
    problems.push('--cert-duration should not exceed --ca-duration minus --ca-renew-before');
  }
  return problems;
}

/** A leaf certificate the loop keeps: which Secret, and what the certificate must say. */
export interface LeafSpec {
  /** Short name for logs and metrics: `virt-api`, `virt-handler-server`, `virt-handler-client`. */
  id: string;
  secretName: string;
  commonName: string;
  usages: readonly KeyUsage[];
  dnsNames: readonly string[];
}

export interface LeafNames {
  namespace: string;
  clusterDomain: string;
  /** The Service in front of virt-api (webhooks and the APIService call it by its DNS name). */
  apiServiceName: string;
  apiSecretName: string;
  handlerServerSecretName: string;
  handlerClientSecretName: string;
}

/** The name virt-api uses as TLS servername when it calls a handler pod by IP (pods have no stable DNS name). */
export const HANDLER_SERVER_NAME = 'virt-handler';

export function leafSpecs(n: LeafNames): LeafSpec[] {
  const svc = n.apiServiceName;
  return [
    {
      id: 'virt-api',
      secretName: n.apiSecretName,
      commonName: `${svc}.${n.namespace}.svc`,
      // Server for webhooks and the aggregated API; client for calls to the handlers (later issue).
      usages: ['server', 'client'],
      dnsNames: [
        svc,
        `${svc}.${n.namespace}`,
        `${svc}.${n.namespace}.svc`,
        `${svc}.${n.namespace}.svc.${n.clusterDomain}`,
      ],
    },
    {
      id: 'virt-handler-server',
      secretName: n.handlerServerSecretName,
      commonName: 'kubevirt.io:system:node:virt-handler',
      // Handlers also call each other (migration), hence client.
      usages: ['server', 'client'],
      dnsNames: [HANDLER_SERVER_NAME],
    },
    {
      id: 'virt-handler-client',
      secretName: n.handlerClientSecretName,
      commonName: 'kubevirt.io:system:client:virt-handler',
      usages: ['client'],
      dnsNames: [],
    },
  ];
}

export type Decision =
  | { action: 'keep'; /** When this certificate is due for renewal (ms since epoch). */ renewAt: number }
  | { action: 'issue'; reason: string };

/** Renewal time of a certificate: `renewBefore` ahead of its expiry. */
export function renewalTime(notAfter: Date, policy: RotationPolicy): number {
  return notAfter.getTime() - policy.renewBeforeMs;
}

function parseLeaf(pem: string): X509Certificate | undefined {
  try {
    return parseCertificates(pem)[0];
  } catch {
    return undefined;
  }
}

function keyProblem(cert: X509Certificate, keyPem: string): string | undefined {
  try {
    const key = createPrivateKey(keyPem);
    // The signer (runtime/pki) imports CA keys as P-256; any other key must be replaced, not used.
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      return 'its key is not an ECDSA P-256 key';
    }
    return cert.checkPrivateKey(key) ? undefined : 'its key does not belong to it';
  } catch {
    return 'its key does not parse';
  }
}

export interface CaState {
  certPem: string;
  keyPem: string;
}

/** Whether the CA in the CA Secret can stay, or a new one must be made (and why). */
export function decideCa(
  current: CaState | undefined,
  opts: { forced: boolean; now: number; policy: RotationPolicy },
): Decision {
  if (current === undefined) return { action: 'issue', reason: 'no CA yet' };
  const cert = parseLeaf(current.certPem);
  if (cert === undefined) return { action: 'issue', reason: 'the CA certificate does not parse' };
  if (!cert.ca || !cert.checkIssued(cert) || !cert.verify(cert.publicKey)) {
    return { action: 'issue', reason: 'the CA certificate is not a self-signed CA' };
  }
  const problem = keyProblem(cert, current.keyPem);
  if (problem !== undefined) return { action: 'issue', reason: `the CA is unusable: ${problem}` };
  if (opts.forced) return { action: 'issue', reason: 'rotation was forced' };
  const renewAt = renewalTime(new Date(cert.validTo), opts.policy);
  if (opts.now >= renewAt) return { action: 'issue', reason: 'the CA is due for renewal' };
  return { action: 'keep', renewAt };
}

/** Whether a leaf Secret's certificate can stay under `ca`, or must be reissued (and why). */
export function decideLeaf(
  current: Pick<CertificateMaterial, 'cert' | 'key'> | undefined,
  ca: X509Certificate,
  spec: LeafSpec,
  opts: { forced: boolean; now: number; policy: RotationPolicy },
): Decision {
  if (current === undefined) return { action: 'issue', reason: 'no certificate yet' };
  const cert = parseLeaf(current.cert);
  if (cert === undefined) return { action: 'issue', reason: 'the certificate does not parse' };
  const problem = keyProblem(cert, current.key);
  if (problem !== undefined) return { action: 'issue', reason: `the certificate is unusable: ${problem}` };
  if (!cert.checkIssued(ca) || !cert.verify(ca.publicKey)) {
    return { action: 'issue', reason: 'the certificate is not signed by the current CA' };
  }
  if (cert.subject !== `CN=${spec.commonName}`) {
    return { action: 'issue', reason: `its subject is ${cert.subject}, not CN=${spec.commonName}` };
  }
  const names = (cert.subjectAltName ?? '')
    .split(', ')
    .filter((e) => e.startsWith('DNS:'))
    .map((e) => e.slice(4));
  if (names.length !== spec.dnsNames.length || spec.dnsNames.some((n) => !names.includes(n))) {
    return { action: 'issue', reason: 'its DNS names differ from the wanted ones' };
  }
  if (opts.forced) return { action: 'issue', reason: 'rotation was forced' };
  if (opts.now < new Date(cert.validFrom).getTime() - 10 * 60_000) {
    return { action: 'issue', reason: 'it is not valid yet (was the clock turned back?)' };
  }
  const renewAt = renewalTime(new Date(cert.validTo), opts.policy);
  if (opts.now >= renewAt) return { action: 'issue', reason: 'it is due for renewal' };
  return { action: 'keep', renewAt };
}

/**
 * The trust bundle: the current CA first, then earlier CAs from `previous` that have not expired (certificates
 * they signed may still be in use until every server has reloaded). Duplicates and garbage are dropped.
 */
export function mergeBundle(currentCaPem: string, previous: string | undefined, now: number): string {
  const [current] = parseCertificates(currentCaPem);
  if (current === undefined) throw new Error('mergeBundle: the current CA PEM holds no certificate');
  const kept: X509Certificate[] = [current];
  let older: X509Certificate[];
  try {
    older = previous === undefined ? [] : parseCertificates(previous);
  } catch {
    older = [];
  }
  for (const cert of older) {
    if (new Date(cert.validTo).getTime() <= now) continue;
    if (kept.some((k) => k.fingerprint256 === cert.fingerprint256)) continue;
    kept.push(cert);
  }
  return kept.map((c) => c.toString().trim()).join('\n') + '\n';
}

/** When the bundle next changes by itself: the earliest expiry of a CA in it other than the current one. */
export function nextBundleExpiry(bundle: string, currentCaPem: string): number | undefined {
  const [current] = parseCertificates(currentCaPem);
  let next: number | undefined;
  for (const cert of parseCertificates(bundle)) {
    if (cert.fingerprint256 === current?.fingerprint256) continue;
    const at = new Date(cert.validTo).getTime();
    if (next === undefined || at < next) next = at;
  }
  return next;
}
