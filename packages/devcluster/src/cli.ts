#!/usr/bin/env node
// The devcluster command line. Progress and errors go to stderr; what is meant for a shell (env's exports) to
// stdout. Run from source: node --conditions=@kubevirt-ts/source packages/devcluster/src/cli.ts COMMAND, or
// `pnpm devcluster COMMAND` from the repo root.
import { open, stat } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { ensureBinaries } from './binaries.ts';
import {
  clusterStatus,
  down,
  execInCluster,
  loadKubeConfig,
  readClusterState,
  requireRunning,
  runningSupervisor,
  tailFile,
  up,
  type UpResult,
} from './cluster.ts';
import { DevclusterError, errorMessage } from './errors.ts';
import { podLogFile, parsePodLogTarget } from './node/logs.ts';
import { DEFAULT_NODE_COUNT, nodeCount } from './node/setup.ts';
import { compactEtcd, restartApiServer } from './harness.ts';
import { runDemo } from './demo.ts';
import { expose } from './expose.ts';
import { defaultCacheRoot, defaultStateDir, ENV, statePaths } from './layout.ts';
import type { ClusterState } from './spec.ts';

const USAGE = `usage: devcluster COMMAND

  up [--port N] [--nodes N] [--simulate-pods]
                           start the control plane and N nodes (default 2) that run pods (builds binaries on first
                           use); harmless when already up. --simulate-pods: pods go Running without processes
                           (control-plane benchmarks only)
  down [--keep-state]      stop everything and remove the namespace and state (keep PKI, etcd data, logs)
  status                   components, pids, restarts and /readyz (exit 0 ready, 1 not ready, 3 not running)
  env [--inside]           shell exports for kubectl/helm: eval "$(devcluster env)"
  logs [COMPONENT | pod/NAMESPACE/NAME[/CONTAINER]] [-f] [-n N] [-p]
                           a component's log (all components' tails without COMPONENT)
  exec -- CMD [ARGS…]      run CMD inside the cluster's network namespace (KUBECONFIG set for it)
  test [--simulate-pods] -- CMD [ARGS…]
                           up, run CMD inside the namespace with KUBEVIRT_TS_INTEGRATION=1, down; exits with CMD's code
                           (${ENV.mode}=keep: use a running devcluster and leave it up; --simulate-pods: nodes in
                           simulate mode, for control-plane benchmarks)
  demo                     2 nodes, helm install the chart, boot examples/vm-demo.yaml, show its IP and console,
                           and fetch the guest's web page from another pod
  expose NAME --port P [--target-port T] [--namespace NS] [--address IP]
                           a selector-less Service + EndpointSlice so the API server reaches a process run from source
  build [--force]          only build/fetch the binaries into the cache

State: ${defaultStateDir()}   Cache: ${defaultCacheRoot()}/k8s/`;

const say = (line: string) => process.stderr.write(`${line}\n`);
const progress = (line: string) => say(`devcluster: ${line}`);

function splitAtDoubleDash(args: string[]): { own: string[]; command: string[] } {
  const at = args.indexOf('--');
  return at < 0 ? { own: args, command: [] } : { own: args.slice(0, at), command: args.slice(at + 1) };
}

function summary(result: UpResult, elapsedMs: number): string {
  const { state } = result;
  const seconds = (elapsedMs / 1000).toFixed(1);
  const headline = result.alreadyRunning
    ? `devcluster is already up (Kubernetes ${state.versions.kubernetes}); checked in ${seconds} s`
    : `devcluster is up: Kubernetes ${state.versions.kubernetes}, etcd ${state.versions.etcd} (ready in ${seconds} s)`;
  return [
    headline,
    `  API server   ${state.apiserver.url} inside namespace ${state.network.namespace}; ${state.apiserver.hostUrl} on the host`,
    `  kubeconfig   ${state.kubeconfigs.adminHost} (host), ${state.kubeconfigs.admin} (inside)`,
    `  services     ${Object.keys(state.kubeconfigs.services).join(', ')}: kubeconfigs in ${state.stateDir}/kubeconfig/`,
    `  state, logs  ${state.stateDir}`,
    '  use it       eval "$(pnpm -s devcluster env)"; kubectl get --raw /readyz',
    '               pnpm devcluster exec -- COMMAND   (runs inside the namespace)',
  ].join('\n');
}

async function cmdUp(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: { port: { type: 'string' }, nodes: { type: 'string' }, 'simulate-pods': { type: 'boolean' } },
  });
  const started = Date.now();
  const result = await up({
    progress,
    ...(values.port ? { hostPort: Number(values.port) } : {}),
    ...(values.nodes !== undefined ? { nodes: nodeCount(values.nodes, DEFAULT_NODE_COUNT) } : {}),
    ...(values['simulate-pods'] ? { simulatePods: true } : {}),
  });
  say(summary(result, Date.now() - started));
  return 0;
}

async function cmdDown(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'keep-state': { type: 'boolean' } } });
  const result = await down({ progress, keepState: values['keep-state'] ?? false });
  const what = result.stopped.length > 0 ? `stopped ${result.stopped.join(', ')}` : 'nothing was running';
  say(`devcluster: ${what}; ${result.removedState ? 'state removed' : `state kept in ${defaultStateDir()}`}`);
  return 0;
}

async function cmdStatus(): Promise<number> {
  const status = await clusterStatus();
  if (!status.running || !status.supervisor || !status.state) {
    say(`devcluster is not running${status.state ? ` (state kept in ${status.state.stateDir})` : ''}`);
    return 3;
  }
  const { supervisor, state } = status;
  say(
    `devcluster is running: Kubernetes ${state.versions.kubernetes}, supervisor pid ${supervisor.pid} since ${supervisor.startedAt}`,
  );
  for (const c of supervisor.components) {
    const exit = c.lastExit ? `  last exit ${c.lastExit.signal ?? c.lastExit.code} at ${c.lastExit.at}` : '';
    say(
      `  ${c.name.padEnd(24)} ${c.state.padEnd(9)} pid ${String(c.pid ?? '-').padEnd(8)} restarts ${c.restarts}${exit}`,
    );
  }
  const ok = status.readyz?.status === 200;
  say(
    `  /readyz via ${state.apiserver.hostUrl}: ${ok ? 'ok' : `${status.readyz?.status} ${status.readyz?.body.slice(0, 200)}`}`,
  );
  return ok ? 0 : 1;
}

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

async function cmdEnv(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { inside: { type: 'boolean' } } });
  const state = await readClusterState();
  if (!state) throw new DevclusterError('devcluster has no state yet', 'start it with: devcluster up');
  const kubeconfig = values.inside ? state.kubeconfigs.admin : state.kubeconfigs.adminHost;
  process.stdout.write(
    [
      `export KUBECONFIG=${shellQuote(kubeconfig)}`,
      `export PATH=${shellQuote(state.binDir)}:"$PATH"`,
      `export ${ENV.stateDir}=${shellQuote(state.stateDir)}`,
      '',
    ].join('\n'),
  );
  return 0;
}

async function follow(file: string): Promise<never> {
  let offset = (await stat(file).catch(() => ({ size: 0 }))).size;
  for (;;) {
    const size = (await stat(file).catch(() => ({ size: 0 }))).size;
    if (size < offset) offset = 0;
    if (size > offset) {
      const handle = await open(file, 'r');
      const buffer = Buffer.alloc(size - offset);
      await handle.read(buffer, 0, buffer.length, offset);
      await handle.close();
      process.stdout.write(buffer);
      offset = size;
    }
    await sleep(500);
  }
}

async function cmdLogs(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      follow: { type: 'boolean', short: 'f' },
      tail: { type: 'string', short: 'n' },
      previous: { type: 'boolean', short: 'p' },
    },
  });
  const state = await readClusterState();
  if (!state)
    throw new DevclusterError('devcluster has no state (and so no logs)', 'start it with: devcluster up');
  const paths = statePaths(state.stateDir);
  const logs = [
    ...state.components.map((c) => ({ name: c.name, file: c.logFile })),
    { name: 'supervisor', file: paths.supervisorLog },
  ];
  const name = positionals[0];
  if (!name) {
    const lines = Number(values.tail ?? 10);
    for (const log of logs) {
      process.stdout.write(`==> ${log.name} (${log.file}) <==\n${await tailFile(log.file, lines)}\n\n`);
    }
    return 0;
  }
  const podLog = parsePodLogTarget(name)
    ? await podLogFile(state, name, values.previous ?? false).catch((err: unknown) => {
        throw new DevclusterError(
          errorMessage(err),
          'kubectl get pods -A -o wide shows the pods and their nodes',
        );
      })
    : undefined;
  const log = podLog ? { name, file: podLog } : logs.find((l) => l.name === name);
  if (!log) {
    throw new DevclusterError(
      `no component named ${name}`,
      `components: ${logs.map((l) => l.name).join(', ')}; a pod's container: pod/NAMESPACE/NAME[/CONTAINER]`,
    );
  }
  process.stdout.write(
    `${await tailFile(log.file, values.tail ? Number(values.tail) : Number.MAX_SAFE_INTEGER)}\n`,
  );
  if (values.follow) await follow(log.file);
  return 0;
}

async function cmdExec(args: string[]): Promise<number> {
  const { own, command } = splitAtDoubleDash(args);
  return execInCluster(command.length > 0 ? command : own, { progress });
}

async function cmdTest(args: string[]): Promise<number> {
  const { own, command } = splitAtDoubleDash(args);
  const simulatePods = command.length > 0 && own.includes('--simulate-pods');
  const argv = command.length > 0 ? command : own;
  if (argv.length === 0)
    throw new DevclusterError(
      'nothing to run',
      'usage: devcluster test [--simulate-pods] -- COMMAND [ARGS…]',
    );
  const keep = process.env[ENV.mode] === 'keep';
  const alreadyUp = Boolean(await runningSupervisor(statePaths(defaultStateDir())));
  if (alreadyUp) {
    const running = (await readClusterState())?.nodes?.simulatePods ?? false;
    if (running !== simulatePods) {
      // Simulated pods run no process: a suite must never run against them, and a benchmark that asks for them
      // must not create hundreds of real pods instead.
      throw new DevclusterError(
        `the running devcluster's nodes ${running ? 'simulate pods' : 'run real pods'}, but this command needs nodes that ${simulatePods ? 'simulate pods' : 'run real pods'}`,
        `stop it first (devcluster down), or run this with ${ENV.mode} unset and no devcluster running`,
      );
    }
    // Only what this command started is torn down afterwards; someone else's running cluster stays up.
    progress(
      `using the running devcluster${keep ? '' : ' (it stays up afterwards: this command did not start it)'}`,
    );
    const nodes = (await readClusterState())?.nodes?.nodes.length ?? 0;
    if (nodes < DEFAULT_NODE_COUNT) {
      progress(
        `the running devcluster has ${nodes} node(s); suites that run pods need ${DEFAULT_NODE_COUNT} (devcluster down, then run this again)`,
      );
    }
  } else {
    const started = Date.now();
    await up({ progress, ...(simulatePods ? { simulatePods: true } : {}) });
    progress(`up in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  }
  try {
    // The runtime's suites provoke an API server restart and a 410 through these commands, so they stay
    // pointed at any cluster by env and never depend on this package.
    const self = `${JSON.stringify(process.execPath)} --conditions=@kubevirt-ts/source ${JSON.stringify(fileURLToPath(import.meta.url))}`;
    return await execInCluster(argv, {
      progress,
      env: {
        [ENV.integration]: '1',
        KUBEVIRT_TS_APISERVER_RESTART: `${self} restart-apiserver`,
        KUBEVIRT_TS_WATCH_EXPIRE: `${self} expire-watches`,
      },
    });
  } finally {
    if (!alreadyUp && !keep) {
      await down({ progress });
      progress('stopped and removed the devcluster this command started');
    } else if (!alreadyUp) {
      progress(`${ENV.mode}=keep: the devcluster stays up (devcluster down stops it)`);
    }
  }
}

async function cmdDemo(): Promise<number> {
  return runDemo({ say });
}

async function cmdExpose(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string' },
      'target-port': { type: 'string' },
      namespace: { type: 'string' },
      address: { type: 'string' },
    },
  });
  const name = positionals[0];
  if (!name || !values.port) {
    throw new DevclusterError(
      'expose needs a name and a port',
      'usage: devcluster expose NAME --port P [--namespace NS] [--address IP]',
    );
  }
  const state: ClusterState = await requireRunning();
  const result = await expose(loadKubeConfig(state.kubeconfigs.adminHost), {
    name,
    port: Number(values.port),
    ...(values['target-port'] ? { targetPort: Number(values['target-port']) } : {}),
    ...(values.namespace ? { namespace: values.namespace } : {}),
    ...(values.address ? { address: values.address } : {}),
  });
  const endpoint = result.endpointSlice.endpoints?.[0]?.addresses[0];
  const port = result.endpointSlice.ports?.[0]?.port;
  say(
    `exposed ${result.service.metadata?.namespace}/${name}: Service port ${values.port} → ${endpoint}:${port} ` +
      `(EndpointSlice ${result.endpointSlice.metadata?.name})`,
  );
  return 0;
}

async function cmdBuild(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { force: { type: 'boolean' } } });
  const result = await ensureBinaries({
    cacheRoot: defaultCacheRoot(),
    progress,
    force: values.force ?? false,
  });
  say(
    `binaries in ${result.binDir}: Kubernetes ${result.versions.kubernetes}, etcd ${result.versions.etcd}, helm ${result.versions.helm}` +
      (result.built.length > 0 ? ` (built: ${result.built.join(', ')})` : ' (cache was warm)'),
  );
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  switch (command) {
    case 'up':
      return cmdUp(args);
    case 'down':
      return cmdDown(args);
    case 'status':
      return cmdStatus();
    case 'env':
      return cmdEnv(args);
    case 'logs':
      return cmdLogs(args);
    case 'exec':
      return cmdExec(args);
    case 'test':
      return cmdTest(args);
    case 'demo':
      return cmdDemo();
    case 'expose':
      return cmdExpose(args);
    case 'build':
      return cmdBuild(args);
    case 'restart-apiserver':
      await restartApiServer();
      return 0;
    case 'expire-watches':
      // Compaction alone is not enough: the API server's watch cache would answer old versions itself.
      await compactEtcd();
      await restartApiServer();
      return 0;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      say(USAGE);
      return command === undefined ? 2 : 0;
    default:
      say(`devcluster: unknown command ${JSON.stringify(command)}\n\n${USAGE}`);
      return 2;
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof DevclusterError) {
        say(`devcluster: ${err.message}`);
        if (err.hint) say(`  → ${err.hint}`);
      } else {
        say(
          `devcluster: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`,
        );
      }
      process.exit(1);
    },
  );
}
