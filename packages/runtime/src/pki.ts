// Issuing X.509 certificates: a self-signed CA and leaf certificates it signs (server, client or both), with
// @peculiar/x509 on Node's WebCrypto. virt-controller's certificate loop is the production user; tests of every
// service use it to make throw-away certificates. It is a separate entry point (`@kubevirt-ts/runtime/pki`) so
// services that only read certificates do not load the library. ECDSA P-256: Go's and Node's TLS stacks accept
// it, and a key takes a millisecond to generate where RSA takes hundreds.
// @peculiar/x509 resolves its algorithms through tsyringe, which needs the Reflect metadata polyfill loaded first.
import 'reflect-metadata';
import { X509Certificate as NodeX509Certificate, createPrivateKey, webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto);

type CryptoKey = webcrypto.CryptoKey;

const KEY_ALGORITHM: webcrypto.EcKeyGenParams = { name: 'ECDSA', namedCurve: 'P-256' };
const SIGNING_ALGORITHM: webcrypto.EcdsaParams = { name: 'ECDSA', hash: 'SHA-256' };
/** New certificates start this far in the past, so a peer whose clock lags a little still accepts them. */
export const BACKDATE_MS = 5 * 60 * 1000;

export interface IssuedCertificate {
  certPem: string;
  keyPem: string;
  notBefore: Date;
  notAfter: Date;
}

/** A CA that can sign: its PEMs plus the parsed certificate and the imported signing key. */
export interface CertificateAuthority extends IssuedCertificate {
  cert: x509.X509Certificate;
  privateKey: CryptoKey;
}

export type KeyUsage = 'server' | 'client';

export interface LeafRequest {
  commonName: string;
  /** Subject O= values (Kubernetes reads them as groups of a client certificate). */
  organizations?: readonly string[];
  usages: readonly KeyUsage[];
  dnsNames?: readonly string[];
  ipAddresses?: readonly string[];
  /** Lifetime; capped so the certificate never outlives its CA. */
  validityMs: number;
  /** Issue time (tests); default now. */
  now?: number;
}

function serialNumber(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  // DER integers are signed and Go refuses negative serial numbers: keep the top bit clear.
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return Buffer.from(bytes).toString('hex');
}

function subject(commonName: string, organizations: readonly string[] = []): x509.JsonName {
  return [{ CN: [commonName] }, ...organizations.map((o) => ({ O: [o] }))];
}

async function exportKey(key: CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key), 'PRIVATE KEY');
}

/** A fresh self-signed CA valid for `validityMs`. */
export async function createCertificateAuthority(opts: {
  commonName: string;
  validityMs: number;
  now?: number;
}): Promise<CertificateAuthority> {
  const now = opts.now ?? Date.now();
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const notBefore = new Date(now - BACKDATE_MS);
  const notAfter = new Date(now + opts.validityMs);
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    serialNumber: serialNumber(),
    name: subject(opts.commonName),
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    keys,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    ],
  });
  return {
    cert,
    certPem: cert.toString('pem'),
    keyPem: await exportKey(keys.privateKey),
    privateKey: keys.privateKey,
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}

/** A CA read back from its PEMs (a Secret). Throws when the key is not a P-256 PKCS#8 key or not the cert's. */
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
  // Never sign with a key that is not the certificate's: everything issued would fail verification.
  if (!new NodeX509Certificate(certPem).checkPrivateKey(createPrivateKey(keyPem))) {
    throw new Error('the CA private key does not belong to the CA certificate');
  }
  return { cert, certPem, keyPem, privateKey, notBefore: cert.notBefore, notAfter: cert.notAfter };
}

/** A leaf certificate with a fresh key, signed by `ca`. */
export async function issueCertificate(
  ca: CertificateAuthority,
  req: LeafRequest,
): Promise<IssuedCertificate> {
  const now = req.now ?? Date.now();
  const keys = await webcrypto.subtle.generateKey(KEY_ALGORITHM, true, ['sign', 'verify']);
  const notBefore = new Date(Math.max(now - BACKDATE_MS, ca.notBefore.getTime()));
  const notAfter = new Date(Math.min(now + req.validityMs, ca.notAfter.getTime()));
  const altNames: x509.JsonGeneralName[] = [
    ...(req.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
    ...(req.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
  ];
  const usages = req.usages.map((u) =>
    u === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth,
  );
  const extensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(false, undefined, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
    new x509.ExtendedKeyUsageExtension(usages),
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
    await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey),
  ];
  if (altNames.length > 0) extensions.push(new x509.SubjectAlternativeNameExtension(altNames));
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: serialNumber(),
    subject: subject(req.commonName, req.organizations),
    issuer: ca.cert.subject,
    notBefore,
    notAfter,
    signingAlgorithm: SIGNING_ALGORITHM,
    publicKey: keys.publicKey,
    signingKey: ca.privateKey,
    extensions,
  });
  return {
    certPem: cert.toString('pem'),
    keyPem: await exportKey(keys.privateKey),
    notBefore: cert.notBefore,
    notAfter: cert.notAfter,
  };
}
