// The node agent's configuration (node.json in the node's agent state folder), written by `devcluster up` and read
// by the agent process. Plain JSON, so the CLI, the agent and the test harness agree without importing each other.
import { readFile } from 'node:fs/promises';

export interface NodeAgentConfig {
  formatVersion: 1;
  name: string;
  index: number;
  /** The node's network namespace (the agent runs inside it). */
  netns: string;
  /** The node's address on the cluster bridge. */
  address: string;
  stateDir: string;
  /** The node root: everything of this node lives below it. */
  root: string;
  kubernetesVersion: string;
  /** Kubeconfig with the node's client certificate (system:node:<name>, group system:nodes). */
  kubeconfig: string;
  /** The kubelet API's serving certificate (followed by the cluster CA) and key. */
  serving: { cert: string; key: string };
  /** Pods go Running without processes (control-plane benchmarks only; never for a test that claims a VM ran). */
  simulatePods: boolean;
  /** Root of the devcluster cache (image store, QEMU capability cache). */
  cacheRoot: string;
  /** The working tree whose services the project's images run. */
  repoRoot: string;
  /** What the node advertises (the machine's; nodes on one machine overcommit it together). */
  capacity: { cpu: string; memory: string; pods: string; 'ephemeral-storage': string };
  kubeletPort: number;
  /** Taints the Node registers with (as the kubelet's --register-with-taints). */
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
}

export async function readNodeAgentConfig(path: string): Promise<NodeAgentConfig> {
  const config = JSON.parse(await readFile(path, 'utf8')) as NodeAgentConfig;
  if (config.formatVersion !== 1) {
    throw new Error(
      `${path} has format ${String(config.formatVersion)}; this agent reads format 1 (run devcluster up again)`,
    );
  }
  return config;
}
