// What `devcluster up --nodes N` does for nodes: per node a node root with the kubelet's layout, credentials issued
// by the cluster CA, the agent's node.json, a network namespace joined to the cluster bridge, and the components the
// supervisor runs inside that namespace (the agent and the node's kube-proxy, once the API server is ready);
// once the control plane serves, the no-provisioner StorageClass for static hostPath PVs.
import { availableParallelism, totalmem } from 'node:os';
import { mkdir, statfs, writeFile, rename } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ApiException, StorageV1Api, type KubeConfig } from '@kubernetes/client-node';
import { COMPONENT_NAMES } from '../components.ts';
import { componentLogFile, componentPidFile, type StatePaths } from '../layout.ts';
import type { ComponentSpec } from '../spec.ts';
import type { NodeAgentConfig } from './config.ts';
import { writeNodeCredentials } from './identity.ts';
import { KUBELET_PORT, MAX_NODES, nodeIdentity, nodePaths } from './layout.ts';
import { createNodeNetwork, routeServicesThrough } from './network.ts';
import { kubeProxyComponent, kubeProxyHealthForward, writeKubeProxyFiles } from './proxy.ts';

/** The StorageClass of static hostPath/local PersistentVolumes: no provisioner, bound by the real PV controller. */
export const STATIC_STORAGE_CLASS = 'devcluster-static';
export const DEFAULT_NODE_COUNT = 2;

export interface NodeSummary {
  name: string;
  index: number;
  address: string;
  netns: string;
  root: string;
  config: string;
}

export interface NodesState {
  simulatePods: boolean;
  nodes: NodeSummary[];
}

/** The repository root: this file is packages/devcluster/{src,dist}/node/setup.{ts,js}. */
export function repoRoot(): string {
  return fileURLToPath(new URL('../../../../', import.meta.url));
}

export function nodeCount(value: string | number | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > MAX_NODES) {
    throw new Error(`--nodes must be a whole number from 0 to ${MAX_NODES}, not ${JSON.stringify(value)}`);
  }
  return n;
}

async function machineCapacity(dir: string): Promise<NodeAgentConfig['capacity']> {
  const fs = await statfs(dir);
  return {
    cpu: String(availableParallelism()),
    memory: `${Math.floor(totalmem() / 1024)}Ki`,
    pods: '110',
    'ephemeral-storage': `${Math.floor((fs.bavail * fs.bsize) / 1024)}Ki`,
  };
}

/**
 * What a node in simulate mode advertises: no pod there uses anything, so, as KWOK's nodes do, it reports a large
 * machine (32 cores, 256 GiB, 250 pods) rather than this one's, and a control-plane benchmark's hundreds of pods
 * fit on two nodes.
 */
async function simulatedCapacity(dir: string): Promise<NodeAgentConfig['capacity']> {
  return { ...(await machineCapacity(dir)), cpu: '32', memory: '256Gi', pods: '250' };
}

export interface PrepareNodesInput {
  paths: StatePaths;
  count: number;
  simulatePods: boolean;
  apiserverUrl: string;
  kubernetesVersion: string;
  cacheRoot: string;
  /** Where kube-proxy is (the control plane's binary cache). */
  binDir: string;
}

/**
 * Node roots, credentials and agent configs; returns the supervisor components of the agents and kube-proxies,
 * and the namespace forwarder's rules that let the supervisor probe each kube-proxy.
 */
export async function prepareNodes(
  input: PrepareNodesInput,
): Promise<{ state: NodesState; components: ComponentSpec[]; forwards: string[] }> {
  const here = fileURLToPath(import.meta.url);
  const main = join(here, '..', `main${extname(here)}`);
  const conditions = process.execArgv.filter((arg) => arg.startsWith('--conditions') || arg === '-C');
  const nodes: NodeSummary[] = [];
  const components: ComponentSpec[] = [];
  const forwards: string[] = [];
  for (let index = 1; index <= input.count; index++) {
    const node = nodeIdentity(index);
    const paths = nodePaths(input.paths.root, node.name);
    for (const dir of [paths.pods, paths.devicePlugins, paths.podLogs, paths.podRecords, paths.containers]) {
      await mkdir(dir, { recursive: true, mode: 0o755 });
    }
    await writeNodeCredentials(input.paths.pki, node, paths, input.apiserverUrl);
    const config: NodeAgentConfig = {
      formatVersion: 1,
      name: node.name,
      index,
      netns: node.netns,
      address: node.address,
      stateDir: input.paths.root,
      root: paths.root,
      kubernetesVersion: input.kubernetesVersion,
      kubeconfig: paths.kubeconfig,
      serving: paths.serving,
      simulatePods: input.simulatePods,
      cacheRoot: input.cacheRoot,
      repoRoot: repoRoot(),
      capacity: await (input.simulatePods ? simulatedCapacity : machineCapacity)(paths.root),
      kubeletPort: KUBELET_PORT,
    };
    await writeFile(`${paths.config}.tmp`, `${JSON.stringify(config, null, 2)}\n`, { mode: 0o600 });
    await rename(`${paths.config}.tmp`, paths.config);
    nodes.push({
      name: node.name,
      index,
      address: node.address,
      netns: node.netns,
      root: paths.root,
      config: paths.config,
    });
    components.push({
      name: node.name,
      // nsenter, not `ip netns exec`: the agent must stay in the host's mount namespace, where the pod network
      // namespaces it creates (/run/netns bind mounts) are visible to everyone.
      argv: [
        'nsenter',
        `--net=/run/netns/${node.netns}`,
        '--',
        process.execPath,
        ...conditions,
        main,
        paths.config,
      ],
      startAfter: [COMPONENT_NAMES.apiserver],
      readiness: { kind: 'unix-connect', socketPath: paths.agentSocket },
      stopTimeoutMs: 15_000,
      logFile: componentLogFile(input.paths, node.name),
      pidFile: componentPidFile(input.paths, node.name),
    });
    await writeKubeProxyFiles(input.paths.pki, node, paths, input.apiserverUrl);
    components.push(kubeProxyComponent(input.binDir, input.paths, node, paths, COMPONENT_NAMES.apiserver));
    forwards.push(kubeProxyHealthForward(node, paths));
  }
  return { state: { simulatePods: input.simulatePods, nodes }, components, forwards };
}

/**
 * The nodes' network namespaces, joined to the cluster bridge (after the cluster namespace exists), and the cluster
 * namespace's route to the service range through the first node, whose kube-proxy translates ClusterIPs for the
 * processes there (the test runner, `devcluster exec`) as it does for its own pods.
 */
export async function createNodeNetworks(state: NodesState | undefined): Promise<void> {
  for (const summary of state?.nodes ?? []) await createNodeNetwork(nodeIdentity(summary.index));
  const first = state?.nodes[0];
  if (first) await routeServicesThrough(nodeIdentity(first.index));
}

/** Cluster objects the nodes' pods rely on: the no-provisioner StorageClass for static hostPath PVs. */
export async function prepareClusterForNodes(admin: KubeConfig): Promise<void> {
  const storage = admin.makeApiClient(StorageV1Api);
  try {
    await storage.createStorageClass({
      body: {
        metadata: {
          name: STATIC_STORAGE_CLASS,
          labels: { 'app.kubernetes.io/managed-by': 'devcluster' },
          annotations: {
            'kubevirt-ts.dev/description': 'static hostPath/local PersistentVolumes on devcluster nodes',
          },
        },
        provisioner: 'kubernetes.io/no-provisioner',
        volumeBindingMode: 'WaitForFirstConsumer',
        reclaimPolicy: 'Retain',
      },
    });
  } catch (err) {
    if (!(err instanceof ApiException && err.code === 409)) throw err;
  }
}
