// virt-handler's own metrics: the VMIs on its node by phase (KubeVirt's kubevirt_vmi_phase_count, here per node),
// how long one reconcile of a VMI takes, by what it did, and the launcher RPCs that failed at the transport level.
import { counter, gauge, histogram, metricPrefix, type Registry } from '@kubevirt-ts/runtime';
import type { Action } from './decide.ts';
import { phaseOf, type VMI } from './vmi.ts';

export interface HandlerMetrics {
  /** Observes one reconcile: what it decided and whether it succeeded. */
  reconciled(action: Action['kind'] | 'missing', ok: boolean, seconds: number): void;
  launcherRpcError(rpc: string, code: string): void;
}

export function handlerMetrics(registry: Registry, node: string, vmis: () => readonly VMI[]): HandlerMetrics {
  gauge(registry, {
    name: `${metricPrefix}vmi_phase_count`,
    help: 'VirtualMachineInstances on this node, by phase',
    labelNames: ['node', 'phase'],
    collect() {
      this.reset();
      const counts = new Map<string, number>();
      for (const vmi of vmis()) {
        const phase = phaseOf(vmi) || 'Unset';
        counts.set(phase, (counts.get(phase) ?? 0) + 1);
      }
      for (const [phase, n] of counts) this.set({ node, phase }, n);
    },
  });
  const sync = histogram(registry, {
    name: `${metricPrefix}handler_vmi_sync_duration_seconds`,
    help: 'Time one reconcile of a VMI took in virt-handler, by the action it took and its result',
    labelNames: ['action', 'result'],
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  });
  const rpcErrors = counter(registry, {
    name: `${metricPrefix}handler_launcher_rpc_errors_total`,
    help: 'launcher.v1 calls from virt-handler that failed at the transport level, by RPC and gRPC status',
    labelNames: ['rpc', 'code'],
  });
  return {
    reconciled: (action, ok, seconds) => sync.observe({ action, result: ok ? 'success' : 'error' }, seconds),
    launcherRpcError: (rpc, code) => rpcErrors.inc({ rpc, code }),
  };
}
