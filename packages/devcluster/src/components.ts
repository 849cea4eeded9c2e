// The control plane's processes and their flags, rendered from the layout (pure: no I/O). The supervisor runs them
// in this order: the in-namespace forwarder, etcd, kube-apiserver, the host forwarder, then controller-manager and
// scheduler once the API server is ready (the controller-manager gives up if the API server is not healthy soon).
// The supervisor probes each from the host through the forwarder's unix sockets.
import { join } from 'node:path';
import { componentLogFile, componentPidFile, NETWORK, PORTS, type StatePaths } from './layout.ts';
import type { PkiFiles } from './pki.ts';
import type { ComponentSpec } from './spec.ts';

export interface ComponentInputs {
  binDir: string;
  paths: StatePaths;
  pki: PkiFiles;
  kubeconfigs: { controllerManager: string; scheduler: string };
  hostPort: number;
  /** How to run one of devcluster's own scripts: node, its flags and the script's path. */
  nodeScript: (script: 'forwarder') => string[];
  /** More `--forward` rules for the namespace forwarder (probes of CoreDNS and the nodes' kube-proxies). */
  extraForwards?: readonly string[];
}

export const COMPONENT_NAMES = {
  namespaceForwarder: 'forwarder-namespace',
  etcd: 'etcd',
  apiserver: 'kube-apiserver',
  hostForwarder: 'forwarder-host',
  controllerManager: 'kube-controller-manager',
  scheduler: 'kube-scheduler',
} as const;

const SERVICE_ACCOUNT_ISSUER = `https://kubernetes.default.svc.${NETWORK.clusterDomain}`;

/** `--name=value` flags from a record, in a stable order, so logs and tests read the same every time. */
export function renderFlags(flags: Record<string, string | number | boolean>): string[] {
  return Object.entries(flags).map(([name, value]) => `--${name}=${String(value)}`);
}

export function etcdFlags(paths: StatePaths): string[] {
  const client = `http://127.0.0.1:${PORTS.etcdClient}`;
  const peer = `http://127.0.0.1:${PORTS.etcdPeer}`;
  // Plain HTTP on the namespace's loopback: only processes inside the namespace (and the forwarder's unix socket
  // under the owner-only state dir) reach it. No fsync: a test cluster trades power-loss durability for speed.
  return renderFlags({
    name: 'devcluster',
    'data-dir': paths.etcdData,
    'listen-client-urls': client,
    'advertise-client-urls': client,
    'listen-peer-urls': peer,
    'initial-advertise-peer-urls': peer,
    'initial-cluster': `devcluster=${peer}`,
    'initial-cluster-state': 'new',
    'unsafe-no-fsync': true,
    'log-level': 'warn',
  });
}

export function apiserverFlags(paths: StatePaths, pki: PkiFiles): string[] {
  return renderFlags({
    'advertise-address': NETWORK.controlPlaneAddress,
    // All addresses of the namespace: its bridge address and loopback; nothing outside the namespace can connect.
    'bind-address': '0.0.0.0',
    'secure-port': PORTS.apiserver,
    'etcd-servers': `http://127.0.0.1:${PORTS.etcdClient}`,
    'service-cluster-ip-range': NETWORK.serviceCidr,
    'tls-cert-file': pki.apiserver.cert,
    'tls-private-key-file': pki.apiserver.key,
    'client-ca-file': pki.ca.cert,
    'authorization-mode': 'Node,RBAC',
    // The default plugins (NamespaceLifecycle, LimitRanger, ServiceAccount, the webhooks, ResourceQuota, …) plus
    // NodeRestriction, as kubeadm runs it.
    'enable-admission-plugins': 'NodeRestriction',
    'allow-privileged': true,
    'service-account-issuer': SERVICE_ACCOUNT_ISSUER,
    'service-account-key-file': pki.serviceAccount.publicKey,
    'service-account-signing-key-file': pki.serviceAccount.privateKey,
    // Aggregation layer: the API server proxies to extension API servers as front-proxy-client and tells them
    // who the user is in these headers; endpoint routing lets it reach a process run from source directly.
    'requestheader-client-ca-file': pki.frontProxyCa.cert,
    'requestheader-allowed-names': 'front-proxy-client',
    'requestheader-username-headers': 'X-Remote-User',
    'requestheader-group-headers': 'X-Remote-Group',
    'requestheader-extra-headers-prefix': 'X-Remote-Extra-',
    'proxy-client-cert-file': pki.frontProxyClient.cert,
    'proxy-client-key-file': pki.frontProxyClient.key,
    'enable-aggregator-routing': true,
    'cert-dir': join(paths.root, 'apiserver-certs'),
    // On SIGTERM, end open watches within this grace instead of waiting for them up to the request timeout
    // (60 s), so a restart (restartApiServer) takes seconds; clients re-watch, as they must anyway.
    'shutdown-watch-termination-grace-period': '3s',
    profiling: false,
  });
}

export function controllerManagerFlags(pki: PkiFiles, kubeconfig: string): string[] {
  return renderFlags({
    kubeconfig,
    'authentication-kubeconfig': kubeconfig,
    'authorization-kubeconfig': kubeconfig,
    'bind-address': '127.0.0.1',
    'secure-port': PORTS.controllerManager,
    'tls-cert-file': pki.controllerManagerServing.cert,
    'tls-private-key-file': pki.controllerManagerServing.key,
    // One instance only: no election, so it starts work at once after a killed run (no waiting out the old
    // holder's Lease) and keeps running when a test restarts the API server under it.
    'leader-elect': false,
    'use-service-account-credentials': true,
    'service-account-private-key-file': pki.serviceAccount.privateKey,
    'root-ca-file': pki.ca.cert,
    'cluster-signing-cert-file': pki.ca.cert,
    'cluster-signing-key-file': pki.ca.key,
    'service-cluster-ip-range': NETWORK.serviceCidr,
    // Node IPAM gives each node (devcluster part 2) its pod range from here.
    'allocate-node-cidrs': true,
    'cluster-cidr': NETWORK.podCidr,
    'node-cidr-mask-size': NETWORK.nodeCidrMaskSize,
    controllers: '*,bootstrapsigner,tokencleaner',
    profiling: false,
  });
}

export function schedulerFlags(pki: PkiFiles, kubeconfig: string): string[] {
  return renderFlags({
    kubeconfig,
    'authentication-kubeconfig': kubeconfig,
    'authorization-kubeconfig': kubeconfig,
    'bind-address': '127.0.0.1',
    'secure-port': PORTS.scheduler,
    'tls-cert-file': pki.schedulerServing.cert,
    'tls-private-key-file': pki.schedulerServing.key,
    'leader-elect': false,
    profiling: false,
  });
}

/** The whole control plane, in start order. */
export function controlPlaneComponents(inputs: ComponentInputs): ComponentSpec[] {
  const { binDir, paths, pki } = inputs;
  const bin = (name: string) => join(binDir, name);
  const netns = NETWORK.namespace;
  const base = (name: string) => ({
    name,
    logFile: componentLogFile(paths, name),
    pidFile: componentPidFile(paths, name),
  });
  const apiserverProbe = {
    kind: 'https-unix' as const,
    socketPath: paths.apiserverSocket,
    path: '/readyz',
    caFile: pki.ca.cert,
    servername: NETWORK.controlPlaneAddress,
    certFile: pki.admin.cert,
    keyFile: pki.admin.key,
  };
  // /healthz is open to anonymous requests on both (their default always-allowed paths).
  const healthz = (socketPath: string) => ({
    kind: 'https-unix' as const,
    socketPath,
    path: '/healthz',
    caFile: pki.ca.cert,
    servername: '127.0.0.1',
  });
  return [
    {
      ...base(COMPONENT_NAMES.namespaceForwarder),
      // Unix sockets cross network namespaces: these listeners sit in the state dir, their targets in the namespace.
      argv: [
        ...inputs.nodeScript('forwarder'),
        '--forward',
        `unix:${paths.apiserverSocket}=tcp:${NETWORK.controlPlaneAddress}:${PORTS.apiserver}`,
        '--forward',
        `unix:${paths.etcdSocket}=tcp:127.0.0.1:${PORTS.etcdClient}`,
        '--forward',
        `unix:${paths.controllerManagerSocket}=tcp:127.0.0.1:${PORTS.controllerManager}`,
        '--forward',
        `unix:${paths.schedulerSocket}=tcp:127.0.0.1:${PORTS.scheduler}`,
        ...(inputs.extraForwards ?? []).flatMap((rule) => ['--forward', rule]),
      ],
      netns,
      readiness: { kind: 'unix-connect', socketPath: paths.apiserverSocket },
    },
    {
      ...base(COMPONENT_NAMES.etcd),
      argv: [bin('etcd'), ...etcdFlags(paths)],
      netns,
      startAfter: [COMPONENT_NAMES.namespaceForwarder],
      readiness: { kind: 'http-unix', socketPath: paths.etcdSocket, path: '/health' },
      stopTimeoutMs: 15_000,
    },
    {
      ...base(COMPONENT_NAMES.apiserver),
      argv: [bin('kube-apiserver'), ...apiserverFlags(paths, pki)],
      netns,
      startAfter: [COMPONENT_NAMES.etcd],
      readiness: apiserverProbe,
      stopTimeoutMs: 20_000,
    },
    {
      ...base(COMPONENT_NAMES.hostForwarder),
      argv: [
        ...inputs.nodeScript('forwarder'),
        '--forward',
        `tcp:127.0.0.1:${inputs.hostPort}=unix:${paths.apiserverSocket}`,
      ],
      startAfter: [COMPONENT_NAMES.namespaceForwarder],
      readiness: { kind: 'tcp-connect', host: '127.0.0.1', port: inputs.hostPort },
    },
    {
      ...base(COMPONENT_NAMES.controllerManager),
      argv: [
        bin('kube-controller-manager'),
        ...controllerManagerFlags(pki, inputs.kubeconfigs.controllerManager),
      ],
      netns,
      startAfter: [COMPONENT_NAMES.apiserver],
      readiness: healthz(paths.controllerManagerSocket),
    },
    {
      ...base(COMPONENT_NAMES.scheduler),
      argv: [bin('kube-scheduler'), ...schedulerFlags(pki, inputs.kubeconfigs.scheduler)],
      netns,
      startAfter: [COMPONENT_NAMES.apiserver],
      readiness: healthz(paths.schedulerSocket),
    },
  ];
}
