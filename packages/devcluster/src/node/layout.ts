// Where a devcluster node lives: its name, network namespace and address on the cluster bridge, and the folders
// under its node root. The kubelet's own layout (var/lib/kubelet/pods/<uid>/volumes/…, device-plugins/,
// var/log/pods/…) is reproduced under the root, so code written for a real node (virt-handler's /pods mount,
// its device plugins) finds the same paths here (DESIGN.md §4a). Pure: no I/O.
import { join } from 'node:path';
import { NETWORK } from '../layout.ts';

/** Node names are `dc-node-1` … `dc-node-N`. */
export const NODE_NAME_PREFIX = 'dc-node-';
export const MAX_NODES = 200;
/** Port of the node agent's kubelet API (logs), as a real kubelet's. */
export const KUBELET_PORT = 10250;
/** Bridge inside each node namespace that the node's pods attach to (its address: the pod range's first). */
export const POD_BRIDGE = 'cbr0';
/** The API version of the device-plugin API the node agent serves. */
export const DEVICE_PLUGIN_VERSION = 'v1beta1';

export interface NodeIdentity {
  /** 1-based index; decides the address and the namespace name. */
  index: number;
  name: string;
  /** Network namespace of the node (`kvts-dc-n1`); its pods' namespaces start with the same name. */
  netns: string;
  /** Address on the cluster bridge (`172.30.1.N`). */
  address: string;
  /** The veth end inside the cluster namespace, attached to the cluster bridge. */
  clusterVeth: string;
}

export function nodeIdentity(index: number): NodeIdentity {
  if (!Number.isInteger(index) || index < 1 || index > MAX_NODES) {
    throw new RangeError(`node index ${index} is outside 1..${MAX_NODES}`);
  }
  return {
    index,
    name: `${NODE_NAME_PREFIX}${index}`,
    netns: `${NETWORK.namespacePrefix}-n${index}`,
    address: `172.30.1.${index}`,
    clusterVeth: `kvn${index}`,
  };
}

/** The index of a node name made by nodeIdentity, or undefined for any other name. */
export function nodeIndex(name: string): number | undefined {
  if (!name.startsWith(NODE_NAME_PREFIX)) return undefined;
  const index = Number(name.slice(NODE_NAME_PREFIX.length));
  return Number.isInteger(index) && index >= 1 && index <= MAX_NODES ? index : undefined;
}

/** Network namespace of one pod: the node's namespace name plus 12 hex digits of the pod UID. */
export function podNetns(node: NodeIdentity, podUid: string): string {
  return `${node.netns}-${podUid.replaceAll('-', '').slice(0, 12)}`;
}

/** The node-side veth of a pod (interface names hold at most 15 bytes). */
export function podVeth(podUid: string): string {
  return `kvp${podUid.replaceAll('-', '').slice(0, 11)}`;
}

export interface NodePaths {
  root: string;
  kubelet: string;
  pods: string;
  devicePlugins: string;
  kubeletSocket: string;
  podLogs: string;
  /** The agent's own records (pods, containers, allocations): what a restarted agent reads back. */
  agentState: string;
  podRecords: string;
  containers: string;
  /** The agent's health socket, which the supervisor probes: beside the control plane's in the state dir's run/. */
  agentSocket: string;
  config: string;
  kubeconfig: string;
  serving: { cert: string; key: string };
  /** The node's kube-proxy: its configuration and kubeconfig (`var/lib/kube-proxy`, as kubeadm's DaemonSet mounts). */
  kubeProxy: { dir: string; config: string; kubeconfig: string; healthSocket: string };
}

/** Node roots sit in the state dir's `nodes/` folder: `nodes/dc-node-1/…`. */
export function nodesDir(stateDir: string): string {
  return join(stateDir, 'nodes');
}

export function nodePaths(stateDir: string, name: string): NodePaths {
  const root = join(nodesDir(stateDir), name);
  const kubelet = join(root, 'var', 'lib', 'kubelet');
  const devicePlugins = join(kubelet, 'device-plugins');
  const agentState = join(root, 'var', 'lib', 'devcluster-node');
  return {
    root,
    kubelet,
    pods: join(kubelet, 'pods'),
    devicePlugins,
    kubeletSocket: join(devicePlugins, 'kubelet.sock'),
    podLogs: join(root, 'var', 'log', 'pods'),
    agentState,
    podRecords: join(agentState, 'pods'),
    containers: join(agentState, 'containers'),
    agentSocket: join(stateDir, 'run', `${name}.sock`),
    config: join(agentState, 'node.json'),
    kubeconfig: join(agentState, 'kubelet.kubeconfig'),
    serving: { cert: join(agentState, 'kubelet.crt'), key: join(agentState, 'kubelet.key') },
    kubeProxy: {
      dir: join(root, 'var', 'lib', 'kube-proxy'),
      config: join(root, 'var', 'lib', 'kube-proxy', 'config.conf'),
      kubeconfig: join(root, 'var', 'lib', 'kube-proxy', 'kubeconfig.conf'),
      healthSocket: join(stateDir, 'run', `kube-proxy-${name}.sock`),
    },
  };
}

/** The kubelet's folder of one pod. */
export function podDir(paths: NodePaths, podUid: string): string {
  return join(paths.pods, podUid);
}

/** The kubelet's folder of one volume of a pod, e.g. `…/volumes/kubernetes.io~empty-dir/sockets`. */
export function podVolumeDir(paths: NodePaths, podUid: string, plugin: string, volume: string): string {
  return join(paths.pods, podUid, 'volumes', `kubernetes.io~${plugin}`, volume);
}

/** The kubelet's log folder of one pod: `var/log/pods/<namespace>_<name>_<uid>`. */
export function podLogDir(paths: NodePaths, namespace: string, name: string, uid: string): string {
  return join(paths.podLogs, `${namespace}_${name}_${uid}`);
}

/** One run of a container logs to `<pod log dir>/<container>/<restartCount>.log`, as the kubelet does. */
export function containerLogFile(
  paths: NodePaths,
  pod: { namespace: string; name: string; uid: string },
  container: string,
  restartCount: number,
): string {
  return join(podLogDir(paths, pod.namespace, pod.name, pod.uid), container, `${restartCount}.log`);
}
