// The bootstrap every service's main calls: parse flags and env (printing --help / --version, exiting 2 on a usage
// error), create the root logger and metrics registry, serve /livez, /readyz and /metrics, and install the SIGTERM
// sequence. The service then registers its readiness checks and shutdown hooks and starts its own work.
import fs from 'node:fs';
import type { DestinationStream, Logger } from 'pino';
import type { Registry } from 'prom-client';
import { ConfigError, flag, parseConfig, type ConfigValues, type FlagDefinitions } from './config.ts';
import { HealthServer } from './health.ts';
import { createLogger, logLevels } from './logger.ts';
import { createMetricsRegistry } from './metrics.ts';
import { Shutdown } from './shutdown.ts';

/** Flags every service has. */
export function commonFlags(defaults: { healthPort: number }) {
  return {
    logLevel: flag.oneOf(logLevels, { description: 'Log level', default: 'info', env: 'LOG_LEVEL' }),
    healthPort: flag.port({
      description: 'Port of the plain-HTTP /livez, /readyz and /metrics endpoints; 0 picks a free port',
      default: defaults.healthPort,
    }),
    healthBindAddress: flag.string({
      description: 'Address the health/metrics endpoints bind to (default: all interfaces)',
      valueName: 'address',
    }),
    shutdownTimeout: flag.duration({
      description: 'Deadline for a graceful shutdown after SIGTERM; keep it below the pod grace period',
      default: 25_000,
    }),
  };
}

export type CommonFlags = ReturnType<typeof commonFlags>;

/** The --kubeconfig flag, for services that talk to the API server. */
export const kubeFlags = {
  kubeconfig: flag.string({
    description:
      'Path to a kubeconfig; default $KUBECONFIG, then the in-cluster service account, then ~/.kube/config',
    valueName: 'path',
  }),
};

export interface ServiceOptions<F extends FlagDefinitions> {
  /** The program name, e.g. `virt-controller`. */
  name: string;
  version: string;
  /** One paragraph for --help. */
  description: string;
  /** The service's own flags; the common flags are added. */
  flags: F;
  /** Default of --health-port. */
  healthPort: number;
  argv?: readonly string[];
  env?: Readonly<Record<string, string | undefined>>;
  /** Default true; tests turn it off. */
  installSignalHandlers?: boolean;
  /** Pause between failing readiness and running shutdown hooks (for webhooks behind a Service). Default 0. */
  shutdownDelayMs?: number;
  logDestination?: DestinationStream;
  /** Test seam for --help, --version and usage errors; default process.exit. Must not return. */
  exit?: (code: number) => never;
  stdout?: (text: string) => void;
  stderr?: (text: string) => void;
}

export interface Service<F extends FlagDefinitions> {
  name: string;
  version: string;
  config: ConfigValues<F & CommonFlags>;
  log: Logger;
  registry: Registry;
  health: HealthServer;
  /** The port /livez, /readyz and /metrics are served on. */
  healthPort: number;
  shutdown: Shutdown;
  /** Aborts when shutdown begins. */
  signal: AbortSignal;
}

/** The `version` of the package.json next to the module's folder (src/ and dist/ are both one level down). */
export function packageVersion(moduleUrl: string): string {
  const pkg = JSON.parse(fs.readFileSync(new URL('../package.json', moduleUrl), 'utf8')) as {
    version?: string;
  };
  return pkg.version ?? '0.0.0';
}

export async function startService<F extends FlagDefinitions>(opts: ServiceOptions<F>): Promise<Service<F>> {
  const exit = opts.exit ?? ((code: number): never => process.exit(code));
  const stdout = opts.stdout ?? ((t: string) => void process.stdout.write(t));
  const stderr = opts.stderr ?? ((t: string) => void process.stderr.write(t));
  const flags = { ...opts.flags, ...commonFlags({ healthPort: opts.healthPort }) };

  let config: ConfigValues<F & CommonFlags>;
  try {
    const parsed = parseConfig(
      { name: opts.name, version: opts.version, description: opts.description, flags },
      opts.argv ?? process.argv.slice(2),
      opts.env ?? process.env,
    );
    if (parsed.kind !== 'values') {
      stdout(parsed.text);
      return exit(0);
    }
    config = parsed.values;
  } catch (err) {
    if (err instanceof ConfigError) {
      stderr(`${opts.name}: ${err.message}\n`);
      return exit(err.exitCode);
    }
    throw err;
  }

  const common = config as ConfigValues<CommonFlags>;
  const logOpts: Parameters<typeof createLogger>[0] = {
    service: opts.name,
    version: opts.version,
    level: common.logLevel,
  };
  if (opts.logDestination) logOpts.destination = opts.logDestination;
  const log = createLogger(logOpts);
  process.on('uncaughtExceptionMonitor', (err, origin) =>
    log.fatal({ err, origin }, 'crashing on an uncaught error'),
  );

  const registry = createMetricsRegistry({ service: opts.name, version: opts.version });
  const healthOpts: ConstructorParameters<typeof HealthServer>[0] = {
    port: common.healthPort,
    registry,
    log,
  };
  if (common.healthBindAddress) healthOpts.host = common.healthBindAddress;
  const health = new HealthServer(healthOpts);
  const shutdownOpts: ConstructorParameters<typeof Shutdown>[0] = { log, timeoutMs: common.shutdownTimeout };
  if (opts.shutdownDelayMs !== undefined) shutdownOpts.delayMs = opts.shutdownDelayMs;
  if (opts.exit) shutdownOpts.exit = opts.exit;
  const shutdown = new Shutdown(shutdownOpts);
  shutdown.signal.addEventListener('abort', () => health.setShuttingDown(), { once: true });
  // Registered first, so it runs last: probes and scrapes keep working while everything else stops.
  shutdown.register('health-server', () => health.close());

  let healthPort: number;
  try {
    healthPort = await health.listen();
  } catch (err) {
    log.fatal({ err }, 'startup failed');
    return exit(1);
  }
  if (opts.installSignalHandlers ?? true) shutdown.installSignalHandlers();
  log.info({ pid: process.pid, nodeVersion: process.version }, `${opts.name} ${opts.version} started`);

  return {
    name: opts.name,
    version: opts.version,
    config,
    log,
    registry,
    health,
    healthPort,
    shutdown,
    signal: shutdown.signal,
  };
}
