#!/usr/bin/env node
// virt-handler: the node agent. It drives the launchers of the VMIs scheduled to its node, reports their status,
// advertises the devices.kubevirt.io resources through the kubelet's device-plugin API, keeps the node's heartbeat,
// and serves handler.v1 (console, VNC, pause, guest info) to virt-api over mutual TLS.
import { join } from 'node:path';
import { CoreV1Api } from '@kubernetes/client-node';
import { status } from '@grpc/grpc-js';
import { RpcError, type RunningServer } from '@kubevirt-ts/proto';
import {
  FileCertificateSource,
  SecretCertificateSource,
  flag,
  kubeFlags,
  loadKubeConfig,
  packageVersion,
  startService,
  type CertificateSource,
} from '@kubevirt-ts/runtime';
import { CheckpointStore } from './checkpoint.ts';
import { DEFAULT_UNRESPONSIVE_AFTER_MS } from './constants.ts';
import { DEFAULT_DEVICE_COUNT, DevicePlugins } from './deviceplugin/plugin.ts';
import { ApiEventRecorder } from './events.ts';
import {
  DEFAULT_ALLOWED_CLIENT_NAMES,
  SourceCertificateProvider,
  startHandlerServer,
  type HandlerBackend,
} from './handler-server.ts';
import { Heartbeat } from './heartbeat.ts';
import { PodNetworkSetup } from './network/pod-network.ts';
import { PodSockets } from './pod-sockets.ts';
import { VmiController } from './vmi-controller.ts';
import { phaseOf } from './vmi.ts';

const service = await startService({
  name: 'virt-handler',
  version: packageVersion(import.meta.url),
  description:
    'virt-handler is the kubevirt-ts node agent: it syncs the VMIs scheduled to its node to their launchers\n' +
    'over gRPC and reports their status back to the API server.',
  flags: {
    ...kubeFlags,
    nodeName: flag.string({
      description: 'Name of the Node this handler manages (the downward API sets it in a DaemonSet)',
      env: 'NODE_NAME',
      required: true,
    }),
    podsDir: flag.string({
      description: "Where the host's kubelet pods directory (/var/lib/kubelet/pods) is mounted",
      default: '/pods',
      valueName: 'path',
    }),
    stateDir: flag.string({
      description:
        'A host folder that outlives the handler: checkpoints of the launchers it drives, and short links to ' +
        'deep socket folders (keep its path short)',
      default: '/var/lib/kubevirt-ts/handler',
      valueName: 'path',
    }),
    devicePluginsDir: flag.string({
      description:
        "The kubelet's device-plugin folder (kubelet.sock; the handler's plugin sockets go next to it)",
      default: '/var/lib/kubelet/device-plugins',
      valueName: 'path',
    }),
    devDir: flag.string({
      description:
        "Where the host's /dev is visible, to tell whether /dev/kvm, /dev/net/tun and /dev/vhost-net exist",
      default: '/dev',
      valueName: 'path',
    }),
    maxDevices: flag.integer({
      description: 'Slots each devices.kubevirt.io resource advertises: the most VMIs this node may run',
      default: DEFAULT_DEVICE_COUNT,
      min: 1,
      max: 100_000,
    }),
    grpcPort: flag.port({
      description: 'Port of the handler.v1 gRPC server (mutual TLS) that virt-api calls; 0 picks a free port',
      default: 8190,
    }),
    grpcBindAddress: flag.string({
      description: 'Address the handler.v1 server binds to',
      default: '0.0.0.0',
      valueName: 'address',
    }),
    certsNamespace: flag.string({
      description: 'Namespace of the certificate Secrets the controller keeps (the install namespace)',
      env: 'POD_NAMESPACE',
      default: 'kubevirt',
      valueName: 'namespace',
    }),
    serverCertsSecret: flag.string({
      description:
        'Secret with the handler.v1 server certificate (tls.crt, tls.key) and the CA bundle (ca.crt)',
      default: 'kubevirt-virt-handler-server-certs',
      valueName: 'name',
    }),
    tlsCertFile: flag.string({
      description:
        'Read the server certificate from this file instead of the Secret (with --tls-key-file and --tls-ca-file)',
      valueName: 'path',
    }),
    tlsKeyFile: flag.string({ description: 'The key of --tls-cert-file', valueName: 'path' }),
    tlsCaFile: flag.string({
      description: 'The CA bundle callers must be signed by, with --tls-cert-file',
      valueName: 'path',
    }),
    allowedClientNames: flag.string({
      description: 'Comma-separated common names of the client certificates allowed to call handler.v1',
      default: DEFAULT_ALLOWED_CLIENT_NAMES.join(','),
      valueName: 'names',
    }),
    unresponsiveTimeout: flag.duration({
      description: 'A launcher that answers nothing for this long is unresponsive, and its VMI Failed',
      default: DEFAULT_UNRESPONSIVE_AFTER_MS,
    }),
    heartbeatInterval: flag.duration({
      description: 'How often the node heartbeat is written',
      default: 60_000,
    }),
    workers: flag.integer({ description: 'VMIs reconciled in parallel', default: 5, min: 1, max: 100 }),
  },
  healthPort: 8188,
});

const config = service.config;
const node = config.nodeName;
const log = service.log.child({ node });

const fileTls = [config.tlsCertFile, config.tlsKeyFile, config.tlsCaFile];
if (fileTls.some((f) => f !== undefined) && fileTls.some((f) => f === undefined)) {
  log.fatal('--tls-cert-file, --tls-key-file and --tls-ca-file go together; pass all three or none');
  process.exit(2);
}
let kubeConfig;
try {
  kubeConfig = loadKubeConfig({ kubeconfig: config.kubeconfig }).kubeConfig;
} catch (err) {
  log.fatal({ err }, 'cannot load a Kubernetes client configuration');
  process.exit(1);
}

const core = kubeConfig.makeApiClient(CoreV1Api);
const sockets = new PodSockets(config.podsDir, join(config.stateDir, 's'));
const controller = new VmiController({
  kubeConfig,
  node,
  log,
  registry: service.registry,
  sockets,
  checkpoints: new CheckpointStore(config.stateDir),
  recorder: new ApiEventRecorder(core, log, node),
  workers: config.workers,
  unresponsiveAfterMs: config.unresponsiveTimeout,
  podNetwork: new PodNetworkSetup({ log: log.child({ component: 'pod-network' }) }),
});
service.health.addReadinessCheck('vmi-informer', () => controller.ready());

const devicePlugins = new DevicePlugins({
  dir: config.devicePluginsDir,
  linkDir: config.stateDir,
  devDir: config.devDir,
  count: config.maxDevices,
  log,
});
const heartbeat = new Heartbeat({
  core,
  node,
  log,
  devDir: config.devDir,
  intervalMs: config.heartbeatInterval,
  ready: () => devicePlugins.allRegistered() && controller.ready() === true,
});

// handler.v1: certificates from the controller's Secret (or files), reloaded when they change.
const source: CertificateSource =
  config.tlsCertFile !== undefined
    ? new FileCertificateSource({
        certFile: config.tlsCertFile,
        keyFile: config.tlsKeyFile!,
        caFile: config.tlsCaFile!,
        log,
      })
    : new SecretCertificateSource({
        kubeConfig,
        namespace: config.certsNamespace,
        name: config.serverCertsSecret,
        log,
      });
const provider = new SourceCertificateProvider(source);
const backend: HandlerBackend = {
  find(ref) {
    const vmi = controller.vmi(ref.namespace, ref.name);
    const where = `${ref.namespace}/${ref.name}`;
    if (vmi === undefined || (ref.uid !== '' && vmi.metadata?.uid !== ref.uid)) {
      throw new RpcError(status.NOT_FOUND, `VMI ${where} is not running on node ${node}`);
    }
    if (phaseOf(vmi) !== 'Running') {
      throw new RpcError(
        status.FAILED_PRECONDITION,
        `VMI ${where} is ${phaseOf(vmi) || 'not started'}, not Running`,
      );
    }
    const link = controller.link(vmi.metadata?.uid ?? '');
    if (link === undefined || link.socketsDir === undefined || link.unresponsive) {
      throw new RpcError(
        status.UNAVAILABLE,
        `the launcher of VMI ${where} is not reachable right now; try again`,
      );
    }
    return { vmi, link, socketsDir: link.socketsDir };
  },
};
let grpcServer: RunningServer | undefined;
service.health.addReadinessCheck('handler-grpc', () =>
  grpcServer !== undefined
    ? true
    : `handler.v1 is waiting for its certificate (${source.lastError() ?? source.description})`,
);

// Shutdown hooks run in reverse order: stop serving virt-api, stop the device plugins, mark the node
// unschedulable, then let the VMI loop drain. Launchers and their guests keep running.
const controllerRun = controller.run(service.signal).catch((err: unknown) => {
  log.fatal({ err }, 'the VMI loop failed');
  void service.shutdown.shutdown('VMI loop failed').then((code) => process.exit(code || 1));
});
service.shutdown.register('vmi-controller', () => controllerRun);
service.shutdown.register('heartbeat', () => heartbeat.stop());
service.shutdown.register('device-plugins', () => devicePlugins.stop());
service.shutdown.register('certificates', async () => {
  provider.close();
  await source.stop();
});
service.shutdown.register('handler-grpc', async () => {
  await grpcServer?.shutdown(5_000);
});

await devicePlugins.start();
heartbeat.start();

source.start();
void provider.whenLoaded(service.signal).then(async (loaded) => {
  if (!loaded) return;
  try {
    grpcServer = await startHandlerServer({
      host: config.grpcBindAddress,
      port: config.grpcPort,
      provider,
      allowedClientNames: config.allowedClientNames
        .split(',')
        .map((n) => n.trim())
        .filter((n) => n !== ''),
      backend,
      log,
    });
    log.info({ grpcPort: grpcServer.port, target: grpcServer.target }, 'serving handler.v1 over mutual TLS');
  } catch (err) {
    log.fatal({ err }, 'cannot serve handler.v1');
    process.exit(await service.shutdown.shutdown('handler.v1 failed'));
  }
});
log.info(
  { podsDir: config.podsDir, stateDir: config.stateDir, devicePluginsDir: config.devicePluginsDir },
  'virt-handler running',
);
