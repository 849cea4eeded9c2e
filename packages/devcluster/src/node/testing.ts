// Test helpers for suites that run pods on devcluster nodes (re-exported by '@kubevirt-ts/devcluster/testing').
// They find the nodes through the API (Ready Nodes with devcluster's label), refuse simulated ones, and pin pods
// to a node.
import { readFile } from 'node:fs/promises';
import { CoreV1Api, type KubeConfig, type V1Pod, type V1PodSpec } from '@kubernetes/client-node';
import { DevclusterError } from '../errors.ts';
import { ENV, defaultStateDir } from '../layout.ts';
import { nodePaths, type NodePaths } from './layout.ts';
import { DEVCLUSTER_NODE_LABEL, SIMULATED_NODE_LABEL } from './node-status.ts';

export interface TestNode {
  name: string;
  address: string;
  podCIDR: string;
  /** The node's folders (node root, kubelet layout) on this machine. */
  paths: NodePaths;
}

/**
 * The devcluster's Ready nodes, at least `min` of them. Fails with what to do when there are fewer, or when the
 * nodes simulate pods (that mode runs no process, so no test may rely on it).
 */
export async function devclusterNodes(kc: KubeConfig, min = 1): Promise<TestNode[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const list = await core.listNode({ labelSelector: DEVCLUSTER_NODE_LABEL });
  const simulated = list.items.filter((n) => n.metadata?.labels?.[SIMULATED_NODE_LABEL] === 'true');
  if (simulated.length > 0) {
    throw new DevclusterError(
      `devcluster runs with --simulate-pods (nodes ${simulated.map((n) => n.metadata?.name).join(', ')}): pods run no process there`,
      'restart it without: devcluster down && devcluster up',
    );
  }
  const ready = list.items.filter(
    (n) => n.spec?.podCIDR && n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
  );
  if (ready.length < min) {
    throw new DevclusterError(
      `these tests need ${min} Ready devcluster node(s); the cluster has ${ready.length}`,
      `start devcluster with nodes: devcluster down && devcluster up --nodes ${Math.max(min, 2)} (make integration does)`,
    );
  }
  const stateDir = process.env[ENV.stateDir] ?? defaultStateDir();
  return ready
    .map((n) => ({
      name: n.metadata?.name ?? '',
      address: n.status?.addresses?.find((a) => a.type === 'InternalIP')?.address ?? '',
      podCIDR: n.spec?.podCIDR ?? '',
      paths: nodePaths(stateDir, n.metadata?.name ?? ''),
    }))
    .sort((a, b) => a.name.localeCompare(b.name, 'en', { numeric: true }));
}

/** Pins a pod to one node (and tolerates whatever taints a developer's node has). */
export function onNode(name: string): Pick<V1PodSpec, 'nodeSelector' | 'tolerations'> {
  return { nodeSelector: { 'kubernetes.io/hostname': name }, tolerations: [{ operator: 'Exists' }] };
}

/** Polls the pod until `check` returns true, and resolves to it; the timeout is a generous semantic bound. */
export async function waitForPod(
  core: CoreV1Api,
  namespace: string,
  name: string,
  check: (pod: V1Pod) => boolean,
  options: { timeoutMs?: number; description?: string } = {},
): Promise<V1Pod> {
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let last: V1Pod | undefined;
  for (;;) {
    try {
      last = await core.readNamespacedPod({ name, namespace });
      if (check(last)) return last;
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
    }
    if (Date.now() > deadline) {
      const status = last?.status
        ? JSON.stringify({
            phase: last.status.phase,
            containers: last.status.containerStatuses?.map((c) => ({
              name: c.name,
              state: c.state,
              lastState: c.lastState,
              restartCount: c.restartCount,
            })),
          })
        : 'no pod';
      throw new Error(
        `timed out waiting for pod ${namespace}/${name}${options.description ? ` (${options.description})` : ''}; last status: ${status}`,
      );
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** True when the container named is running. */
export function running(pod: V1Pod, container?: string): boolean {
  const statuses = pod.status?.containerStatuses ?? [];
  return statuses.some(
    (c) => (container === undefined || c.name === container) && c.state?.running !== undefined,
  );
}

/** A node's agent configuration as `up` wrote it. */
export async function nodeAgentConfig(node: TestNode): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(node.paths.config, 'utf8')) as Record<string, unknown>;
}
