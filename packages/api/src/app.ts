// virt-api assembled: the HTTPS server, the caches its webhooks read, the serving certificate (from the Secret
// virt-controller keeps, or from files in development), the front-proxy settings of the aggregation layer, and the
// subresource endpoints with what they need: SubjectAccessReviews, the handler pods, the handler client certificate.
// main.ts runs it as a service; tests and the benchmark start it in-process with the same code.
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import {
  FileCertificateSource,
  SecretCertificateSource,
  createInformer,
  errorMessage,
  resourcePath,
  type CertificateSource,
  type Informer,
  type Logger,
  type Registry,
} from '@kubevirt-ts/runtime';
import { AUTHENTICATION_CONFIGMAP, RequestHeaderAuthenticator, requestHeaderConfigFrom } from './auth.ts';
import { ClusterCaches } from './caches.ts';
import { VirtApiServer, type VirtApiServerOptions } from './server.ts';
import { SubresourceApi } from './subresources/api.ts';
import { SubjectAccessReviewAuthorizer } from './subresources/authorizer.ts';
import { HandlerDialer, HandlerLocator } from './subresources/handler.ts';
import { KubernetesObjectStore } from './subresources/store.ts';

export type ServingCertificate =
  { kind: 'secret'; name: string } | { kind: 'files'; certFile: string; keyFile: string };

/** The client certificate virt-api presents to virt-handler, with the CA bundle that signed the handlers'. */
export type HandlerClientCertificate =
  { kind: 'secret'; name: string } | { kind: 'files'; certFile: string; keyFile: string; caFile: string };

export interface VirtApiOptions {
  kubeConfig: KubeConfig;
  /** Install namespace: the certificate Secret, the KubeVirt CR and our service accounts live here. */
  namespace: string;
  log: Logger;
  registry?: Registry;
  version: string;
  port: number;
  host?: string;
  certificate: ServingCertificate;
  /** Service accounts that may write VMI status and spec (controller and handler): `name` or `namespace:name`. */
  privilegedServiceAccounts: readonly string[];
  onReview?: VirtApiServerOptions['onReview'];
  /** Default: the Secret kubevirt-virt-handler-certs in `namespace`. */
  handlerClientCertificate?: HandlerClientCertificate;
  /** Label selector of the virt-handler pods (in `namespace`); default `kubevirt.io=virt-handler`. */
  handlerSelector?: string;
  /** The handlers' gRPC port when their pod names no `grpc` port; default 8190. */
  handlerPort?: number;
}

export interface VirtApi {
  server: VirtApiServer;
  caches: ClusterCaches;
  certificates: CertificateSource;
  handlerCertificates: CertificateSource;
  subresources: SubresourceApi;
  /** Resolves with the bound port once the first certificate arrived and the server listens. */
  listening: Promise<number>;
  /** true when ready to admit (certificate loaded, caches synced), else why not. */
  ready(): true | string;
  stop(): Promise<void>;
}

export function startVirtApi(opts: VirtApiOptions): VirtApi {
  const log = opts.log;
  const authenticator = new RequestHeaderAuthenticator(log);
  const caches = new ClusterCaches({
    kubeConfig: opts.kubeConfig,
    namespace: opts.namespace,
    privilegedServiceAccounts: opts.privilegedServiceAccounts,
    log,
  });
  const handlerCert = opts.handlerClientCertificate ?? {
    kind: 'secret',
    name: 'kubevirt-virt-handler-certs',
  };
  const handlerCertificates: CertificateSource =
    handlerCert.kind === 'secret'
      ? new SecretCertificateSource({
          kubeConfig: opts.kubeConfig,
          namespace: opts.namespace,
          name: handlerCert.name,
          log,
        })
      : new FileCertificateSource({
          certFile: handlerCert.certFile,
          keyFile: handlerCert.keyFile,
          caFile: handlerCert.caFile,
          log,
        });
  const subresources = new SubresourceApi({
    store: new KubernetesObjectStore(opts.kubeConfig),
    log,
    ...(opts.registry === undefined ? {} : { registry: opts.registry }),
    authorizer: new SubjectAccessReviewAuthorizer(opts.kubeConfig, log),
    locator: new HandlerLocator({
      kubeConfig: opts.kubeConfig,
      namespace: opts.namespace,
      ...(opts.handlerSelector === undefined ? {} : { selector: opts.handlerSelector }),
      ...(opts.handlerPort === undefined ? {} : { port: opts.handlerPort }),
    }),
    dialer: new HandlerDialer({ certificates: handlerCertificates, log }),
  });
  const server = new VirtApiServer({
    port: opts.port,
    ...(opts.host === undefined ? {} : { host: opts.host }),
    log,
    ...(opts.registry === undefined ? {} : { registry: opts.registry }),
    context: caches,
    authenticator,
    version: opts.version,
    healthy: () => caches.synced() === true,
    subresources,
    ...(opts.onReview === undefined ? {} : { onReview: opts.onReview }),
  });

  const core = opts.kubeConfig.makeApiClient(CoreV1Api);
  const { namespace: authNs, name: authName } = AUTHENTICATION_CONFIGMAP;
  const authInformer: Informer<V1ConfigMap> = createInformer<V1ConfigMap>({
    name: 'extension-apiserver-authentication',
    kubeConfig: opts.kubeConfig,
    path: resourcePath({ version: 'v1', plural: 'configmaps', namespace: authNs }),
    fieldSelector: `metadata.name=${authName}`,
    list: (o) => core.listNamespacedConfigMap({ namespace: authNs, ...o }),
    log,
    resyncPeriodMs: 0,
  });
  const onAuthConfig = (cm: V1ConfigMap): void => {
    try {
      const config = requestHeaderConfigFrom(cm);
      if (config === undefined) {
        log.warn('ConfigMap kube-system/extension-apiserver-authentication has no request-header CA');
        return;
      }
      if (authenticator.update(config)) server.clientCaChanged();
    } catch (err) {
      log.error({ error: errorMessage(err) }, 'ignoring unreadable front-proxy settings');
    }
  };
  authInformer.addHandlers({ add: onAuthConfig, update: onAuthConfig });

  const certificates: CertificateSource =
    opts.certificate.kind === 'secret'
      ? new SecretCertificateSource({
          kubeConfig: opts.kubeConfig,
          namespace: opts.namespace,
          name: opts.certificate.name,
          log,
        })
      : new FileCertificateSource({
          certFile: opts.certificate.certFile,
          keyFile: opts.certificate.keyFile,
          log,
        });

  let firstCertificate: () => void = () => {};
  const certificateLoaded = new Promise<void>((resolve) => {
    firstCertificate = resolve;
  });
  const unsubscribe = certificates.onChange((material) => {
    server.setCertificate(material);
    firstCertificate();
  });

  caches.start();
  authInformer.start();
  certificates.start();
  handlerCertificates.start();
  if (certificates.current() === undefined) {
    log.info({ source: certificates.description }, 'waiting for the serving certificate');
  }
  const listening = certificateLoaded.then(() => server.listen());

  return {
    server,
    caches,
    certificates,
    handlerCertificates,
    subresources,
    listening,
    ready() {
      if (!server.certificateLoaded) {
        const why = certificates.lastError();
        return `no serving certificate yet from ${certificates.description}${why === undefined ? '' : `: ${why}`}`;
      }
      return caches.synced();
    },
    async stop() {
      unsubscribe();
      await server.close();
      await Promise.all([
        certificates.stop(),
        handlerCertificates.stop(),
        authInformer.stop(),
        caches.stop(),
      ]);
    },
  };
}
