#!/usr/bin/env node
// virt-api: admission webhooks for the kubevirt.io resources and the aggregated subresources.kubevirt.io API.
// It serves HTTPS on --port with the certificate virt-controller keeps in a Secret (or, in development, from
// --tls-cert-file/--tls-key-file), and reports ready once it has that certificate and its caches are in sync.
import {
  errorMessage,
  flag,
  kubeFlags,
  loadKubeConfig,
  packageVersion,
  startService,
} from '@kubevirt-ts/runtime';
import { startVirtApi, type HandlerClientCertificate, type ServingCertificate } from './app.ts';

const service = await startService({
  name: 'virt-api',
  version: packageVersion(import.meta.url),
  description:
    'virt-api serves the mutating and validating admission webhooks of the kubevirt.io resources and the\n' +
    'aggregated subresources.kubevirt.io API (start, stop, console, vnc, ...).',
  flags: {
    ...kubeFlags,
    namespace: flag.string({
      description:
        'Namespace kubevirt-ts is installed in (holds the KubeVirt CR and the serving certificates)',
      env: 'POD_NAMESPACE',
      default: 'kubevirt',
    }),
    port: flag.port({
      description: 'HTTPS port of the webhooks and the aggregated API (the Service maps 443 to it)',
      default: 8443,
    }),
    bindAddress: flag.string({
      description: 'Address the HTTPS port binds to (default: all interfaces)',
      valueName: 'address',
    }),
    tlsSecret: flag.string({
      description:
        'Secret (in --namespace) with the serving certificate, kept and rotated by virt-controller',
      default: 'kubevirt-virt-api-certs',
    }),
    tlsCertFile: flag.string({
      description:
        'Serve this certificate file instead of the Secret (development); reloaded when it changes',
      valueName: 'path',
    }),
    tlsKeyFile: flag.string({
      description: 'Private key of --tls-cert-file',
      valueName: 'path',
    }),
    privilegedServiceAccounts: flag.string({
      description:
        'Comma-separated service accounts that may change a VMI status and spec, as name (in --namespace) or\n' +
        'namespace:name; the status changes of anyone else are reverted',
      // virt-api itself: the stop and restart subresources shorten a running VMI's grace period, as KubeVirt's do.
      default: 'virt-controller,virt-handler,virt-api',
      valueName: 'names',
    }),
    handlerClientSecret: flag.string({
      description:
        'Secret (in --namespace) with the client certificate virt-api presents to virt-handler (console, VNC,\n' +
        'pause) and the CA bundle that signed the handlers; kept and rotated by virt-controller',
      default: 'kubevirt-virt-handler-certs',
    }),
    handlerClientCertFile: flag.string({
      description: 'Use this client certificate file instead of --handler-client-secret (development)',
      valueName: 'path',
    }),
    handlerClientKeyFile: flag.string({
      description: 'Private key of --handler-client-cert-file',
      valueName: 'path',
    }),
    handlerCaFile: flag.string({
      description: "CA bundle that signed the handlers' certificates, with --handler-client-cert-file",
      valueName: 'path',
    }),
    handlerSelector: flag.string({
      description: 'Label selector of the virt-handler pods in --namespace',
      default: 'kubevirt.io=virt-handler',
      valueName: 'selector',
    }),
    handlerPort: flag.port({
      description: "virt-handler's gRPC port, when its pod declares no container port named grpc",
      default: 8190,
    }),
  },
  healthPort: 8187,
  // Webhooks sit behind a Service: give endpoint removal a moment before the port closes.
  shutdownDelayMs: 2_000,
});

const { config, log } = service;
try {
  if ((config.tlsCertFile === undefined) !== (config.tlsKeyFile === undefined)) {
    throw new Error(
      '--tls-cert-file and --tls-key-file go together: give both, or neither to use --tls-secret',
    );
  }
  const handlerFiles = [config.handlerClientCertFile, config.handlerClientKeyFile, config.handlerCaFile];
  if (handlerFiles.some((f) => f !== undefined) && handlerFiles.some((f) => f === undefined)) {
    throw new Error(
      '--handler-client-cert-file, --handler-client-key-file and --handler-ca-file go together: give all three, ' +
        'or none to use --handler-client-secret',
    );
  }
  const handlerClientCertificate: HandlerClientCertificate =
    config.handlerClientCertFile !== undefined &&
    config.handlerClientKeyFile !== undefined &&
    config.handlerCaFile !== undefined
      ? {
          kind: 'files',
          certFile: config.handlerClientCertFile,
          keyFile: config.handlerClientKeyFile,
          caFile: config.handlerCaFile,
        }
      : { kind: 'secret', name: config.handlerClientSecret };
  const certificate: ServingCertificate =
    config.tlsCertFile !== undefined && config.tlsKeyFile !== undefined
      ? { kind: 'files', certFile: config.tlsCertFile, keyFile: config.tlsKeyFile }
      : { kind: 'secret', name: config.tlsSecret };
  const { kubeConfig, source } = loadKubeConfig({ kubeconfig: config.kubeconfig });
  log.info({ source, server: kubeConfig.getCurrentCluster()?.server }, 'Kubernetes client configured');
  const api = startVirtApi({
    kubeConfig,
    namespace: config.namespace,
    log,
    registry: service.registry,
    version: service.version,
    port: config.port,
    ...(config.bindAddress === undefined ? {} : { host: config.bindAddress }),
    certificate,
    privilegedServiceAccounts: config.privilegedServiceAccounts
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== ''),
    handlerClientCertificate,
    handlerSelector: config.handlerSelector,
    handlerPort: config.handlerPort,
  });
  service.health.addReadinessCheck('virt-api', () => api.ready());
  service.shutdown.register('virt-api', () => api.stop());
  void api.listening.catch(async (err: unknown) => {
    log.fatal({ error: errorMessage(err) }, 'cannot serve HTTPS');
    process.exit(await service.shutdown.shutdown('HTTPS listen failed').then(() => 1));
  });
} catch (err) {
  log.fatal({ error: errorMessage(err) }, 'cannot start');
  await service.shutdown.shutdown('startup failed');
  process.exit(1);
}
