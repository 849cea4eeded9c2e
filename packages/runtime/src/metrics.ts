// The process's Prometheus registry. Our own metrics are prefixed `kubevirt_` (as KubeVirt's are, where we mirror
// one); the default process/Node.js metrics keep their standard names so stock dashboards work.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { CounterConfiguration, GaugeConfiguration, HistogramConfiguration } from 'prom-client';

export { Registry } from 'prom-client';

export const metricPrefix = 'kubevirt_';

export interface MetricsRegistryOptions {
  service: string;
  version: string;
  /** Collect prom-client's default process metrics (CPU, memory, event loop lag, GC). Default true. */
  defaultMetrics?: boolean;
}

/** A fresh registry with the default process metrics and a `kubevirt_build_info` gauge set to 1. */
export function createMetricsRegistry(opts: MetricsRegistryOptions): Registry {
  const registry = new Registry();
  if (opts.defaultMetrics ?? true) collectDefaultMetrics({ register: registry });
  const info = new Gauge({
    name: `${metricPrefix}build_info`,
    help: 'Build information of this kubevirt-ts service; always 1',
    labelNames: ['service', 'version', 'node_version'],
    registers: [registry],
  });
  info.set({ service: opts.service, version: opts.version, node_version: process.version }, 1);
  return registry;
}

// Several components (one workqueue per controller, say) share a metric and tell themselves apart by a label,
// so a metric is created on first use and looked up afterwards; registering the same name twice would throw.
function getOrCreate<M>(registry: Registry, name: string, create: () => M): M {
  const existing = registry.getSingleMetric(name);
  return existing !== undefined ? (existing as M) : create();
}

export function counter<L extends string>(
  registry: Registry,
  cfg: Omit<CounterConfiguration<L>, 'registers'>,
): Counter<L> {
  return getOrCreate(registry, cfg.name, () => new Counter<L>({ ...cfg, registers: [registry] }));
}

export function gauge<L extends string>(
  registry: Registry,
  cfg: Omit<GaugeConfiguration<L>, 'registers'>,
): Gauge<L> {
  return getOrCreate(registry, cfg.name, () => new Gauge<L>({ ...cfg, registers: [registry] }));
}

export function histogram<L extends string>(
  registry: Registry,
  cfg: Omit<HistogramConfiguration<L>, 'registers'>,
): Histogram<L> {
  return getOrCreate(registry, cfg.name, () => new Histogram<L>({ ...cfg, registers: [registry] }));
}
