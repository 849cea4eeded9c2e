// The devcluster lifecycle: `up` (binaries, namespace, PKI, kubeconfigs, supervisor, readiness, service-account
// kubeconfigs), `down`, status and running commands inside the namespace. `up` owns everything it finds under its
// state dir and namespace prefix: a run that was killed is reclaimed, never refused.
import { spawn } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile, rename } from 'node:fs/promises';
import { createServer } from 'node:net';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { KubeConfig } from '@kubernetes/client-node';
import { ensureBinaries, type Progress } from './binaries.ts';
import { COMPONENT_NAMES, controlPlaneComponents } from './components.ts';
import { requestShutdown, supervisorStatus } from './control.ts';
import { DevclusterError, errorMessage } from './errors.ts';
import { writeKubeconfig } from './kubeconfig.ts';
import {
  defaultCacheRoot,
  defaultStateDir,
  ENV,
  MAX_SOCKET_PATH,
  NETWORK,
  PORTS,
  statePaths,
  type StatePaths,
} from './layout.ts';
import {
  createClusterNamespace,
  deleteNamespace,
  inNamespace,
  namespacePids,
  ownedNamespaces,
} from './netns.ts';
import { corednsComponent, dnsReadyForward, ensureClusterDns, writeDnsFiles } from './dns.ts';
import { ensurePki, pkiFiles } from './pki.ts';
import { request } from './probe.ts';
import { isAlive, isOurProcess, readPidFile, removeFile, terminate, withLockFile } from './processes.ts';
import { ensureServiceAccountKubeconfigs, serviceKubeconfigPaths } from './serviceaccounts.ts';
import {
  createNodeNetworks,
  DEFAULT_NODE_COUNT,
  prepareClusterForNodes,
  prepareNodes,
} from './node/setup.ts';
import { assertNftInstalled } from './node/proxy.ts';
import type { ClusterState, ComponentStatus, SupervisorStatus } from './spec.ts';

const DEFAULT_READY_TIMEOUT_MS = 180_000;
const SUPERVISOR_EXIT_TIMEOUT_MS = 120_000;
/** What `down` may delete: the entries `up` creates. Anything else means the folder is not ours. */
const STATE_ENTRIES = new Set([
  'cluster.json',
  'pki',
  'kubeconfig',
  'etcd',
  'logs',
  'run',
  'lock',
  'apiserver-certs',
  'nodes',
  'dns',
]);

export interface CommonOptions {
  stateDir?: string;
  progress?: Progress;
}

function dirs(options: CommonOptions): { paths: StatePaths; progress: Progress } {
  return {
    paths: statePaths(options.stateDir ?? defaultStateDir()),
    progress: options.progress ?? (() => undefined),
  };
}

export function requireRoot(): void {
  if (process.getuid?.() !== 0) {
    throw new DevclusterError(
      'devcluster needs root: it creates a network namespace (ip netns) for the cluster',
      'run it as root, e.g. sudo -E env PATH="$PATH" pnpm devcluster up',
    );
  }
}

/** The command that runs one of devcluster's own scripts with this Node and its module conditions. */
function nodeScript(script: 'forwarder' | 'supervisor'): string[] {
  const here = fileURLToPath(import.meta.url);
  const conditions = process.execArgv.filter((arg) => arg.startsWith('--conditions') || arg === '-C');
  return [process.execPath, ...conditions, join(here, '..', `${script}${extname(here)}`)];
}

export async function readClusterState(
  stateDir: string = defaultStateDir(),
): Promise<ClusterState | undefined> {
  try {
    return JSON.parse(await readFile(statePaths(stateDir).clusterFile, 'utf8')) as ClusterState;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

async function writeClusterState(paths: StatePaths, state: ClusterState): Promise<void> {
  const tmp = `${paths.clusterFile}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, paths.clusterFile);
}

/** The supervisor's pid and status when one of ours is running and answering. */
export async function runningSupervisor(
  paths: StatePaths,
): Promise<{ pid: number; status: SupervisorStatus } | undefined> {
  const pid = await readPidFile(paths.supervisorPidFile);
  if (!pid || !isOurProcess(pid, paths.root)) return undefined;
  const status = await supervisorStatus(paths.controlSocket);
  return status ? { pid, status } : undefined;
}

/** The last `lines` lines of a log file (empty when it does not exist). */
export async function tailFile(path: string, lines: number): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Stops whatever a previous run left behind: our processes (pid files whose command line names the state dir,
 * and every process inside our namespaces), the namespaces themselves, stale sockets and pid files.
 * Returns what it found, for the user.
 */
export async function reclaim(paths: StatePaths): Promise<string[]> {
  const found: string[] = [];
  const supervisorPid = await readPidFile(paths.supervisorPidFile);
  if (supervisorPid && isOurProcess(supervisorPid, paths.root)) {
    // First, and without grace: it would restart the components we are about to stop.
    await terminate([supervisorPid], 0);
    found.push(`supervisor (pid ${supervisorPid})`);
  }
  // Components in reverse start order, each with its grace period, as the supervisor would stop them: the API
  // server shuts down cleanly only while etcd is still there.
  const pidFiles = (await readdir(paths.run).catch(() => [] as string[])).filter((f) => f.endsWith('.pid'));
  const known = (await readClusterState(paths.root).catch(() => undefined))?.components ?? [];
  const ordered = [
    ...[...known]
      .reverse()
      .map((c) => ({ name: c.name, file: c.pidFile, graceMs: c.stopTimeoutMs ?? 10_000 })),
    ...pidFiles.map((f) => ({ name: f.replace(/\.pid$/, ''), file: join(paths.run, f), graceMs: 10_000 })),
  ];
  const stopped = new Set<number>(supervisorPid ? [supervisorPid] : []);
  for (const { name, file, graceMs } of ordered) {
    const pid = await readPidFile(file);
    if (pid && !stopped.has(pid) && isOurProcess(pid, paths.root)) {
      await terminate([pid], graceMs);
      stopped.add(pid);
      found.push(`${name} (pid ${pid})`);
    }
  }
  // Then anything else inside our namespaces (e.g. a command started with `devcluster exec`).
  const namespaces = await ownedNamespaces();
  const others: number[] = [];
  for (const ns of namespaces) {
    for (const pid of await namespacePids(ns)) {
      if (!stopped.has(pid) && pid !== process.pid) {
        others.push(pid);
        found.push(`process ${pid} in namespace ${ns}`);
      }
    }
  }
  await terminate(others, 10_000);
  for (const ns of namespaces) {
    await deleteNamespace(ns);
    found.push(`network namespace ${ns}`);
  }
  for (const file of pidFiles) await removeFile(join(paths.run, file));
  for (const socket of sockets(paths)) await removeFile(socket);
  return found;
}

function sockets(paths: StatePaths): string[] {
  return [
    paths.controlSocket,
    paths.apiserverSocket,
    paths.etcdSocket,
    paths.controllerManagerSocket,
    paths.schedulerSocket,
    paths.dnsReadySocket,
  ];
}

async function assertPortFree(port: number): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      reject(
        err.code === 'EADDRINUSE'
          ? new DevclusterError(
              `port ${port} on 127.0.0.1 (the host side of the API server forwarder) is in use by another process`,
              `stop it (ss -ltnp 'sport = :${port}' shows who), or pick another port: devcluster up --port N (or ${ENV.hostPort}=N)`,
            )
          : err,
      );
    });
    server.listen(port, '127.0.0.1', () => server.close(() => resolve()));
  });
}

function assertSocketPaths(paths: StatePaths): void {
  for (const socket of sockets(paths)) {
    if (Buffer.byteLength(socket) > MAX_SOCKET_PATH) {
      throw new DevclusterError(
        `the state dir ${paths.root} is too deep: the unix socket ${socket} would exceed ${MAX_SOCKET_PATH} bytes`,
        `set ${ENV.stateDir} (or XDG_STATE_HOME) to a shorter path`,
      );
    }
  }
}

export function loadKubeConfig(path: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromFile(path);
  return kc;
}

/** GET /readyz through the host forwarder with the admin's client certificate. */
async function hostReadyz(state: ClusterState, paths: StatePaths): Promise<{ status: number; body: string }> {
  const files = pkiFiles(paths.pki);
  const tls = {
    ca: await readFile(files.ca.cert, 'utf8'),
    cert: await readFile(files.admin.cert, 'utf8'),
    key: await readFile(files.admin.key, 'utf8'),
  };
  return request({ host: '127.0.0.1', port: state.apiserver.hostPort, tls }, '/readyz', { timeoutMs: 5_000 });
}

/** A component that crashed: any restart while starting fresh; crash-looping (in backoff) on a running cluster. */
function crashed(status: SupervisorStatus, fresh: boolean): ComponentStatus | undefined {
  return status.components.find((c) => c.state === 'backoff' || (fresh && c.restarts > 0));
}

async function crashError(component: ComponentStatus): Promise<DevclusterError> {
  const exit = component.lastExit;
  const how = exit
    ? exit.signal
      ? `was killed by ${exit.signal}`
      : `exited with code ${exit.code}`
    : 'failed';
  const tail = await tailFile(component.logFile, 25);
  return new DevclusterError(
    `${component.name} ${how} while the cluster was starting. Last lines of ${component.logFile}:\n${tail}`,
    `read the whole log with: devcluster logs ${component.name}`,
  );
}

/** Waits for every component's readiness probe, then /readyz through the host forwarder. */
async function waitForControlPlane(
  state: ClusterState,
  paths: StatePaths,
  progress: Progress,
  timeoutMs: number,
  fresh: boolean,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  // The cluster DNS objects go in as soon as the API server serves on the host side: CoreDNS (started after the
  // API server) becomes ready only once its RBAC lets it sync.
  let clusterDnsApplied = false;
  let dnsProblem = '';
  const serving = (s: SupervisorStatus) =>
    [COMPONENT_NAMES.apiserver, COMPONENT_NAMES.hostForwarder].every(
      (name) => s.components.find((c) => c.name === name)?.state === 'ready',
    );
  let phase = '';
  const say = (next: string) => {
    if (next !== phase) progress(next);
    phase = next;
  };
  let lastProblem = '';
  while (Date.now() < deadline) {
    const status = await supervisorStatus(paths.controlSocket);
    if (!status) {
      lastProblem = 'the supervisor does not answer';
      const tail = await tailFile(paths.supervisorLog, 20);
      const pid = await readPidFile(paths.supervisorPidFile);
      if (pid && !isAlive(pid)) {
        throw new DevclusterError(
          `the devcluster supervisor exited. Last lines of ${paths.supervisorLog}:\n${tail}`,
        );
      }
    } else {
      const bad = crashed(status, fresh);
      if (bad) throw await crashError(bad);
      if (!clusterDnsApplied && serving(status)) {
        try {
          await ensureClusterDns(loadKubeConfig(state.kubeconfigs.adminHost));
          clusterDnsApplied = true;
        } catch (err) {
          dnsProblem = `; cannot create the cluster DNS objects: ${errorMessage(err)}`;
        }
      }
      const pending = status.components.filter((c) => c.state !== 'ready').map((c) => c.name);
      if (pending.length > 0) {
        say(`waiting for ${pending.join(', ')}`);
        lastProblem = `not ready: ${pending.join(', ')}`;
      } else {
        const readyz = await hostReadyz(state, paths).catch((err: unknown) => ({
          status: 0,
          body: errorMessage(err),
        }));
        if (readyz.status === 200) return;
        say('waiting for /readyz through the host forwarder');
        lastProblem = `/readyz answered ${readyz.status}: ${readyz.body.slice(0, 300)}`;
      }
    }
    await sleep(250);
  }
  const apiserverLog = await tailFile(join(paths.logs, `${COMPONENT_NAMES.apiserver}.log`), 15);
  throw new DevclusterError(
    `the control plane was not ready within ${Math.round(timeoutMs / 1000)} s (${lastProblem}${clusterDnsApplied ? '' : dnsProblem}). Last lines of the API server's log:\n${apiserverLog}`,
    'devcluster status shows each component; devcluster logs COMPONENT shows its log',
  );
}

function startSupervisor(paths: StatePaths): number {
  const log = openSync(paths.supervisorLog, 'a');
  try {
    const [node, ...args] = nodeScript('supervisor');
    const child = spawn(node ?? process.execPath, [...args, paths.clusterFile], {
      // Its own session: it outlives this CLI and no terminal signal reaches it.
      detached: true,
      stdio: ['ignore', log, log],
      cwd: paths.root,
      env: process.env,
    });
    child.unref();
    if (!child.pid) throw new DevclusterError('could not start the devcluster supervisor');
    return child.pid;
  } finally {
    closeSync(log);
  }
}

export interface UpOptions extends CommonOptions {
  cacheRoot?: string;
  /** Host port of the API server forwarder. */
  hostPort?: number;
  readyTimeoutMs?: number;
  /** Nodes whose agents run pods (default 2; 0: the control plane only). */
  nodes?: number;
  /** Nodes run pods without processes (control-plane benchmarks only). */
  simulatePods?: boolean;
}

export interface UpResult {
  state: ClusterState;
  alreadyRunning: boolean;
  /** What a previous, killed run left behind and this one cleaned up. */
  reclaimed: string[];
  /** Binary parts built by this run (empty when the cache was warm). */
  built: string[];
}

function hostPortFrom(options: UpOptions): number {
  const fromEnv = process.env[ENV.hostPort];
  const port = options.hostPort ?? (fromEnv ? Number(fromEnv) : PORTS.hostApiserverDefault);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    throw new DevclusterError(`host port ${String(fromEnv ?? options.hostPort)} is not a port number`);
  }
  return port;
}

async function writeServiceKubeconfigs(state: ClusterState, paths: StatePaths): Promise<void> {
  await ensureServiceAccountKubeconfigs(loadKubeConfig(state.kubeconfigs.adminHost), {
    dir: paths.kubeconfigs,
    caPem: await readFile(pkiFiles(paths.pki).ca.cert, 'utf8'),
    insideServer: state.apiserver.url,
    hostServer: state.apiserver.hostUrl,
  });
}

/** Starts the devcluster, or confirms the running one; resolves once the control plane serves. */
export async function up(options: UpOptions = {}): Promise<UpResult> {
  requireRoot();
  const { paths, progress } = dirs(options);
  assertSocketPaths(paths);
  const binaries = await ensureBinaries({ cacheRoot: options.cacheRoot ?? defaultCacheRoot(), progress });
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  const onWait = (pid: number) => progress(`waiting for another devcluster up/down (pid ${pid})`);
  return withLockFile(paths.lockFile, onWait, async () => {
    const timeoutMs = options.readyTimeoutMs ?? DEFAULT_READY_TIMEOUT_MS;
    const running = await runningSupervisor(paths);
    const existing = await readClusterState(paths.root);
    if (running && existing) {
      progress('devcluster is already running; checking it');
      await waitForControlPlane(existing, paths, progress, timeoutMs, false);
      await writeServiceKubeconfigs(existing, paths);
      const running = existing.nodes?.nodes.length ?? 0;
      if (options.nodes !== undefined && options.nodes !== running) {
        progress(
          `the running devcluster has ${running} node(s), not ${options.nodes}; devcluster down, then up --nodes ${options.nodes}`,
        );
      }
      return { state: existing, alreadyRunning: true, reclaimed: [], built: binaries.built };
    }

    const reclaimed = await reclaim(paths);
    if (reclaimed.length > 0) progress(`reclaimed what a previous run left: ${reclaimed.join(', ')}`);
    const hostPort = hostPortFrom(options);
    await assertPortFree(hostPort);

    for (const dir of [paths.logs, paths.run, paths.kubeconfigs])
      await mkdir(dir, { recursive: true, mode: 0o700 });
    await mkdir(paths.etcdData, { recursive: true, mode: 0o700 });
    const { pki, created } = await ensurePki(paths.pki);
    progress(created ? 'generated a new cluster PKI' : 'reusing the cluster PKI in the state dir');
    const files = pkiFiles(paths.pki);
    const insideUrl = `https://${NETWORK.controlPlaneAddress}:${PORTS.apiserver}`;
    const hostUrl = `https://127.0.0.1:${hostPort}`;
    const kubeconfigFile = (name: string) => join(paths.kubeconfigs, `${name}.kubeconfig`);
    const clientCert = (pair: { certPem: string; keyPem: string }) => ({
      kind: 'client-certificate' as const,
      certPem: pair.certPem,
      keyPem: pair.keyPem,
    });
    const base = { name: 'devcluster', caPem: pki.ca.certPem };
    const kubeconfigs = {
      admin: kubeconfigFile('admin'),
      adminHost: kubeconfigFile('admin-host'),
      controllerManager: kubeconfigFile('controller-manager'),
      scheduler: kubeconfigFile('scheduler'),
    };
    await writeKubeconfig(kubeconfigs.admin, {
      ...base,
      user: 'admin',
      server: insideUrl,
      credentials: clientCert(pki.admin),
    });
    await writeKubeconfig(kubeconfigs.adminHost, {
      ...base,
      user: 'admin',
      server: hostUrl,
      credentials: clientCert(pki.admin),
    });
    await writeKubeconfig(kubeconfigs.controllerManager, {
      ...base,
      user: 'system:kube-controller-manager',
      server: insideUrl,
      credentials: clientCert(pki.controllerManager),
    });
    await writeKubeconfig(kubeconfigs.scheduler, {
      ...base,
      user: 'system:kube-scheduler',
      server: insideUrl,
      credentials: clientCert(pki.scheduler),
    });

    const services = serviceKubeconfigPaths(paths.kubeconfigs);
    const nodeCount = options.nodes ?? DEFAULT_NODE_COUNT;
    if (nodeCount > 0) await assertNftInstalled();
    await writeDnsFiles(paths, insideUrl);
    const nodes = await prepareNodes({
      paths,
      binDir: binaries.binDir,
      count: nodeCount,
      simulatePods: options.simulatePods ?? false,
      apiserverUrl: insideUrl,
      kubernetesVersion: binaries.versions.kubernetes,
      cacheRoot: options.cacheRoot ?? defaultCacheRoot(),
    });
    const state: ClusterState = {
      formatVersion: 1,
      createdAt: new Date().toISOString(),
      stateDir: paths.root,
      binDir: binaries.binDir,
      versions: binaries.versions,
      network: {
        namespace: NETWORK.namespace,
        bridge: NETWORK.bridge,
        subnet: NETWORK.subnet,
        controlPlaneAddress: NETWORK.controlPlaneAddress,
        podCidr: NETWORK.podCidr,
        serviceCidr: NETWORK.serviceCidr,
      },
      apiserver: { url: insideUrl, hostUrl, hostPort },
      etcd: { socket: paths.etcdSocket },
      controlSocket: paths.controlSocket,
      kubeconfigs: {
        admin: kubeconfigs.admin,
        adminHost: kubeconfigs.adminHost,
        services: services.inside,
        servicesHost: services.host,
      },
      components: controlPlaneComponents({
        binDir: binaries.binDir,
        paths,
        pki: files,
        kubeconfigs,
        hostPort,
        nodeScript,
        extraForwards: [dnsReadyForward(paths), ...nodes.forwards],
      })
        .concat(corednsComponent(binaries.binDir, paths, COMPONENT_NAMES.apiserver))
        .concat(nodes.components),
      nodes: nodes.state,
    };
    await writeClusterState(paths, state);

    await createClusterNamespace();
    progress(
      `network namespace ${NETWORK.namespace} with ${NETWORK.controlPlaneAddress}/${NETWORK.prefixLength} on ${NETWORK.bridge}`,
    );
    await createNodeNetworks(nodes.state);
    const supervisorPid = startSupervisor(paths);
    progress(`supervisor started (pid ${supervisorPid}); logs in ${paths.logs}`);
    try {
      await waitForControlPlane(state, paths, progress, timeoutMs, true);
      await writeServiceKubeconfigs(state, paths);
      await prepareClusterForNodes(loadKubeConfig(state.kubeconfigs.adminHost));
    } catch (err) {
      // Leave nothing running, but keep the state dir: its logs explain the failure.
      await stopAll(paths).catch(() => undefined);
      throw err;
    }
    return { state, alreadyRunning: false, reclaimed, built: binaries.built };
  });
}

/** Graceful stop through the supervisor, then a reclaim of anything that is left. */
async function stopAll(paths: StatePaths): Promise<string[]> {
  const running = await runningSupervisor(paths);
  if (running && (await requestShutdown(paths.controlSocket))) {
    const deadline = Date.now() + SUPERVISOR_EXIT_TIMEOUT_MS;
    while (isAlive(running.pid) && Date.now() < deadline) await sleep(100);
  }
  return reclaim(paths);
}

export interface DownOptions extends CommonOptions {
  keepState?: boolean;
}

/** Stops every process, removes the namespaces and, unless told to keep it, the state dir. */
export async function down(options: DownOptions = {}): Promise<{ stopped: string[]; removedState: boolean }> {
  requireRoot();
  const { paths, progress } = dirs(options);
  const onWait = (pid: number) => progress(`waiting for another devcluster up/down (pid ${pid})`);
  // The lock lives in the state dir, which an earlier down (or devcluster test) may have removed: a down with
  // nothing to stop still cleans leftover namespaces, then removes the empty dir again.
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  const stopped = await withLockFile(paths.lockFile, onWait, async () => {
    const wasRunning = Boolean(await runningSupervisor(paths));
    const leftovers = await stopAll(paths);
    return wasRunning ? ['control plane', ...leftovers] : leftovers;
  });
  if (options.keepState) return { stopped, removedState: false };
  const entries = await readdir(paths.root).catch(() => undefined);
  if (!entries) return { stopped, removedState: false };
  const foreign = entries.filter((entry) => !STATE_ENTRIES.has(entry));
  if (foreign.length > 0) {
    throw new DevclusterError(
      `not removing ${paths.root}: it holds entries devcluster did not make (${foreign.slice(0, 5).join(', ')})`,
      'check the state dir setting; remove it by hand if it is really devcluster state',
    );
  }
  await rm(paths.root, { recursive: true, force: true });
  return { stopped, removedState: true };
}

export interface ClusterStatus {
  running: boolean;
  state?: ClusterState;
  supervisor?: SupervisorStatus;
  readyz?: { status: number; body: string };
}

export async function clusterStatus(options: CommonOptions = {}): Promise<ClusterStatus> {
  const { paths } = dirs(options);
  const state = await readClusterState(paths.root);
  const running = await runningSupervisor(paths);
  if (!state || !running) return { running: false, ...(state ? { state } : {}) };
  const readyz = await hostReadyz(state, paths).catch((err: unknown) => ({
    status: 0,
    body: errorMessage(err),
  }));
  return { running: true, state, supervisor: running.status, readyz };
}

/** State of a running devcluster, or a clear error saying it is not up. */
export async function requireRunning(options: CommonOptions = {}): Promise<ClusterState> {
  const { paths } = dirs(options);
  const state = await readClusterState(paths.root);
  if (!state || !(await runningSupervisor(paths))) {
    throw new DevclusterError(
      `devcluster is not running (state dir ${paths.root})`,
      'start it with: devcluster up',
    );
  }
  return state;
}

/** The environment a command inside the namespace gets: the inside kubeconfig and our binaries first on PATH. */
export function clusterEnv(state: ClusterState, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    ...process.env,
    KUBECONFIG: state.kubeconfigs.admin,
    [ENV.stateDir]: state.stateDir,
    PATH: `${state.binDir}:${process.env.PATH ?? ''}`,
    ...extra,
  };
}

/** Runs `argv` inside the cluster's namespace with the terminal attached; resolves to its exit code. */
export async function execInCluster(
  argv: readonly string[],
  options: CommonOptions & { env?: Record<string, string> } = {},
): Promise<number> {
  requireRoot();
  if (argv.length === 0)
    throw new DevclusterError('nothing to run', 'usage: devcluster exec -- COMMAND [ARGS…]');
  const state = await requireRunning(options);
  const [command, ...args] = inNamespace(argv, state.network.namespace);
  const child = spawn(command ?? 'ip', args, { stdio: 'inherit', env: clusterEnv(state, options.env) });
  const forward = (signal: NodeJS.Signals) => () => child.kill(signal);
  const onInt = forward('SIGINT');
  const onTerm = forward('SIGTERM');
  process.on('SIGINT', onInt);
  process.on('SIGTERM', onTerm);
  try {
    return await new Promise<number>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (code, signal) => {
        const signals: Record<string, number> = { SIGHUP: 1, SIGINT: 2, SIGKILL: 9, SIGTERM: 15 };
        resolve(code ?? 128 + (signal ? (signals[signal] ?? 1) : 1));
      });
    });
  } finally {
    process.off('SIGINT', onInt);
    process.off('SIGTERM', onTerm);
  }
}
