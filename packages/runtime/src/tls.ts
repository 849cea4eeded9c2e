// Certificate material for the services' TLS endpoints (DESIGN.md §4b): the Secret layout virt-controller's
// certificate loop writes, checks of a certificate/key pair with node:crypto, and sources that keep the current
// material from a Secret (watched) or from files (fs.watch), so a server swaps certificates with
// `setSecureContext` and never restarts. Writing certificates is the controller's business, not this module's.
import { X509Certificate, createPrivateKey } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { CoreV1Api, type KubeConfig, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createInformer, type Informer } from './informer.ts';
import { resourcePath } from './kube.ts';
import { errorMessage } from './logger.ts';

/** Keys of a certificate Secret: the `kubernetes.io/tls` pair plus the CA bundle that verifies peers. */
export const TLS_CERT_KEY = 'tls.crt';
export const TLS_PRIVATE_KEY_KEY = 'tls.key';
export const CA_BUNDLE_KEY = 'ca.crt';

export interface CertificateMaterial {
  /** PEM of the leaf certificate (optionally followed by intermediates). */
  cert: string;
  /** PEM of its private key. */
  key: string;
  /** PEM bundle of the CAs that peers' certificates must chain to, when the source has one. */
  ca?: string;
  /** Where it came from, for logs: `secret kubevirt/kubevirt-virt-api-certs` or a file path. */
  origin: string;
}

export interface CertificateInfo {
  subject: string;
  issuer: string;
  serialNumber: string;
  notBefore: Date;
  notAfter: Date;
  dnsNames: string[];
  ipAddresses: string[];
  fingerprint256: string;
}

/** A certificate or key that cannot be used; the message names the origin and what is wrong. */
export class CertificateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CertificateError';
  }
}

const PEM_CERT = /-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g;

/** Every certificate in a PEM bundle, in order. Throws CertificateError when one does not parse. */
export function parseCertificates(pem: string): X509Certificate[] {
  const blocks = pem.match(PEM_CERT) ?? [];
  return blocks.map((block, i) => {
    try {
      return new X509Certificate(block);
    } catch (err) {
      throw new CertificateError(
        `certificate #${i + 1} of the PEM bundle does not parse: ${errorMessage(err)}`,
      );
    }
  });
}

function splitAltNames(cert: X509Certificate): { dnsNames: string[]; ipAddresses: string[] } {
  const dnsNames: string[] = [];
  const ipAddresses: string[] = [];
  // Node renders the extension as `DNS:a, DNS:b, IP Address:1.2.3.4`.
  for (const entry of (cert.subjectAltName ?? '').split(', ')) {
    if (entry.startsWith('DNS:')) dnsNames.push(entry.slice(4));
    else if (entry.startsWith('IP Address:')) ipAddresses.push(entry.slice(11));
  }
  return { dnsNames, ipAddresses };
}

export function certificateInfo(cert: X509Certificate): CertificateInfo {
  return {
    subject: cert.subject.replaceAll('\n', ', '),
    issuer: cert.issuer.replaceAll('\n', ', '),
    serialNumber: cert.serialNumber,
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    ...splitAltNames(cert),
    fingerprint256: cert.fingerprint256,
  };
}

/**
 * Checks that material can serve TLS right now: the certificate parses, the key parses and belongs to it, and
 * `now` lies within its validity. Returns the leaf's details; throws CertificateError naming the origin.
 */
export function checkCertificateMaterial(material: CertificateMaterial, now = Date.now()): CertificateInfo {
  const where = material.origin;
  const [leaf] = parseCertificatesAt(material.cert, where);
  if (leaf === undefined) throw new CertificateError(`${where}: no PEM certificate in ${TLS_CERT_KEY}`);
  let key;
  try {
    key = createPrivateKey(material.key);
  } catch (err) {
    throw new CertificateError(`${where}: the private key does not parse: ${errorMessage(err)}`);
  }
  if (!leaf.checkPrivateKey(key)) {
    throw new CertificateError(`${where}: the private key does not belong to the certificate`);
  }
  const info = certificateInfo(leaf);
  if (now < info.notBefore.getTime()) {
    throw new CertificateError(
      `${where}: the certificate is not valid before ${info.notBefore.toISOString()}`,
    );
  }
  if (now > info.notAfter.getTime()) {
    throw new CertificateError(`${where}: the certificate expired at ${info.notAfter.toISOString()}`);
  }
  if (material.ca !== undefined) parseCertificatesAt(material.ca, `${where} (${CA_BUNDLE_KEY})`);
  return info;
}

function parseCertificatesAt(pem: string, where: string): X509Certificate[] {
  try {
    return parseCertificates(pem);
  } catch (err) {
    throw new CertificateError(`${where}: ${errorMessage(err)}`);
  }
}

/** Reads the material out of a certificate Secret (base64 `data`). Throws CertificateError when keys are missing. */
export function materialFromSecret(secret: V1Secret): CertificateMaterial {
  const origin = `secret ${secret.metadata?.namespace ?? ''}/${secret.metadata?.name ?? ''}`;
  const read = (k: string): string | undefined => {
    const v = secret.data?.[k];
    return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
  };
  const cert = read(TLS_CERT_KEY);
  const key = read(TLS_PRIVATE_KEY_KEY);
  if (cert === undefined || key === undefined) {
    throw new CertificateError(
      `${origin} lacks ${cert === undefined ? TLS_CERT_KEY : TLS_PRIVATE_KEY_KEY}; virt-controller's leader writes it`,
    );
  }
  const ca = read(CA_BUNDLE_KEY);
  return ca === undefined ? { cert, key, origin } : { cert, key, ca, origin };
}

export type CertificateListener = (material: CertificateMaterial, info: CertificateInfo) => void;

/** Keeps the current certificate material and tells listeners when valid new material arrives. */
export interface CertificateSource {
  /** Human-readable, for logs and readiness reasons. */
  readonly description: string;
  /** The last valid material, undefined until some has been loaded. */
  current(): CertificateMaterial | undefined;
  /** Why the last load failed, if it did. */
  lastError(): string | undefined;
  /** Registers a listener; it is called at once when material is already loaded. Returns an unsubscribe. */
  onChange(listener: CertificateListener): () => void;
  start(): void;
  stop(): Promise<void>;
}

abstract class BaseSource implements CertificateSource {
  abstract readonly description: string;
  protected readonly log: Logger;
  #current: CertificateMaterial | undefined;
  #info: CertificateInfo | undefined;
  #lastError: string | undefined;
  readonly #listeners = new Set<CertificateListener>();

  constructor(log: Logger) {
    this.log = log;
  }

  current(): CertificateMaterial | undefined {
    return this.#current;
  }

  lastError(): string | undefined {
    return this.#lastError;
  }

  onChange(listener: CertificateListener): () => void {
    this.#listeners.add(listener);
    if (this.#current !== undefined && this.#info !== undefined) listener(this.#current, this.#info);
    return () => this.#listeners.delete(listener);
  }

  abstract start(): void;
  abstract stop(): Promise<void>;

  /** Validates and publishes material; invalid material is logged and the previous one stays in use. */
  protected offer(load: () => CertificateMaterial): void {
    let material: CertificateMaterial;
    let info: CertificateInfo;
    try {
      material = load();
      info = checkCertificateMaterial(material);
    } catch (err) {
      this.#lastError = errorMessage(err);
      this.log.error(
        { source: this.description, error: this.#lastError },
        this.#current === undefined
          ? 'no usable certificate yet'
          : 'ignoring an unusable certificate; still serving the previous one',
      );
      return;
    }
    const previous = this.#current;
    if (
      previous !== undefined &&
      previous.cert === material.cert &&
      previous.key === material.key &&
      previous.ca === material.ca
    ) {
      return;
    }
    this.#current = material;
    this.#info = info;
    this.#lastError = undefined;
    this.log.info(
      {
        source: this.description,
        subject: info.subject,
        serialNumber: info.serialNumber,
        notAfter: info.notAfter.toISOString(),
      },
      previous === undefined ? 'certificate loaded' : 'certificate reloaded',
    );
    for (const l of this.#listeners) {
      try {
        l(material, info);
      } catch (err) {
        this.log.error({ err }, 'certificate listener failed');
      }
    }
  }
}

export interface FileCertificateSourceOptions {
  certFile: string;
  keyFile: string;
  /** Optional CA bundle file. */
  caFile?: string;
  log: Logger;
  /** Pause after a change before reading, so a writer can finish replacing both files. Default 200 ms. */
  debounceMs?: number;
}

/**
 * Certificate files, re-read whenever their directory changes. Watching the directory rather than the files
 * survives the rename-based updates of Kubernetes volume mounts (the `..data` symlink swap) and of editors.
 */
export class FileCertificateSource extends BaseSource {
  readonly description: string;
  readonly #o: FileCertificateSourceOptions;
  readonly #watchers: fs.FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;

  constructor(opts: FileCertificateSourceOptions) {
    super(opts.log.child({ component: 'certificate-files' }));
    this.#o = opts;
    this.description = `files ${opts.certFile} and ${opts.keyFile}`;
  }

  start(): void {
    if (this.#watchers.length > 0) return;
    const files = [this.#o.certFile, this.#o.keyFile, ...(this.#o.caFile ? [this.#o.caFile] : [])];
    for (const dir of new Set(files.map((f) => path.dirname(path.resolve(f))))) {
      const watcher = fs.watch(dir, () => this.#schedule());
      watcher.on('error', (err) => this.log.warn({ dir, err }, 'watching the certificate directory failed'));
      this.#watchers.push(watcher);
    }
    this.#read();
  }

  stop(): Promise<void> {
    clearTimeout(this.#timer);
    for (const w of this.#watchers.splice(0)) w.close();
    return Promise.resolve();
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#read(), this.#o.debounceMs ?? 200);
  }

  #read(): void {
    this.offer(() => {
      const readFile = (file: string, what: string): string => {
        try {
          return fs.readFileSync(file, 'utf8');
        } catch (err) {
          throw new CertificateError(`cannot read the ${what} ${file}: ${errorMessage(err)}`);
        }
      };
      const material: CertificateMaterial = {
        cert: readFile(this.#o.certFile, 'certificate file'),
        key: readFile(this.#o.keyFile, 'key file'),
        origin: `file ${this.#o.certFile}`,
      };
      if (this.#o.caFile) material.ca = readFile(this.#o.caFile, 'CA bundle file');
      return material;
    });
  }
}

export interface SecretCertificateSourceOptions {
  kubeConfig: KubeConfig;
  namespace: string;
  name: string;
  log: Logger;
}

/**
 * One Secret, watched through an informer restricted to its name (a `metadata.name` field selector, which RBAC
 * rules limited by resourceNames allow for list and watch). A deleted Secret leaves the last certificate in use:
 * the controller's leader recreates it.
 */
export class SecretCertificateSource extends BaseSource {
  readonly description: string;
  readonly #informer: Informer<V1Secret>;

  constructor(opts: SecretCertificateSourceOptions) {
    super(opts.log.child({ component: 'certificate-secret' }));
    this.description = `secret ${opts.namespace}/${opts.name}`;
    const core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#informer = createInformer<V1Secret>({
      name: `secret-${opts.name}`,
      kubeConfig: opts.kubeConfig,
      path: resourcePath({ version: 'v1', plural: 'secrets', namespace: opts.namespace }),
      fieldSelector: `metadata.name=${opts.name}`,
      list: (o) => core.listNamespacedSecret({ namespace: opts.namespace, ...o }),
      log: this.log,
      resyncPeriodMs: 0,
    });
    const onSecret = (secret: V1Secret): void => this.offer(() => materialFromSecret(secret));
    this.#informer.addHandlers({
      add: onSecret,
      update: onSecret,
      delete: () =>
        this.log.warn(
          { source: this.description },
          'the certificate Secret was deleted; serving the last certificate until it is recreated',
        ),
    });
  }

  start(): void {
    this.#informer.start();
  }

  stop(): Promise<void> {
    return this.#informer.stop();
  }
}
