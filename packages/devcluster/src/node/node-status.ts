// The node's presence in the API, as the kubelet keeps it: registers the Node (labels a kubelet may set under
// NodeRestriction), posts its status (addresses, capacity/allocatable including the device plugins' extended
// resources, Ready and pressure conditions, node info, the kubelet API port) on every change and once a minute,
// and renews its Lease in kube-node-lease every 10 s, which is what the node lifecycle controller watches.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import os from 'node:os';
import {
  CoordinationV1Api,
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  V1MicroTime,
  type KubeConfig,
  type V1Node,
} from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { NodeAgentConfig } from './config.ts';
import type { ResourceCounts } from './deviceplugin/manager.ts';

export const LEASE_NAMESPACE = 'kube-node-lease';
const LEASE_DURATION_SECONDS = 40;
const LEASE_RENEW_MS = 10_000;
const STATUS_REFRESH_MS = 60_000;
export const DEVCLUSTER_NODE_LABEL = 'node.kubevirt-ts.dev/devcluster';
export const SIMULATED_NODE_LABEL = 'node.kubevirt-ts.dev/simulate-pods';

const strategic = () => setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const merge = () => setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return fallback;
  }
}

function osImage(): string {
  const release = readOr('/etc/os-release', '');
  return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(release)?.[1] ?? 'Linux';
}

/** An id per node (machine-id style), stable across restarts: nodes are separate machines to the cluster. */
function machineId(name: string): string {
  return createHash('sha256')
    .update(`${readOr('/etc/machine-id', 'devcluster')}/${name}`)
    .digest('hex')
    .slice(0, 32);
}

export function nodeLabels(config: NodeAgentConfig): Record<string, string> {
  const arch = process.arch === 'x64' ? 'amd64' : process.arch;
  return {
    'kubernetes.io/hostname': config.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': arch,
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': arch,
    [DEVCLUSTER_NODE_LABEL]: 'true',
    // Said on the Node itself, so no test or demo mistakes a simulated pod for one that ran.
    ...(config.simulatePods ? { [SIMULATED_NODE_LABEL]: 'true' } : {}),
  };
}

export class NodeStatusManager {
  readonly #config: NodeAgentConfig;
  readonly #core: CoreV1Api;
  readonly #coordination: CoordinationV1Api;
  readonly #log: Logger;
  readonly #devices: () => Map<string, ResourceCounts>;
  /** Extended resources this agent has published, so a vanished one is removed from the Node. */
  readonly #published = new Set<string>();
  #leaseTimer: NodeJS.Timeout | undefined;
  #statusTimer: NodeJS.Timeout | undefined;
  #posting: Promise<void> = Promise.resolve();
  #dirty = false;

  constructor(opts: {
    config: NodeAgentConfig;
    kc: KubeConfig;
    log: Logger;
    devices: () => Map<string, ResourceCounts>;
  }) {
    this.#config = opts.config;
    this.#core = opts.kc.makeApiClient(CoreV1Api);
    this.#coordination = opts.kc.makeApiClient(CoordinationV1Api);
    this.#log = opts.log.child({ component: 'node-status' });
    this.#devices = opts.devices;
  }

  /** Creates the Node, or takes over the one a previous run of this agent registered. */
  async register(): Promise<V1Node> {
    const name = this.#config.name;
    try {
      const node = await this.#core.createNode({
        body: {
          metadata: {
            name,
            labels: nodeLabels(this.#config),
            annotations: { 'volumes.kubernetes.io/controller-managed-attach-detach': 'true' },
          },
          ...(this.#config.taints?.length ? { spec: { taints: this.#config.taints } } : {}),
          // The address at once, as the kubelet registers a Node: the node's kube-proxy waits for it.
          status: { addresses: [{ type: 'InternalIP', address: this.#config.address }] },
        },
      });
      this.#log.info({ node: name }, 'node registered');
      return node;
    } catch (err) {
      if ((err as { code?: number }).code !== 409) throw err;
      // Labels others added (e.g. virt-handler's kubevirt.io/schedulable) stay: a merge patch only sets ours.
      const node = await this.#core.patchNode(
        { name, body: { metadata: { labels: nodeLabels(this.#config) } } },
        merge(),
      );
      this.#log.info({ node: name }, 'node already registered; taking it over');
      return node;
    }
  }

  /** Polls the Node until the controller-manager gave it a pod range. */
  async waitForPodCidr(timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const node = await this.#core.readNode({ name: this.#config.name });
      const cidr = node.spec?.podCIDR;
      if (cidr) return cidr;
      if (Date.now() > deadline) {
        throw new Error(
          `node ${this.#config.name} got no pod range (spec.podCIDR) within ${timeoutMs / 1000} s; is kube-controller-manager running with --allocate-node-cidrs? (devcluster logs kube-controller-manager)`,
        );
      }
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  start(): void {
    const renew = () => {
      this.#renewLease().catch((err: unknown) => this.#log.warn({ err }, 'lease renewal failed; retrying'));
      this.#leaseTimer = setTimeout(renew, LEASE_RENEW_MS);
    };
    renew();
    const refresh = () => {
      this.update();
      this.#statusTimer = setTimeout(refresh, STATUS_REFRESH_MS);
    };
    refresh();
  }

  stop(): void {
    clearTimeout(this.#leaseTimer);
    clearTimeout(this.#statusTimer);
  }

  /** Posts the status soon (coalesced: one post in flight, one more queued). */
  update(): void {
    if (this.#dirty) return;
    this.#dirty = true;
    this.#posting = this.#posting.then(async () => {
      this.#dirty = false;
      try {
        await this.postStatus();
      } catch (err) {
        this.#log.warn({ err }, 'node status update failed; retrying in 2 s');
        setTimeout(() => this.update(), 2_000);
      }
    });
  }

  /** Resolves once every queued status post has run. */
  async flush(): Promise<void> {
    await this.#posting;
  }

  async postStatus(): Promise<void> {
    const now = new Date().toISOString();
    const base = this.#config.capacity;
    const capacity: Record<string, string | null> = { ...base };
    const allocatable: Record<string, string | null> = { ...base };
    const devices = this.#devices();
    for (const [resource, counts] of devices) {
      capacity[resource] = String(counts.capacity);
      allocatable[resource] = String(counts.allocatable);
    }
    for (const resource of this.#published) {
      if (!devices.has(resource)) {
        capacity[resource] = null;
        allocatable[resource] = null;
      }
    }
    const condition = (type: string, status: 'True' | 'False', reason: string, message: string) => ({
      type,
      status,
      reason,
      message,
      lastHeartbeatTime: now,
    });
    const body = {
      status: {
        capacity,
        allocatable,
        conditions: [
          condition(
            'MemoryPressure',
            'False',
            'KubeletHasSufficientMemory',
            'kubelet has sufficient memory available',
          ),
          condition('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'kubelet has no disk pressure'),
          condition(
            'PIDPressure',
            'False',
            'KubeletHasSufficientPID',
            'kubelet has sufficient PID available',
          ),
          condition(
            'Ready',
            'True',
            'KubeletReady',
            'kubelet is posting ready status (devcluster node agent)',
          ),
        ],
        // No Hostname address: the API server dials the first preferred type it finds, and node names do not resolve.
        addresses: [{ type: 'InternalIP', address: this.#config.address }],
        daemonEndpoints: { kubeletEndpoint: { Port: this.#config.kubeletPort } },
        nodeInfo: {
          machineID: machineId(this.#config.name),
          systemUUID: machineId(`${this.#config.name}/uuid`),
          bootID: readOr('/proc/sys/kernel/random/boot_id', ''),
          kernelVersion: os.release(),
          osImage: osImage(),
          containerRuntimeVersion: 'devcluster://0.1.0',
          kubeletVersion: this.#config.kubernetesVersion,
          kubeProxyVersion: '',
          operatingSystem: 'linux',
          architecture: process.arch === 'x64' ? 'amd64' : process.arch,
        },
      },
    };
    await this.#core.patchNodeStatus({ name: this.#config.name, body }, strategic());
    for (const resource of this.#published) if (!devices.has(resource)) this.#published.delete(resource);
    for (const resource of devices.keys()) this.#published.add(resource);
  }

  async #renewLease(): Promise<void> {
    const name = this.#config.name;
    // A MicroTime: the API server parses exactly six fractional digits.
    const renewTime = new V1MicroTime(Date.now());
    try {
      await this.#coordination.patchNamespacedLease(
        {
          name,
          namespace: LEASE_NAMESPACE,
          body: {
            spec: {
              holderIdentity: name,
              renewTime: renewTime.toISOString(),
              leaseDurationSeconds: LEASE_DURATION_SECONDS,
            },
          },
        },
        merge(),
      );
    } catch (err) {
      if ((err as { code?: number }).code !== 404) throw err;
      const node = await this.#core.readNode({ name });
      await this.#coordination.createNamespacedLease({
        namespace: LEASE_NAMESPACE,
        body: {
          metadata: {
            name,
            namespace: LEASE_NAMESPACE,
            // As the kubelet does: the Lease goes away with its Node.
            ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name, uid: node.metadata?.uid ?? '' }],
          },
          spec: { holderIdentity: name, leaseDurationSeconds: LEASE_DURATION_SECONDS, renewTime },
        },
      });
    }
  }
}
