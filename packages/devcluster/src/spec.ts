// The data `up` hands to the supervisor (cluster.json) and the status the supervisor reports back. Plain JSON
// types, so the CLI, the supervisor and the test harness agree on them without importing each other's code.
import type { NodesState } from './node/setup.ts';

/** How the supervisor decides a component it started is ready (it probes from the host network namespace). */
export type ReadinessProbe =
  /** A unix socket accepts connections (the forwarder's listeners). */
  | { kind: 'unix-connect'; socketPath: string }
  /** A TCP port on the host accepts connections. */
  | { kind: 'tcp-connect'; host: string; port: number }
  /** Plain HTTP over a unix socket answers 200 on `path` (etcd's /health through the forwarder). */
  | { kind: 'http-unix'; socketPath: string; path: string }
  /** HTTPS over a unix socket answers 200 on `path`, verified against `caFile` for `servername`. */
  | {
      kind: 'https-unix';
      socketPath: string;
      path: string;
      caFile: string;
      servername: string;
      certFile?: string;
      keyFile?: string;
    };

export interface ComponentSpec {
  name: string;
  /** Executable and arguments, as run (inside `netns` when set). */
  argv: string[];
  /** Network namespace to run in, through `ip netns exec`; absent: the host's. */
  netns?: string;
  env?: Record<string, string>;
  cwd?: string;
  /** Components that must be ready before this one starts (and before each restart). */
  startAfter?: string[];
  readiness?: ReadinessProbe;
  /** Time between SIGTERM and SIGKILL when stopping. */
  stopTimeoutMs?: number;
  logFile: string;
  pidFile: string;
}

export interface ClusterState {
  formatVersion: 1;
  createdAt: string;
  stateDir: string;
  binDir: string;
  versions: { kubernetes: string; etcd: string; coredns?: string; helm: string };
  network: {
    namespace: string;
    bridge: string;
    subnet: string;
    controlPlaneAddress: string;
    podCidr: string;
    serviceCidr: string;
  };
  apiserver: {
    /** The API server as seen inside the namespace. */
    url: string;
    /** The host forwarder's address. */
    hostUrl: string;
    hostPort: number;
  };
  etcd: { socket: string };
  controlSocket: string;
  kubeconfigs: {
    /** Admin, for use inside the namespace (`devcluster exec`, tests). */
    admin: string;
    /** Admin, for use on the host through the forwarder. */
    adminHost: string;
    /** One per service account in SERVICE_ACCOUNTS, for use inside the namespace. */
    services: Record<string, string>;
    /** The same service accounts, for use on the host. */
    servicesHost: Record<string, string>;
  };
  /** Start order; the supervisor stops them in reverse. */
  components: ComponentSpec[];
  /** The nodes `up --nodes N` made (absent: none); their agents are among the components. */
  nodes?: NodesState;
}

export type ComponentState = 'waiting' | 'starting' | 'ready' | 'backoff' | 'stopping' | 'stopped';

export interface ComponentStatus {
  name: string;
  state: ComponentState;
  pid?: number;
  startedAt?: string;
  /** Restarts after an unexpected exit (intentional restarts do not count). */
  restarts: number;
  lastExit?: { code: number | null; signal: string | null; at: string };
  logFile: string;
}

export interface SupervisorStatus {
  pid: number;
  startedAt: string;
  components: ComponentStatus[];
}
