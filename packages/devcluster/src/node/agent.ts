// The devcluster node agent: plays the kubelet's part for one node. It runs inside the node's network namespace
// (the supervisor starts it with nsenter) as the node's own identity (system:node:<name>), registers the Node and
// keeps its status and Lease, serves the device-plugin registration, watches the pods bound to the node and runs
// them (pods.ts), and serves the logs part of the kubelet API. On SIGTERM it stops itself and leaves the pods
// running, as a kubelet does; started again, it reads its records back and adopts them.
import { readFile, mkdir, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Server } from 'node:https';
import { join } from 'node:path';
import { CoreV1Api, KubeConfig, type V1Pod } from '@kubernetes/client-node';
import { createInformer, runWorkers, WorkQueue, type Informer } from '@kubevirt-ts/runtime';
import type { Logger } from 'pino';
import type { NodeAgentConfig } from './config.ts';
import { DeviceManager } from './deviceplugin/manager.ts';
import { EventRecorder } from './events.ts';
import { chartServiceRepositories, launcherNodeFlags, type ImageTableContext } from './images.ts';
import { createKubeletApiServer } from './kubelet-api.ts';
import { nodeIdentity, nodePaths, type NodePaths } from './layout.ts';
import { ensurePodBridge, podRange } from './network.ts';
import { NodeStatusManager } from './node-status.ts';
import { PodManager } from './pods.ts';
import { PodRecords } from './records.ts';
import { ContainerRuntime } from './runtime.ts';
import { VolumeManager } from './volumes.ts';

const WORKERS = 4;
const POD_CIDR_TIMEOUT_MS = 120_000;
/** Exit codes of containers this agent did not start itself (adopted after a restart) are polled this often. */
const EXIT_POLL_MS = 1_000;

export interface NodeAgent {
  /** Resolves once the node is registered, Ready and watching its pods. */
  readonly ready: Promise<void>;
  /** Stops the agent (pods keep running). */
  stop(): Promise<void>;
}

function pathsOf(config: NodeAgentConfig): NodePaths {
  return nodePaths(config.stateDir, config.name);
}

export async function startNodeAgent(config: NodeAgentConfig, log: Logger): Promise<NodeAgent> {
  const paths = pathsOf(config);
  const node = nodeIdentity(config.index);
  for (const dir of [paths.pods, paths.devicePlugins, paths.podLogs, paths.podRecords, paths.containers]) {
    await mkdir(dir, { recursive: true, mode: 0o755 });
  }
  // Plugin sockets are reached by relative path from here: full node-root paths approach the 107-byte limit.
  process.chdir(paths.devicePlugins);
  const records = new PodRecords(paths.podRecords);
  const known = await records.load();
  const kc = new KubeConfig();
  kc.loadFromFile(config.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const abort = new AbortController();

  const nodeStatus = new NodeStatusManager({ config, kc, log, devices: () => devices.resources() });
  const devices = new DeviceManager({ dir: paths.devicePlugins, log, onChange: () => nodeStatus.update() });
  for (const record of known) {
    for (const [key, allocation] of Object.entries(record.allocations)) {
      devices.restore(record.uid, key.slice(0, key.indexOf('/')), allocation);
    }
  }

  await nodeStatus.register();
  const cidr = await nodeStatus.waitForPodCidr(POD_CIDR_TIMEOUT_MS);
  const range = podRange(cidr);
  if (!config.simulatePods) await ensurePodBridge(node, range);
  await devices.start();
  await nodeStatus.postStatus();
  nodeStatus.start();
  log.info(
    { podCidr: cidr, simulatePods: config.simulatePods, adoptedPods: known.length },
    'node registered and Ready',
  );

  const images: ImageTableContext = {
    repoRoot: config.repoRoot,
    nodeBinary: process.execPath,
    serviceRepositories: await chartServiceRepositories(config.repoRoot),
    storeDir: join(config.cacheRoot, 'images'),
    qemuCapabilities: undefined,
    launcherNodeFlags: await launcherNodeFlags(config.repoRoot),
  };
  const queue = new WorkQueue<string>({ name: 'pods' });
  const volumes: VolumeManager = new VolumeManager({
    paths,
    core,
    imageRoot: (reference): Promise<string> => pods.imageRoot(reference),
  });
  const pods: PodManager = new PodManager({
    config,
    node,
    paths,
    kc,
    log,
    records,
    runtime: config.simulatePods ? undefined : new ContainerRuntime({ log }),
    devices,
    volumes,
    events: new EventRecorder(kc, config.name, log),
    images,
    range,
    enqueue: (key) => queue.add(key),
  });

  const informer: Informer<V1Pod> = createInformer<V1Pod>({
    name: 'pods',
    kubeConfig: kc,
    path: '/api/v1/pods',
    fieldSelector: `spec.nodeName=${config.name}`,
    list: (opts) => core.listPodForAllNamespaces({ ...opts }),
    log,
    resyncPeriodMs: 60_000,
  });
  informer.enqueueTo(queue);
  informer.start();
  const workers = runWorkers(queue, WORKERS, (key) => pods.sync(key, informer.get(key)), abort.signal, {
    log,
  });

  await informer.synced;
  // Pods the records know that the API no longer has (deleted while the agent was down) get cleaned up too.
  for (const record of records.all()) queue.add(`${record.namespace}/${record.name}`);
  const exitPoll = setInterval(() => {
    for (const record of records.all()) {
      const running = [...Object.values(record.containers), ...Object.values(record.initContainers)].some(
        (c) => c.current,
      );
      if (running) queue.add(`${record.namespace}/${record.name}`);
    }
  }, EXIT_POLL_MS);
  exitPoll.unref();

  let kubeletApi: Server | undefined;
  if (!config.simulatePods) {
    kubeletApi = createKubeletApiServer({
      config,
      paths,
      records,
      log,
      cert: await readFile(config.serving.cert, 'utf8'),
      key: await readFile(config.serving.key, 'utf8'),
    });
    await new Promise<void>((resolve, reject) => {
      kubeletApi?.once('error', reject);
      kubeletApi?.listen(config.kubeletPort, config.address, () => resolve());
    });
  }

  // The supervisor's readiness probe: the agent answers once the node is Ready and pods are watched.
  await rm(paths.agentSocket, { force: true });
  const health = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => health.listen(paths.agentSocket, resolve));
  log.info({ pods: informer.list().length }, 'watching the pods bound to this node');

  let stopping: Promise<void> | undefined;
  return {
    ready: Promise.resolve(),
    stop: () => {
      stopping ??= (async () => {
        log.info('stopping the node agent; pods keep running');
        clearInterval(exitPoll);
        abort.abort();
        await informer.stop();
        pods.stop();
        nodeStatus.stop();
        await workers.catch(() => undefined);
        await devices.stop();
        health.close();
        kubeletApi?.close();
        await rm(paths.agentSocket, { force: true });
      })();
      return stopping;
    },
  };
}
