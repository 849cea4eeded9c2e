// The cluster's PKI, made with @peculiar/x509 on Node's WebCrypto: a cluster CA, the API server's serving cert,
// client certs for the admin, controller-manager and scheduler, the front-proxy CA and client cert of the
// aggregation layer, and the service-account signing key pair. ECDSA P-256 throughout: every component of
// Kubernetes accepts it, and generating the whole set takes milliseconds instead of RSA's seconds.
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as x509 from '@peculiar/x509';
import { NETWORK } from './layout.ts';

// Node's WebCrypto is the standard one; tell the library to use it rather than look for a global.
x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
const DAY_MS = 24 * 60 * 60 * 1000;
/** Certificates start a few minutes in the past so a slightly skewed clock does not reject them. */
const BACKDATE_MS = 5 * 60 * 1000;

export interface CertAndKey {
  certPem: string;
  keyPem: string;
}

/** A CA that can issue certificates: its PEMs plus the parsed cert and the imported signing key. */
export interface CertificateAuthority extends CertAndKey {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

export interface ClusterPki {
  ca: CertAndKey;
  apiserver: CertAndKey;
  admin: CertAndKey;
  controllerManager: CertAndKey;
  scheduler: CertAndKey;
  frontProxyCa: CertAndKey;
  frontProxyClient: CertAndKey;
  /** Serving certs of the controller-manager's and scheduler's health ports, so probes can verify them. */
  controllerManagerServing: CertAndKey;
  schedulerServing: CertAndKey;
  serviceAccount: { publicKeyPem: string; privateKeyPem: string };
}

export type CertUsage = 'server' | 'client' | 'server-and-client';

export interface CertRequest {
  commonName: string;
  /** Subject O= values; Kubernetes reads them as the user's groups. */
  organizations?: readonly string[];
  usage: CertUsage;
  dnsNames?: readonly string[];
  ips?: readonly string[];
  validityDays?: number;
}

/** The names the API server answers to, inside the namespace, on the host and as the `kubernetes` Service. */
export function apiserverSubjectAltNames(): { dnsNames: string[]; ips: string[] } {
  const domain = NETWORK.clusterDomain;
  return {
    dnsNames: [
      'kubernetes',
      'kubernetes.default',
      'kubernetes.default.svc',
      `kubernetes.default.svc.${domain}`,
      'localhost',
    ],
    ips: [NETWORK.controlPlaneAddress, '127.0.0.1', NETWORK.kubernetesServiceIp],
  };
}

/** The user names and groups the cluster sees for each client certificate. */
export const CLIENT_IDENTITIES = {
  admin: { commonName: 'kubevirt-ts-admin', organizations: ['system:masters'] },
  controllerManager: { commonName: 'system:kube-controller-manager', organizations: [] },
  scheduler: { commonName: 'system:kube-scheduler', organizations: [] },
  frontProxyClient: { commonName: 'front-proxy-client', organizations: [] },
} as const;

/** The controller-manager and scheduler serve only on the namespace's loopback. */
const LOCAL_SERVING_NAMES = { dnsNames: ['localhost'], ips: ['127.0.0.1'] };

function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  // First byte 0x01..0x7f: positive (DER integers are signed; Go rejects negative serials) and minimally encoded
  // (a leading 0x00 before a byte below 0x80 is not valid DER, and Go's parser refuses it).
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString('hex');
}

function subjectName(commonName: string, organizations: readonly string[] = []): x509.JsonName {
  const name: x509.JsonName = [{ CN: [commonName] }];
  for (const org of organizations) name.push({ O: [org] });
  return name;
}

async function generateKeyPair(): Promise<CryptoKeyPair> {
  return webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
}

async function privateKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('pkcs8', key);
  return x509.PemConverter.encode(der, 'PRIVATE KEY');
}

async function publicKeyPem(key: CryptoKey): Promise<string> {
  const der = await webcrypto.subtle.exportKey('spki', key);
  return x509.PemConverter.encode(der, 'PUBLIC KEY');
}

function validity(days: number): { notBefore: Date; notAfter: Date } {
  const now = Date.now();
  return { notBefore: new Date(now - BACKDATE_MS), notAfter: new Date(now + days * DAY_MS) };
}

/** A new self-signed CA (10 years unless told otherwise). */
export async function createCertificateAuthority(
  commonName: string,
  validityDays = 3650,
): Promise<CertificateAuthority> {
  const keys = await generateKeyPair();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subjectName(commonName),
    ...validity(validityDays),
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, undefined, true),
      new x509.KeyUsagesExtension(
        x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign | x509.KeyUsageFlags.digitalSignature,
        true,
      ),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert,
    certPem: cert.toString('pem'),
    keyPem: await privateKeyPem(keys.privateKey),
    privateKey: keys.privateKey,
  };
}

/** Reads a CA back from its PEMs, e.g. to issue one more certificate from a kept state dir. */
export async function loadCertificateAuthority(
  certPem: string,
  keyPem: string,
): Promise<CertificateAuthority> {
  const cert = new x509.X509Certificate(certPem);
  const privateKey = await webcrypto.subtle.importKey(
    'pkcs8',
    x509.PemConverter.decodeFirst(keyPem),
    KEY_ALGORITHM,
    true,
    ['sign'],
  );
  return { cert, certPem, keyPem, privateKey };
}

/** The cluster CA kept in a state dir's pki/ (written by `up`), to issue a component one more certificate. */
export async function readClusterCa(pkiDir: string): Promise<CertificateAuthority> {
  const { ca } = pkiFiles(pkiDir);
  return loadCertificateAuthority(await readFile(ca.cert, 'utf8'), await readFile(ca.key, 'utf8'));
}

function extendedKeyUsages(usage: CertUsage): string[] {
  switch (usage) {
    case 'server':
      return [x509.ExtendedKeyUsage.serverAuth];
    case 'client':
      return [x509.ExtendedKeyUsage.clientAuth];
    case 'server-and-client':
      return [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth];
  }
}

/** A leaf certificate with a fresh key, signed by `ca`. */
export async function issueCertificate(ca: CertificateAuthority, request: CertRequest): Promise<CertAndKey> {
  const keys = await generateKeyPair();
  const sans: x509.JsonGeneralName[] = [
    ...(request.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(request.ips ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(extendedKeyUsages(request.usage)),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
  ];
  if (sans.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(sans));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subjectName(request.commonName, request.organizations),
    issuer: ca.cert.subject,
    ...validity(request.validityDays ?? 3650),
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions,
  });
  return { certPem: cert.toString('pem'), keyPem: await privateKeyPem(keys.privateKey) };
}

/** Everything the control plane needs, freshly generated. */
export async function generateClusterPki(): Promise<ClusterPki> {
  const ca = await createCertificateAuthority('kubevirt-ts-devcluster-ca');
  const frontProxyCa = await createCertificateAuthority('kubevirt-ts-devcluster-front-proxy-ca');
  const serviceAccountKeys = await generateKeyPair();
  return {
    ca,
    frontProxyCa,
    apiserver: await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      usage: 'server',
      ...apiserverSubjectAltNames(),
    }),
    admin: await issueCertificate(ca, { ...CLIENT_IDENTITIES.admin, usage: 'client' }),
    controllerManager: await issueCertificate(ca, {
      ...CLIENT_IDENTITIES.controllerManager,
      usage: 'client',
    }),
    scheduler: await issueCertificate(ca, { ...CLIENT_IDENTITIES.scheduler, usage: 'client' }),
    frontProxyClient: await issueCertificate(frontProxyCa, {
      ...CLIENT_IDENTITIES.frontProxyClient,
      usage: 'client',
    }),
    controllerManagerServing: await issueCertificate(ca, {
      commonName: 'kube-controller-manager',
      usage: 'server',
      ...LOCAL_SERVING_NAMES,
    }),
    schedulerServing: await issueCertificate(ca, {
      commonName: 'kube-scheduler',
      usage: 'server',
      ...LOCAL_SERVING_NAMES,
    }),
    serviceAccount: {
      publicKeyPem: await publicKeyPem(serviceAccountKeys.publicKey),
      privateKeyPem: await privateKeyPem(serviceAccountKeys.privateKey),
    },
  };
}

/** File names under the state dir's pki/ folder; the component flags point at these. */
export function pkiFiles(dir: string) {
  const pair = (base: string) => ({ cert: join(dir, `${base}.crt`), key: join(dir, `${base}.key`) });
  return {
    ca: pair('ca'),
    apiserver: pair('apiserver'),
    admin: pair('admin'),
    controllerManager: pair('controller-manager'),
    scheduler: pair('scheduler'),
    frontProxyCa: pair('front-proxy-ca'),
    frontProxyClient: pair('front-proxy-client'),
    controllerManagerServing: pair('controller-manager-serving'),
    schedulerServing: pair('scheduler-serving'),
    serviceAccount: { publicKey: join(dir, 'sa.pub'), privateKey: join(dir, 'sa.key') },
  };
}

export type PkiFiles = ReturnType<typeof pkiFiles>;

type PairName = Exclude<keyof ClusterPki, 'serviceAccount'>;
const PAIRS: readonly PairName[] = [
  'ca',
  'apiserver',
  'admin',
  'controllerManager',
  'scheduler',
  'frontProxyCa',
  'frontProxyClient',
  'controllerManagerServing',
  'schedulerServing',
];

async function writeSecretFile(path: string, data: string): Promise<void> {
  // Write then rename, so a crash never leaves half a key behind for the next `up` to trip over.
  const tmp = `${path}.tmp`;
  await writeFile(tmp, data, { mode: 0o600 });
  await rename(tmp, path);
}

export async function writePki(dir: string, pki: ClusterPki): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const files = pkiFiles(dir);
  for (const name of PAIRS) {
    await writeSecretFile(files[name].cert, pki[name].certPem);
    await writeSecretFile(files[name].key, pki[name].keyPem);
  }
  await writeSecretFile(files.serviceAccount.publicKey, pki.serviceAccount.publicKeyPem);
  await writeSecretFile(files.serviceAccount.privateKey, pki.serviceAccount.privateKeyPem);
}

/** The PKI kept in `dir`, or undefined when any file is missing (then `up` makes a new one). */
export async function readPki(dir: string): Promise<ClusterPki | undefined> {
  const files = pkiFiles(dir);
  try {
    const result: Partial<ClusterPki> = {};
    for (const name of PAIRS) {
      result[name] = {
        certPem: await readFile(files[name].cert, 'utf8'),
        keyPem: await readFile(files[name].key, 'utf8'),
      };
    }
    result.serviceAccount = {
      publicKeyPem: await readFile(files.serviceAccount.publicKey, 'utf8'),
      privateKeyPem: await readFile(files.serviceAccount.privateKey, 'utf8'),
    };
    return result as ClusterPki;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Reuses the PKI in `dir` when it is complete, else generates and writes a new one. */
export async function ensurePki(dir: string): Promise<{ pki: ClusterPki; created: boolean }> {
  const existing = await readPki(dir);
  if (existing) return { pki: existing, created: false };
  const pki = await generateClusterPki();
  await writePki(dir, pki);
  return { pki, created: true };
}
