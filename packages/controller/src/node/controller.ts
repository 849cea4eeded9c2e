// The node controller (KubeVirt's watch/node): a node whose virt-handler has not written its heartbeat for 5
// minutes is marked unschedulable for VMs (kubevirt.io/schedulable=false), and each of its VMIs is failed with
// reason NodeUnresponsive once its launcher pod is really gone (deleted, or no longer alive). There is no fencing:
// while a pod may still run the guest, the VMI is left alone, so a VM is never started twice on shared storage.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { describeApiError, isNotFound, objectKey, type ReconcileResult } from '@kubevirt-ts/runtime';
import { ANNOTATIONS, LABELS, REASONS } from '../constants.ts';
import { RetryableError, type ControllerKit } from '../controller-kit.ts';
import { controllerOf, isFinal, isPodAlive, timeMs, type VMI } from '../objects.ts';

/** KubeVirt's heartBeatTimeout. */
export const HEARTBEAT_TIMEOUT_MS = 5 * 60_000;
/** KubeVirt's recheckInterval: an existing node is looked at again this often. */
export const RECHECK_INTERVAL_MS = 60_000;

export interface NodeControllerOptions {
  heartbeatTimeoutMs?: number;
  recheckIntervalMs?: number;
}

/**
 * Whether the handler on a node is unresponsive: the node is gone, or its heartbeat is older than the timeout. A
 * node that never had a heartbeat (no handler yet) is not. An unparsable heartbeat is reported, not guessed.
 */
export function nodeUnresponsive(
  node: V1Node | undefined,
  now: Date,
  timeoutMs = HEARTBEAT_TIMEOUT_MS,
): boolean {
  if (node === undefined) return true;
  const heartbeat = node.metadata?.annotations?.[ANNOTATIONS.heartbeat];
  if (heartbeat === undefined) return false;
  const at = timeMs(heartbeat);
  if (at === undefined)
    throw new Error(
      `node ${node.metadata?.name ?? ''}: heartbeat annotation ${JSON.stringify(heartbeat)} is not a timestamp`,
    );
  return at < now.getTime() - timeoutMs;
}

/** The VMIs on a node that have no live launcher pod any more: those may be failed. */
export function vmisWithoutLivePods(vmis: readonly VMI[], podsOnNode: readonly V1Pod[]): VMI[] {
  const alive = new Set<string>();
  for (const pod of podsOnNode) {
    const ref = controllerOf(pod);
    if (ref?.kind === 'VirtualMachineInstance' && isPodAlive(pod)) alive.add(ref.uid);
  }
  return vmis.filter((v) => !alive.has(v.metadata?.uid ?? ''));
}

export class NodeController {
  readonly name = 'node';
  readonly #kit: ControllerKit;
  readonly #timeoutMs: number;
  readonly #recheckMs: number;

  constructor(kit: ControllerKit, opts: NodeControllerOptions = {}) {
    this.#kit = kit;
    this.#timeoutMs = opts.heartbeatTimeoutMs ?? HEARTBEAT_TIMEOUT_MS;
    this.#recheckMs = opts.recheckIntervalMs ?? RECHECK_INTERVAL_MS;
  }

  watch(enqueue: (key: string) => void): () => void {
    const { nodes, vmis } = this.#kit.caches;
    const onNode = (node: V1Node) => enqueue(objectKey(node));
    const onVMI = (vmi: VMI) => {
      const node = vmi.metadata?.labels?.[LABELS.nodeName];
      if (node) enqueue(node);
    };
    const removers = [
      nodes.on({ add: onNode, update: onNode, delete: onNode }),
      vmis.on({ add: onVMI, update: onVMI }),
    ];
    return () => removers.forEach((r) => r());
  }

  keys(): string[] {
    return this.#kit.caches.nodes.informer.keys();
  }

  async reconcile(name: string): Promise<ReconcileResult | void> {
    const kit = this.#kit;
    const node = kit.caches.nodes.get(name);
    const log = kit.log.child({ kind: 'Node', name });
    let unresponsive: boolean;
    try {
      unresponsive = nodeUnresponsive(node, kit.now(), this.#timeoutMs);
    } catch (err) {
      log.error(
        { error: (err as Error).message },
        'cannot tell whether the node is responsive; not rechecking it',
      );
      return;
    }
    if (unresponsive) {
      if (node !== undefined && node.metadata?.labels?.[LABELS.schedulable] === 'true') {
        kit.recorder.event(
          { apiVersion: 'v1', kind: 'Node', metadata: node.metadata },
          'Normal',
          REASONS.nodeUnresponsive,
          'virt-handler is not responsive, marking node as unresponsive',
        );
        try {
          await kit.client.mergePatchNode(name, { metadata: { labels: { [LABELS.schedulable]: 'false' } } });
          log.warn('virt-handler heartbeat is stale; marked the node unschedulable for VMs');
        } catch (err) {
          if (!isNotFound(err))
            throw new RetryableError(`cannot mark node ${name} unschedulable: ${describeApiError(err)}`);
        }
      }
      await this.#failOrphanedVMIs(name, log);
    }
    if (node !== undefined) return { requeueAfter: this.#recheckMs };
  }

  async #failOrphanedVMIs(nodeName: string, log: ControllerKit['log']): Promise<void> {
    const kit = this.#kit;
    const vmis = kit.caches.vmis
      .list()
      .filter((v) => v.metadata?.labels?.[LABELS.nodeName] === nodeName && !isFinal(v));
    if (vmis.length === 0) return;
    const pods = kit.caches.pods.list().filter((p) => p.spec?.nodeName === nodeName);
    const errors: string[] = [];
    // One at a time: when something is already wrong, do not add a write storm.
    for (const vmi of vmisWithoutLivePods(vmis, pods)) {
      kit.recorder.event(
        vmi,
        'Normal',
        REASONS.nodeUnresponsive,
        `virt-handler on node ${nodeName} is not responsive, marking VMI as failed`,
      );
      try {
        await kit.client.jsonPatchCustom(
          'VirtualMachineInstance',
          vmi.metadata?.namespace ?? '',
          vmi.metadata?.name ?? '',
          [
            { op: 'test', path: '/status/phase', value: vmi.status?.phase },
            { op: 'replace', path: '/status/phase', value: 'Failed' },
            { op: 'add', path: '/status/reason', value: REASONS.nodeUnresponsive },
          ],
        );
        log.warn({ vmi: objectKey(vmi) }, 'failed a VMI whose node is unresponsive and whose pod is gone');
      } catch (err) {
        if (!isNotFound(err)) errors.push(`${objectKey(vmi)}: ${describeApiError(err)}`);
      }
    }
    if (errors.length > 0)
      throw new RetryableError(`cannot fail VMIs of node ${nodeName}: ${errors.join('; ')}`);
  }
}
