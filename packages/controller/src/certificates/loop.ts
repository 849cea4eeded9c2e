// The certificate loop of virt-controller's leader (DESIGN.md §4b): keeps a CA and the serving/client
// certificates of virt-api and virt-handler in Secrets of the install namespace, injects the CA bundle into the
// webhook configurations and the APIService, and rotates everything before it expires. virt-api and virt-handler
// reload from the Secrets without restarting.
//
// Informers on the objects involved (each watched by name, which is all the chart's RBAC allows) only trigger a
// reconcile; the reconcile reads live objects with GETs, because it must never act on a cached Secret older than
// its own last write (that would rotate twice). There is one key, so one reconcile runs at a time.
import { X509Certificate } from 'node:crypto';
import {
  AdmissionregistrationV1Api,
  ApiregistrationV1Api,
  CoreV1Api,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1APIService,
  type V1MutatingWebhookConfiguration,
  type V1Secret,
  type V1ValidatingWebhookConfiguration,
} from '@kubernetes/client-node';
import {
  CA_BUNDLE_KEY,
  TLS_CERT_KEY,
  TLS_PRIVATE_KEY_KEY,
  counter,
  createInformer,
  describeApiError,
  gauge,
  isNotFound,
  materialFromSecret,
  resourcePath,
  runWorkers,
  waitForCacheSync,
  WorkQueue,
  type Informer,
  type Logger,
  type ReconcileResult,
  type Registry,
} from '@kubevirt-ts/runtime';
import {
  createCertificateAuthority,
  issueCertificate,
  loadCertificateAuthority,
  type CertificateAuthority,
} from '@kubevirt-ts/runtime/pki';
import {
  decideCa,
  decideLeaf,
  leafSpecs,
  mergeBundle,
  nextBundleExpiry,
  type CertificatePolicies,
  type LeafNames,
  type LeafSpec,
} from './policy.ts';

/** Put this annotation (any value) on one of the certificate Secrets to have it reissued now; on the CA Secret it
 * rotates the CA and with it every certificate. The loop removes it. */
export const FORCE_ROTATION_ANNOTATION = 'kubevirt-ts.dev/force-rotation';
export const MANAGED_BY_LABELS = {
  'app.kubernetes.io/managed-by': 'virt-controller',
  'app.kubernetes.io/part-of': 'kubevirt-ts',
};

export interface CertificateLoopOptions extends LeafNames {
  kubeConfig: KubeConfig;
  log: Logger;
  registry?: Registry;
  caSecretName: string;
  /** MutatingWebhookConfigurations (by name) whose webhooks get the CA bundle. */
  mutatingWebhookConfigurations: readonly string[];
  validatingWebhookConfigurations: readonly string[];
  /** APIServices (by name) that get the CA bundle, e.g. `v1.subresources.kubevirt.io`. */
  apiServices: readonly string[];
  policies: CertificatePolicies;
  /** Longest wait between two reconciles even when nothing is due. Default 1 h. */
  maxRequeueMs?: number;
  now?: () => number;
}

const KEY = 'certificates';
const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

interface Metrics {
  expiry(secret: string, notAfter: Date): void;
  issued(secret: string): void;
}

function loopMetrics(registry: Registry | undefined): Metrics | undefined {
  if (registry === undefined) return undefined;
  const expiry = gauge(registry, {
    name: 'kubevirt_certificate_expiry_timestamp_seconds',
    help: 'Expiry (Unix time) of each certificate virt-controller keeps, by Secret',
    labelNames: ['secret'],
  });
  const issued = counter(registry, {
    name: 'kubevirt_certificate_issued_total',
    help: 'Certificates issued by virt-controller (first issue and rotations), by Secret',
    labelNames: ['secret'],
  });
  return {
    expiry: (secret, notAfter) => expiry.set({ secret }, notAfter.getTime() / 1000),
    issued: (secret) => issued.inc({ secret }),
  };
}

export class CertificateLoop {
  readonly #o: CertificateLoopOptions;
  readonly #log: Logger;
  readonly #core: CoreV1Api;
  readonly #admission: AdmissionregistrationV1Api;
  readonly #registration: ApiregistrationV1Api;
  readonly #leaves: LeafSpec[];
  readonly #metrics: Metrics | undefined;
  readonly #now: () => number;

  constructor(opts: CertificateLoopOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'certificates' });
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#admission = opts.kubeConfig.makeApiClient(AdmissionregistrationV1Api);
    this.#registration = opts.kubeConfig.makeApiClient(ApiregistrationV1Api);
    this.#leaves = leafSpecs(opts);
    this.#metrics = loopMetrics(opts.registry);
    this.#now = opts.now ?? Date.now;
  }

  /** Every Secret this loop writes, CA first. */
  get secretNames(): string[] {
    return [this.#o.caSecretName, ...this.#leaves.map((l) => l.secretName)];
  }

  /** Watches, reconciles on every change and when something falls due, until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    const queue = new WorkQueue<string>({
      name: 'certificates',
      ...(this.#o.registry ? { registry: this.#o.registry } : {}),
    });
    const informers = this.#triggers();
    for (const informer of informers) {
      informer.addHandlers({
        add: () => queue.add(KEY),
        update: () => queue.add(KEY),
        delete: () => queue.add(KEY),
      });
      informer.start();
    }
    try {
      if (!(await waitForCacheSync(informers, signal))) return;
      queue.add(KEY);
      await runWorkers(queue, 1, () => this.reconcile(), signal, { log: this.#log });
    } finally {
      await Promise.all(informers.map((i) => i.stop()));
    }
  }

  #triggers(): Informer<KubernetesObject>[] {
    const { kubeConfig, namespace, log } = this.#o;
    const byName = <T extends KubernetesObject>(
      what: string,
      name: string,
      path: string,
      list: (fieldSelector: string) => Promise<KubernetesListObject<T>>,
    ): Informer<KubernetesObject> =>
      createInformer<T>({
        name: `${what}-${name}`,
        kubeConfig,
        path,
        fieldSelector: `metadata.name=${name}`,
        list: (o) => list(o.fieldSelector ?? `metadata.name=${name}`),
        log,
        // The reconcile computes its own next wake-up; periodic resyncs would only add GETs.
        resyncPeriodMs: 0,
      }) as unknown as Informer<KubernetesObject>;
    return [
      ...this.secretNames.map((name) =>
        byName(
          'secret',
          name,
          resourcePath({ version: 'v1', plural: 'secrets', namespace }),
          (fieldSelector) => this.#core.listNamespacedSecret({ namespace, fieldSelector }),
        ),
      ),
      ...this.#o.mutatingWebhookConfigurations.map((name) =>
        byName(
          'mutatingwebhookconfiguration',
          name,
          resourcePath({
            group: 'admissionregistration.k8s.io',
            version: 'v1',
            plural: 'mutatingwebhookconfigurations',
          }),
          (fieldSelector) => this.#admission.listMutatingWebhookConfiguration({ fieldSelector }),
        ),
      ),
      ...this.#o.validatingWebhookConfigurations.map((name) =>
        byName(
          'validatingwebhookconfiguration',
          name,
          resourcePath({
            group: 'admissionregistration.k8s.io',
            version: 'v1',
            plural: 'validatingwebhookconfigurations',
          }),
          (fieldSelector) => this.#admission.listValidatingWebhookConfiguration({ fieldSelector }),
        ),
      ),
      ...this.#o.apiServices.map((name) =>
        byName(
          'apiservice',
          name,
          resourcePath({ group: 'apiregistration.k8s.io', version: 'v1', plural: 'apiservices' }),
          (fieldSelector) => this.#registration.listAPIService({ fieldSelector }),
        ),
      ),
    ];
  }

  /** One pass: CA, then the bundle into the API server's configuration, then the leaves. */
  async reconcile(): Promise<ReconcileResult> {
    const now = this.#now();
    const { ca, bundle, wakeAt: caWake } = await this.#ensureCa(now);
    await this.#injectBundle(bundle);
    const caCert = new X509Certificate(ca.certPem);
    const wakeups = [caWake];
    for (const spec of this.#leaves) wakeups.push(await this.#ensureLeaf(spec, ca, caCert, bundle, now));
    const bundleChange = nextBundleExpiry(bundle, ca.certPem);
    if (bundleChange !== undefined) wakeups.push(bundleChange);
    const next = Math.min(...wakeups);
    const requeueAfter = Math.max(1000, Math.min(next - this.#now(), this.#o.maxRequeueMs ?? 3_600_000));
    this.#log.debug({ requeueAfterMs: requeueAfter }, 'certificates reconciled');
    return { requeueAfter };
  }

  async #readSecret(name: string): Promise<V1Secret | undefined> {
    try {
      return await this.#core.readNamespacedSecret({ name, namespace: this.#o.namespace });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw new Error(`reading secret ${this.#o.namespace}/${name}: ${describeApiError(err)}`, {
        cause: err,
      });
    }
  }

  async #writeSecret(
    existing: V1Secret | undefined,
    name: string,
    data: Record<string, string>,
  ): Promise<void> {
    const namespace = this.#o.namespace;
    const annotations = { ...(existing?.metadata?.annotations ?? {}) };
    delete annotations[FORCE_ROTATION_ANNOTATION];
    const body: V1Secret = {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: {
        ...(existing?.metadata ?? {}),
        name,
        namespace,
        labels: { ...(existing?.metadata?.labels ?? {}), ...MANAGED_BY_LABELS },
        annotations,
      },
      type: 'kubernetes.io/tls',
      data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
    };
    try {
      if (existing === undefined) await this.#core.createNamespacedSecret({ namespace, body });
      // The resourceVersion read above makes this a compare-and-swap: a concurrent writer gets 409 and we retry.
      else await this.#core.replaceNamespacedSecret({ name, namespace, body });
    } catch (err) {
      throw new Error(`writing secret ${namespace}/${name}: ${describeApiError(err)}`, { cause: err });
    }
  }

  async #ensureCa(now: number): Promise<{ ca: CertificateAuthority; bundle: string; wakeAt: number }> {
    const name = this.#o.caSecretName;
    const secret = await this.#readSecret(name);
    const read = (k: string): string | undefined => {
      const v = secret?.data?.[k];
      return v === undefined ? undefined : Buffer.from(v, 'base64').toString('utf8');
    };
    const certPem = read(TLS_CERT_KEY);
    const keyPem = read(TLS_PRIVATE_KEY_KEY);
    const previousBundle = read(CA_BUNDLE_KEY);
    const decision = decideCa(
      certPem !== undefined && keyPem !== undefined ? { certPem, keyPem } : undefined,
      {
        forced: secret?.metadata?.annotations?.[FORCE_ROTATION_ANNOTATION] !== undefined,
        now,
        policy: this.#o.policies.ca,
      },
    );

    if (decision.action === 'keep' && certPem !== undefined && keyPem !== undefined) {
      const ca = await loadCertificateAuthority(certPem, keyPem);
      const bundle = mergeBundle(certPem, previousBundle, now);
      if (bundle !== previousBundle) {
        await this.#writeSecret(secret, name, {
          [TLS_CERT_KEY]: certPem,
          [TLS_PRIVATE_KEY_KEY]: keyPem,
          [CA_BUNDLE_KEY]: bundle,
        });
        this.#log.info({ secret: name }, 'CA bundle updated (expired CAs dropped)');
      }
      this.#metrics?.expiry(name, ca.notAfter);
      return { ca, bundle, wakeAt: decision.renewAt };
    }

    const reason = decision.action === 'issue' ? decision.reason : 'the CA is unusable';
    const ca = await createCertificateAuthority({
      commonName: `kubevirt-ts-ca@${Math.floor(now / 1000)}`,
      validityMs: this.#o.policies.ca.durationMs,
      now,
    });
    // The old CA stays trusted next to the new one until it expires: certificates it signed are still served.
    const bundle = mergeBundle(ca.certPem, [previousBundle, certPem].filter(Boolean).join('\n'), now);
    await this.#writeSecret(secret, name, {
      [TLS_CERT_KEY]: ca.certPem,
      [TLS_PRIVATE_KEY_KEY]: ca.keyPem,
      [CA_BUNDLE_KEY]: bundle,
    });
    this.#metrics?.issued(name);
    this.#metrics?.expiry(name, ca.notAfter);
    this.#log.info({ secret: name, reason, notAfter: ca.notAfter.toISOString() }, 'issued a new CA');
    return { ca, bundle, wakeAt: ca.notAfter.getTime() - this.#o.policies.ca.renewBeforeMs };
  }

  async #ensureLeaf(
    spec: LeafSpec,
    ca: CertificateAuthority,
    caCert: X509Certificate,
    bundle: string,
    now: number,
  ): Promise<number> {
    const secret = await this.#readSecret(spec.secretName);
    let current;
    try {
      current = secret === undefined ? undefined : materialFromSecret(secret);
    } catch {
      current = undefined;
    }
    const decision = decideLeaf(current, caCert, spec, {
      forced: secret?.metadata?.annotations?.[FORCE_ROTATION_ANNOTATION] !== undefined,
      now,
      policy: this.#o.policies.leaf,
    });
    if (decision.action === 'keep' && current !== undefined) {
      if (current.ca !== bundle) {
        await this.#writeSecret(secret, spec.secretName, {
          [TLS_CERT_KEY]: current.cert,
          [TLS_PRIVATE_KEY_KEY]: current.key,
          [CA_BUNDLE_KEY]: bundle,
        });
        this.#log.info({ secret: spec.secretName }, 'CA bundle of the certificate Secret updated');
      }
      this.#metrics?.expiry(spec.secretName, new Date(new X509Certificate(current.cert).validTo));
      return decision.renewAt;
    }
    const leaf = await issueCertificate(ca, {
      commonName: spec.commonName,
      usages: spec.usages,
      dnsNames: spec.dnsNames,
      validityMs: this.#o.policies.leaf.durationMs,
      now,
    });
    await this.#writeSecret(secret, spec.secretName, {
      [TLS_CERT_KEY]: leaf.certPem,
      [TLS_PRIVATE_KEY_KEY]: leaf.keyPem,
      [CA_BUNDLE_KEY]: bundle,
    });
    this.#metrics?.issued(spec.secretName);
    this.#metrics?.expiry(spec.secretName, leaf.notAfter);
    this.#log.info(
      {
        secret: spec.secretName,
        reason: decision.action === 'issue' ? decision.reason : 'unusable',
        notAfter: leaf.notAfter.toISOString(),
      },
      'issued a certificate',
    );
    return leaf.notAfter.getTime() - this.#o.policies.leaf.renewBeforeMs;
  }

  async #injectBundle(bundle: string): Promise<void> {
    const caBundle = b64(bundle);
    for (const name of this.#o.mutatingWebhookConfigurations) {
      await this.#injectWebhooks(
        'MutatingWebhookConfiguration',
        name,
        () => this.#admission.readMutatingWebhookConfiguration({ name }),
        (body: V1MutatingWebhookConfiguration) =>
          this.#admission.replaceMutatingWebhookConfiguration({ name, body }),
        caBundle,
      );
    }
    for (const name of this.#o.validatingWebhookConfigurations) {
      await this.#injectWebhooks(
        'ValidatingWebhookConfiguration',
        name,
        () => this.#admission.readValidatingWebhookConfiguration({ name }),
        (body: V1ValidatingWebhookConfiguration) =>
          this.#admission.replaceValidatingWebhookConfiguration({ name, body }),
        caBundle,
      );
    }
    for (const name of this.#o.apiServices) await this.#injectApiService(name, caBundle);
  }

  async #injectWebhooks<T extends V1MutatingWebhookConfiguration | V1ValidatingWebhookConfiguration>(
    kind: string,
    name: string,
    read: () => Promise<T>,
    replace: (body: T) => Promise<T>,
    caBundle: string,
  ): Promise<void> {
    let config: T;
    try {
      config = await read();
    } catch (err) {
      // Not installed (yet): its informer triggers a reconcile when it appears.
      if (isNotFound(err)) {
        this.#log.debug({ kind, name }, 'webhook configuration not found; nothing to inject');
        return;
      }
      throw new Error(`reading ${kind} ${name}: ${describeApiError(err)}`, { cause: err });
    }
    const webhooks = config.webhooks ?? [];
    if (webhooks.every((w) => w.clientConfig.caBundle === caBundle)) return;
    for (const w of webhooks) w.clientConfig.caBundle = caBundle;
    try {
      await replace(config);
    } catch (err) {
      throw new Error(`injecting the CA bundle into ${kind} ${name}: ${describeApiError(err)}`, {
        cause: err,
      });
    }
    this.#log.info({ kind, name, webhooks: webhooks.length }, 'CA bundle injected');
  }

  async #injectApiService(name: string, caBundle: string): Promise<void> {
    let service: V1APIService;
    try {
      service = await this.#registration.readAPIService({ name });
    } catch (err) {
      if (isNotFound(err)) {
        this.#log.debug({ kind: 'APIService', name }, 'APIService not found; nothing to inject');
        return;
      }
      throw new Error(`reading APIService ${name}: ${describeApiError(err)}`, { cause: err });
    }
    const spec = service.spec;
    if (spec === undefined) throw new Error(`APIService ${name} has no spec`);
    // client-node reads the byte field as a base64 string.
    if (String(spec.caBundle ?? '') === caBundle && !spec.insecureSkipTLSVerify) return;
    // The API server refuses a caBundle next to insecureSkipTLSVerify; verifying is the point of the bundle.
    spec.insecureSkipTLSVerify = false;
    spec.caBundle = caBundle;
    try {
      await this.#registration.replaceAPIService({ name, body: service });
    } catch (err) {
      throw new Error(`injecting the CA bundle into APIService ${name}: ${describeApiError(err)}`, {
        cause: err,
      });
    }
    this.#log.info({ kind: 'APIService', name }, 'CA bundle injected');
  }
}
