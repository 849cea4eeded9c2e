// Where devcluster puts things: the private network inside its network namespace, the ports, the state dir
// (per machine user, outside any clone) and the binary cache. Every other module takes its paths from here.
import { homedir } from 'node:os';
import { join } from 'node:path';

/**
 * KUBEVIRT_TS_DEVCLUSTER_INSTANCE=NAME (1–6 lowercase letters or digits) runs a second, independent devcluster
 * beside the default one on the same machine: its own network namespaces (`kvtsNAME-dc…`), state dir
 * (`…/devcluster-NAME`) and host port. Everything inside the namespaces (addresses, ports) stays the same, since
 * namespaces do not see each other. Unset: the default instance (`kvts-dc`, 36443).
 */
export function devclusterInstance(
  env: Record<string, string | undefined> = process.env,
): string | undefined {
  const name = env.KUBEVIRT_TS_DEVCLUSTER_INSTANCE;
  if (name === undefined || name === '') return undefined;
  if (!/^[a-z0-9]{1,6}$/.test(name)) {
    throw new Error(
      `KUBEVIRT_TS_DEVCLUSTER_INSTANCE=${JSON.stringify(name)}: use 1–6 lowercase letters or digits`,
    );
  }
  return name;
}

/** `kvts-dc` for the default instance, `kvtsNAME-dc` otherwise: no instance's prefix starts another's. */
export function namespacePrefixFor(instance: string | undefined): string {
  return instance ? `kvts${instance}-dc` : 'kvts-dc';
}

/** 36443 for the default instance; otherwise a port from 36444–36943 derived from the name. */
export function hostPortFor(instance: string | undefined): number {
  if (!instance) return 36443;
  let h = 0;
  for (const c of instance) h = (h * 31 + c.charCodeAt(0)) % 500;
  return 36444 + h;
}

const INSTANCE = devclusterInstance();

/**
 * The cluster network. All of it exists only inside the network namespaces devcluster creates; nothing here is
 * routed to or from the host, so these private ranges never carry traffic outside the machine's own namespaces.
 */
export const NETWORK = {
  /** Network namespace of the control plane (and, later, the parent of each node's namespace). */
  namespace: namespacePrefixFor(INSTANCE),
  /** Every namespace devcluster creates starts with this, so a reclaim finds them all (nodes add `-nN`). */
  namespacePrefix: namespacePrefixFor(INSTANCE),
  /** Bridge inside the namespace; node namespaces (part 2) attach to it with veth pairs. */
  bridge: 'kvts0',
  /** The devcluster network on the bridge: .0.1 is the control plane, nodes get .1.N (part 2). */
  subnet: '172.30.0.0/16',
  prefixLength: 16,
  /** The API server's advertised address and the default address of processes run with `devcluster exec`. */
  controlPlaneAddress: '172.30.0.1',
  /** Pod addresses: the controller-manager gives node N the range 10.244.N.0/24. */
  podCidr: '10.244.0.0/16',
  nodeCidrMaskSize: 24,
  /** ClusterIP range; the first address is the `kubernetes` Service. */
  serviceCidr: '10.96.0.0/16',
  kubernetesServiceIp: '10.96.0.1',
  /** The `kube-dns` Service (the service range's 10th address, as kubeadm picks it); CoreDNS answers behind it. */
  clusterDnsIp: '10.96.0.10',
  clusterDomain: 'cluster.local',
} as const;

export const PORTS = {
  apiserver: 6443,
  etcdClient: 2379,
  etcdPeer: 2380,
  controllerManager: 10257,
  scheduler: 10259,
  /** CoreDNS, on the control plane address inside the cluster namespace (the kube-dns Service's endpoint). */
  dns: 53,
  /** CoreDNS's `ready` plugin (127.0.0.1 inside the cluster namespace). */
  dnsReady: 8181,
  /** kube-proxy's health server on each node's address. */
  kubeProxyHealthz: 10256,
  /** kube-proxy's metrics, on each node's loopback. */
  kubeProxyMetrics: 10249,
  /** Host side of the forwarder (127.0.0.1); override with --port or KUBEVIRT_TS_DEVCLUSTER_PORT. */
  hostApiserverDefault: hostPortFor(INSTANCE),
} as const;

/** Namespace and ServiceAccounts of our services (DESIGN.md §4b); devcluster mints a kubeconfig for each. */
export const SERVICE_NAMESPACE = 'kubevirt';
export const SERVICE_ACCOUNTS = ['virt-controller', 'virt-api', 'virt-handler'] as const;
export type ServiceAccountName = (typeof SERVICE_ACCOUNTS)[number];

export const ENV = {
  stateDir: 'KUBEVIRT_TS_DEVCLUSTER_STATE',
  instance: 'KUBEVIRT_TS_DEVCLUSTER_INSTANCE',
  hostPort: 'KUBEVIRT_TS_DEVCLUSTER_PORT',
  mode: 'KUBEVIRT_TS_DEVCLUSTER',
  integration: 'KUBEVIRT_TS_INTEGRATION',
} as const;

type Env = Record<string, string | undefined>;

function home(env: Env): string {
  return env.HOME ?? homedir();
}

/** `${XDG_STATE_HOME:-~/.local/state}/kubevirt-ts/devcluster[-INSTANCE]`, or KUBEVIRT_TS_DEVCLUSTER_STATE. */
export function defaultStateDir(env: Env = process.env): string {
  const explicit = env[ENV.stateDir];
  if (explicit) return explicit;
  const base = env.XDG_STATE_HOME || join(home(env), '.local', 'state');
  const instance = devclusterInstance(env);
  return join(base, 'kubevirt-ts', instance ? `devcluster-${instance}` : 'devcluster');
}

/** `${XDG_CACHE_HOME:-~/.cache}/kubevirt-ts`: shared with the toolchain bootstrap (tools/) and CI on this machine. */
export function defaultCacheRoot(env: Env = process.env): string {
  const base = env.XDG_CACHE_HOME || join(home(env), '.cache');
  return join(base, 'kubevirt-ts');
}

export interface StatePaths {
  root: string;
  /** The cluster description `up` writes and the supervisor, `status` and the test harness read. */
  clusterFile: string;
  pki: string;
  kubeconfigs: string;
  etcdData: string;
  logs: string;
  run: string;
  controlSocket: string;
  apiserverSocket: string;
  etcdSocket: string;
  controllerManagerSocket: string;
  schedulerSocket: string;
  /** CoreDNS's readiness endpoint, forwarded from the namespace. */
  dnsReadySocket: string;
  /** CoreDNS's Corefile and kubeconfig. */
  dns: string;
  supervisorPidFile: string;
  supervisorLog: string;
  /** Serialises `up` and `down` on this state dir. */
  lockFile: string;
}

export function statePaths(root: string): StatePaths {
  const run = join(root, 'run');
  const logs = join(root, 'logs');
  return {
    root,
    clusterFile: join(root, 'cluster.json'),
    pki: join(root, 'pki'),
    kubeconfigs: join(root, 'kubeconfig'),
    etcdData: join(root, 'etcd'),
    logs,
    run,
    controlSocket: join(run, 'control.sock'),
    apiserverSocket: join(run, 'apiserver.sock'),
    etcdSocket: join(run, 'etcd.sock'),
    controllerManagerSocket: join(run, 'controller-manager.sock'),
    schedulerSocket: join(run, 'scheduler.sock'),
    dnsReadySocket: join(run, 'coredns-ready.sock'),
    dns: join(root, 'dns'),
    supervisorPidFile: join(run, 'supervisor.pid'),
    supervisorLog: join(logs, 'supervisor.log'),
    lockFile: join(root, 'lock'),
  };
}

/** A unix socket path holds at most 107 bytes; say so up front instead of failing inside a forwarder. */
export const MAX_SOCKET_PATH = 107;

export function componentLogFile(paths: StatePaths, component: string): string {
  return join(paths.logs, `${component}.log`);
}

export function componentPidFile(paths: StatePaths, component: string): string {
  return join(paths.run, `${component}.pid`);
}
