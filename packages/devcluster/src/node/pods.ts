// The kubelet's pod workers, for the pods bound to this node: one level-triggered sync per pod key that brings
// the node in line with the pod — sandbox (network namespace and address, or the node's for hostNetwork), volumes,
// init containers in order, then the containers, restarts by restartPolicy with the kubelet's back-off, probes,
// device allocations — and writes the pod's status. Deletion: SIGTERM, the grace period, SIGKILL, then the sandbox
// is released and the pod object deleted with gracePeriodSeconds=0, as the kubelet finishes a graceful delete.
// In simulate mode (control-plane benchmarks) pods get an address and go Running without any process.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  CoreV1Api,
  PatchStrategy,
  setHeaderOptions,
  type KubeConfig,
  type V1ConfigMap,
  type V1Container,
  type V1Pod,
  type V1Secret,
} from '@kubernetes/client-node';
import type { ReconcileResult } from '@kubevirt-ts/runtime';
import type { Logger } from 'pino';
import { NETWORK, PORTS } from '../layout.ts';
import type { NodeAgentConfig } from './config.ts';
import type { DeviceManager } from './deviceplugin/manager.ts';
import { parseResolvConf, podResolvConf, renderResolvConf, type ResolvConf } from './dns.ts';
import {
  containerArgv,
  ContainerConfigError,
  envFor,
  envReferences,
  expandReferences,
  type DownwardContext,
} from './env.ts';
import type { EventRecorder } from './events.ts';
import {
  ensureTestGuestImage,
  ImageError,
  isTestGuestImage,
  resolveImage,
  type ImageConfig,
  type ImageTableContext,
} from './images.ts';
import { containerLogFile, podDir, podNetns, podVeth, type NodeIdentity, type NodePaths } from './layout.ts';
import { createPodNetwork, deletePodNetwork, writeHostsFile, type PodRange } from './network.ts';
import { ContainerProber, execInContainer } from './probes.ts';
import {
  newContainerRecord,
  type ContainerRecord,
  type PodRecord,
  type PodRecords,
  type TerminatedRun,
} from './records.ts';
import type { ContainerHandle, ContainerRuntime } from './runtime.ts';
import type { SandboxMount } from './sandbox.ts';
import { containerId, isSidecar, podStatus, statusKey, type ProbeView } from './status.ts';
import { VolumeError, type PreparedVolume, type VolumeManager } from './volumes.ts';

const execFileAsync = promisify(execFile);
const strategic = () => setHeaderOptions('Content-Type', PatchStrategy.StrategicMergePatch);
const FIRST_BACKOFF_MS = 10_000;
const MAX_BACKOFF_MS = 300_000;
/** A container that ran this long before exiting starts its back-off over (the kubelet's 10 minutes). */
const STABLE_RUN_MS = 600_000;
const VOLUME_REFRESH_MS = 60_000;
const TERMINATION_MESSAGE_MAX = 4096;

export interface PodManagerOptions {
  config: NodeAgentConfig;
  node: NodeIdentity;
  paths: NodePaths;
  kc: KubeConfig;
  log: Logger;
  records: PodRecords;
  /** Absent in simulate mode. */
  runtime: ContainerRuntime | undefined;
  devices: DeviceManager;
  volumes: VolumeManager;
  events: EventRecorder;
  images: ImageTableContext;
  range: PodRange;
  enqueue: (key: string) => void;
}

type Which = 'init' | 'main';

function podKey(pod: { namespace: string; name: string }): string {
  return `${pod.namespace}/${pod.name}`;
}

function minDelay(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return Math.min(a, b);
}

/** Extended resources a container asks for: limits whose name has a domain other than kubernetes.io. */
export function extendedResources(container: V1Container): Map<string, number> {
  const out = new Map<string, number>();
  for (const [name, value] of Object.entries(container.resources?.limits ?? {})) {
    if (!name.includes('/') || name.startsWith('kubernetes.io/') || name.startsWith('requests.')) continue;
    if (name.startsWith('hugepages-') || name.startsWith('attachable-volumes-')) continue;
    out.set(name, Number(value));
  }
  return out;
}

export class PodManager {
  readonly #o: PodManagerOptions;
  readonly #log: Logger;
  readonly #core: CoreV1Api;
  readonly #probers = new Map<string, ContainerProber>();
  readonly #envs = new Map<string, ReadonlyMap<string, string>>();
  readonly #killAt = new Map<string, number>();
  readonly #lastStatus = new Map<string, string>();
  readonly #pulls = new Map<string, Promise<void>>();
  readonly #pullFailures = new Map<string, string>();
  readonly #volumesAt = new Map<string, { at: number; volumes: Map<string, PreparedVolume> }>();
  #capabilities: Promise<string | undefined> | undefined;
  /** The node's own resolver configuration (the machine's /etc/resolv.conf), for dnsPolicy Default. */
  #nodeResolvConf: Promise<ResolvConf> | undefined;

  constructor(options: PodManagerOptions) {
    this.#o = options;
    this.#log = options.log.child({ component: 'pods' });
    this.#core = options.kc.makeApiClient(CoreV1Api);
  }

  /** Readiness and startup of a container run (no probes: ready once running). */
  probeView(id: string): ProbeView {
    return this.#probers.get(id)?.view() ?? { ready: true, started: true };
  }

  /** Stops probes (the agent is shutting down; containers keep running). */
  stop(): void {
    for (const prober of this.#probers.values()) prober.stop();
    this.#probers.clear();
  }

  /** Brings the node in line with the pod named by `key` (`pod`: its cached object, undefined when gone). */
  async sync(key: string, pod: V1Pod | undefined): Promise<ReconcileResult | void> {
    const slash = key.indexOf('/');
    const namespace = key.slice(0, slash);
    const name = key.slice(slash + 1);
    let requeue: number | undefined;
    // Records of another incarnation (a pod recreated under the same name) or of a pod that vanished.
    for (const record of this.#o.records.byKey(namespace, name)) {
      if (pod && record.uid === pod.metadata?.uid) continue;
      requeue = minDelay(
        requeue,
        await this.#terminate(record, undefined, record.terminationGracePeriodSeconds, 'the pod is gone'),
      );
    }
    if (!pod || pod.spec?.nodeName !== this.#o.config.name)
      return requeue === undefined ? undefined : { requeueAfter: requeue };
    const uid = pod.metadata?.uid ?? '';
    let record = this.#o.records.get(uid);
    if (!record) {
      const phase = pod.status?.phase;
      if (phase === 'Succeeded' || phase === 'Failed') {
        // Finished before (and cleaned up): nothing runs again; a delete only needs finishing.
        if (pod.metadata?.deletionTimestamp) await this.#deleteApiPod(pod);
        return;
      }
      record = {
        uid,
        namespace,
        name,
        firstSeen: new Date().toISOString(),
        hostNetwork: pod.spec.hostNetwork === true,
        sandboxReady: false,
        terminationGracePeriodSeconds: pod.spec.terminationGracePeriodSeconds ?? 30,
        initContainers: {},
        containers: {},
        allocations: {},
      };
      await this.#o.records.save(record);
    }
    if (pod.metadata?.deletionTimestamp) {
      const grace = pod.metadata.deletionGracePeriodSeconds ?? pod.spec.terminationGracePeriodSeconds ?? 30;
      requeue = minDelay(requeue, await this.#terminate(record, pod, grace, 'the pod is being deleted'));
      return requeue === undefined ? undefined : { requeueAfter: requeue };
    }
    record.terminationGracePeriodSeconds = pod.spec.terminationGracePeriodSeconds ?? 30;
    if (!record.sandboxReleased) {
      requeue = minDelay(requeue, await this.#syncRunning(pod, record));
    }
    await this.#writeStatus(pod, record);
    if (this.#terminal(pod, record) && !record.sandboxReleased) {
      await this.#releaseSandbox(record);
      await this.#writeStatus(pod, record);
    }
    return requeue === undefined ? undefined : { requeueAfter: requeue };
  }

  #terminal(pod: V1Pod, record: PodRecord): boolean {
    const phase = this.#status(pod, record).phase;
    return phase === 'Succeeded' || phase === 'Failed';
  }

  #status(pod: V1Pod, record: PodRecord | undefined) {
    return podStatus({
      pod,
      record,
      hostIP: this.#o.node.address,
      probes: (id) => this.probeView(id),
      now: new Date().toISOString(),
    });
  }

  async #writeStatus(pod: V1Pod, record: PodRecord | undefined): Promise<void> {
    const status = this.#status(pod, record);
    const uid = pod.metadata?.uid ?? '';
    // Times of conditions that did not change come from the pod itself; the key leaves them out, so a sync on a
    // cached pod that has not seen the last write yet does not write the same status again.
    const text = statusKey(status);
    if (this.#lastStatus.get(uid) === text) return;
    await this.#core.patchNamespacedPodStatus(
      { name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '', body: { status } },
      strategic(),
    );
    this.#lastStatus.set(uid, text);
  }

  // ---- sandbox ----------------------------------------------------------------------------------------------

  #allocateAddress(): string {
    const used = new Set(
      this.#o.records
        .all()
        .filter((r) => r.ip && !r.hostNetwork && !r.sandboxReleased)
        .map((r) => r.ip),
    );
    const free = this.#o.range.addresses.find((a) => !used.has(a));
    if (!free) throw new Error(`the pod range ${this.#o.range.cidr} of node ${this.#o.config.name} is full`);
    return free;
  }

  async #ensureSandbox(pod: V1Pod, record: PodRecord): Promise<void> {
    const lost =
      record.sandboxReady &&
      !record.hostNetwork &&
      !this.#o.config.simulatePods &&
      record.netns !== undefined &&
      !existsSync(`/run/netns/${record.netns}`);
    if (record.sandboxReady && !lost) return;
    if (lost) {
      // As the kubelet: a pod whose sandbox vanished has its containers killed and starts over in a new one.
      this.#log.warn(
        { pod: podKey(record), uid: record.uid },
        'the pod sandbox is gone; re-creating it and restarting containers',
      );
      this.#o.events.record(
        pod,
        'Normal',
        'SandboxChanged',
        'Pod sandbox changed, it will be killed and re-created.',
      );
      for (const c of this.#allContainers(record)) {
        if (c.record.current) {
          this.#o.runtime?.signal(c.record.current, 'SIGKILL');
          this.#finishRun(pod, record, c.which, c.spec, c.record, 137, 'Error');
        }
      }
      record.ip = undefined;
      record.sandboxReady = false;
    }
    const dir = podDir(this.#o.paths, record.uid);
    await mkdir(dir, { recursive: true, mode: 0o750 });
    if (record.hostNetwork) {
      record.ip = this.#o.node.address;
    } else {
      record.ip ??= this.#allocateAddress();
      if (!this.#o.config.simulatePods) {
        record.netns = podNetns(this.#o.node, record.uid);
        await createPodNetwork(
          this.#o.node,
          { netns: record.netns, veth: podVeth(record.uid), address: record.ip },
          this.#o.range,
        );
      }
    }
    const hostname = this.#hostname(pod);
    await writeHostsFile(
      join(dir, 'etc-hosts'),
      record.ip,
      hostname,
      pod.spec?.subdomain
        ? `${pod.spec.subdomain}.${record.namespace}.svc.${NETWORK.clusterDomain}`
        : undefined,
    );
    await writeFile(join(dir, 'etc-hostname'), `${hostname}\n`);
    this.#nodeResolvConf ??= readFile('/etc/resolv.conf', 'utf8').then(parseResolvConf, () =>
      parseResolvConf(''),
    );
    await writeFile(
      join(dir, 'etc-resolv.conf'),
      renderResolvConf(podResolvConf(pod, await this.#nodeResolvConf)),
    );
    record.sandboxReady = true;
    await this.#o.records.save(record);
  }

  #hostname(pod: V1Pod): string {
    if (pod.spec?.hostNetwork) return this.#o.config.name;
    return (pod.spec?.hostname ?? pod.metadata?.name ?? 'pod').slice(0, 63);
  }

  async #releaseSandbox(record: PodRecord): Promise<void> {
    if (record.netns) await deletePodNetwork(record.netns);
    this.#o.devices.release(record.uid);
    record.allocations = {};
    record.sandboxReleased = true;
    await this.#o.records.save(record);
  }

  // ---- volumes ----------------------------------------------------------------------------------------------

  #downward(pod: V1Pod, record: PodRecord): DownwardContext {
    return {
      pod,
      nodeName: this.#o.config.name,
      hostIP: this.#o.node.address,
      podIP: record.ip,
      nodeAllocatable: this.#o.config.capacity,
    };
  }

  async #volumes(pod: V1Pod, record: PodRecord, force: boolean): Promise<Map<string, PreparedVolume>> {
    const cached = this.#volumesAt.get(record.uid);
    if (cached && !force && Date.now() - cached.at < VOLUME_REFRESH_MS) return cached.volumes;
    const volumes = await this.#o.volumes.prepare(pod, this.#downward(pod, record));
    this.#volumesAt.set(record.uid, { at: Date.now(), volumes });
    return volumes;
  }

  /** The folder of an image volume's image; starts building the test guest when it is asked for and missing. */
  async imageRoot(reference: string): Promise<string> {
    const image = await this.#image(reference);
    if (image === 'pulling')
      throw new Error(
        `pulling image ${reference} (devcluster is building the test guest into its image store)`,
      );
    if (!image.rootfs)
      throw new Error(
        `image ${reference} has no files devcluster can mount (only images in the local store do)`,
      );
    return image.rootfs;
  }

  async #image(reference: string): Promise<ImageConfig | 'pulling'> {
    const failure = this.#pullFailures.get(reference);
    try {
      return await resolveImage(reference, this.#o.images);
    } catch (err) {
      if (!(err instanceof ImageError) || !isTestGuestImage(reference)) throw err;
      if (failure) throw new ImageError('ErrImagePull', failure);
      if (!this.#pulls.has(reference)) {
        const log = this.#log.child({ image: reference });
        log.info('building the test guest into the image store');
        this.#pulls.set(
          reference,
          ensureTestGuestImage(this.#o.images.storeDir, reference, (m) => log.info(m))
            .then(() => undefined)
            .catch((e: unknown) => {
              this.#pullFailures.set(
                reference,
                `building the test guest for ${reference} failed: ${(e as Error).message}`,
              );
            })
            .finally(() => {
              this.#pulls.delete(reference);
              for (const r of this.#o.records.all()) this.#o.enqueue(podKey(r));
            }),
        );
      }
      return 'pulling';
    }
  }

  // ---- containers -------------------------------------------------------------------------------------------

  #allContainers(record: PodRecord): { which: Which; spec: V1Container; record: ContainerRecord }[] {
    const out: { which: Which; spec: V1Container; record: ContainerRecord }[] = [];
    for (const r of Object.values(record.initContainers))
      out.push({ which: 'init', spec: { name: r.name }, record: r });
    for (const r of Object.values(record.containers))
      out.push({ which: 'main', spec: { name: r.name }, record: r });
    return out;
  }

  #exitCode(handle: ContainerHandle): number | undefined {
    if (!this.#o.runtime) return undefined;
    return this.#o.runtime.exitCode(handle);
  }

  /** Records the end of a container's run and decides, by restartPolicy, whether and when it runs again. */
  #finishRun(
    pod: V1Pod,
    record: PodRecord,
    which: Which,
    spec: V1Container,
    c: ContainerRecord,
    exitCode: number,
    reason?: string,
    message?: string,
  ): void {
    const current = c.current;
    if (!current) return;
    this.#probers.get(current.id)?.stop();
    this.#probers.delete(current.id);
    this.#envs.delete(current.id);
    this.#killAt.delete(current.id);
    const finishedAt = new Date().toISOString();
    if (c.lastTermination) c.previousTermination = c.lastTermination;
    c.lastTermination = {
      exitCode,
      reason: reason ?? (exitCode === 0 ? 'Completed' : 'Error'),
      ...(message ? { message } : {}),
      startedAt: current.startedAt,
      finishedAt,
      containerID: containerId(current.id),
    };
    c.current = undefined;
    void this.#o.runtime?.remove(current);
    if (record.terminating) {
      c.waiting = undefined;
      return;
    }
    const podPolicy = pod.spec?.restartPolicy ?? 'Always';
    const restart =
      which === 'init'
        ? isSidecar(spec) || (podPolicy !== 'Never' && exitCode !== 0)
        : podPolicy === 'Always' || (podPolicy === 'OnFailure' && exitCode !== 0);
    if (!restart) {
      c.waiting = undefined;
      c.backoffUntil = undefined;
      return;
    }
    const ranMs = Date.now() - Date.parse(current.startedAt);
    if (ranMs > STABLE_RUN_MS) c.backoffMs = undefined;
    const delay = c.backoffMs ?? 0;
    c.backoffMs = c.backoffMs ? Math.min(c.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
    c.backoffUntil = new Date(Date.now() + delay).toISOString();
    c.waiting =
      delay > 0
        ? {
            reason: 'CrashLoopBackOff',
            message: `back-off ${Math.round(delay / 1000)}s restarting failed container=${spec.name} pod=${record.name}_${record.namespace}(${record.uid})`,
          }
        : { reason: 'ContainerCreating' };
    if (delay > 0)
      this.#o.events.record(
        pod,
        'Warning',
        'BackOff',
        'Back-off restarting failed container',
        this.#fieldPath(which, spec),
      );
  }

  #fieldPath(which: Which, spec: V1Container): string {
    return `spec.${which === 'init' ? 'initContainers' : 'containers'}{${spec.name}}`;
  }

  /** Termination message of a finished run: the termination-log file, or the log's tail for FallbackToLogsOnError. */
  async #terminationMessage(
    spec: V1Container,
    handle: ContainerHandle,
    exitCode: number,
  ): Promise<string | undefined> {
    const file = join(handle.dir, '..', `${handle.id}.termination-log`);
    const text = await readFile(file, 'utf8').catch(() => '');
    await rm(file, { force: true });
    if (text) return text.slice(0, TERMINATION_MESSAGE_MAX);
    if (spec.terminationMessagePolicy === 'FallbackToLogsOnError' && exitCode !== 0) {
      const log = await readFile(handle.logFile, 'utf8').catch(() => '');
      return log.trimEnd().split('\n').slice(-80).join('\n').slice(-2048) || undefined;
    }
    return undefined;
  }

  async #collectExits(pod: V1Pod, record: PodRecord): Promise<boolean> {
    let changed = false;
    const specs = new Map<string, V1Container>();
    for (const c of pod.spec?.initContainers ?? []) specs.set(`init/${c.name}`, c);
    for (const c of pod.spec?.containers ?? []) specs.set(`main/${c.name}`, c);
    for (const { which, record: c } of this.#allContainers(record)) {
      const handle = c.current;
      if (!handle) continue;
      const spec = specs.get(`${which}/${c.name}`) ?? { name: c.name };
      const killAt = this.#killAt.get(handle.id);
      if (killAt !== undefined && Date.now() >= killAt) this.#o.runtime?.signal(handle, 'SIGKILL');
      const code = this.#exitCode(handle);
      if (code === undefined) continue;
      const message = await this.#terminationMessage(spec, handle, code);
      this.#finishRun(pod, record, which, spec, c, code, undefined, message);
      changed = true;
    }
    if (changed) await this.#o.records.save(record);
    return changed;
  }

  /** Simulate mode (as KWOK does): an address, and every container Running and Ready, without any process. */
  async #simulate(pod: V1Pod, record: PodRecord): Promise<undefined> {
    if (!record.sandboxReady) {
      record.ip = record.hostNetwork ? this.#o.node.address : this.#allocateAddress();
      record.sandboxReady = true;
    }
    const now = new Date().toISOString();
    for (const spec of pod.spec?.containers ?? []) {
      const c = (record.containers[spec.name] ??= newContainerRecord(spec.name));
      if (c.current) continue;
      const id = randomBytes(8).toString('hex');
      c.current = {
        id,
        dir: '',
        shimPid: 0,
        initPid: 0,
        startedAt: now,
        logFile: '',
        imageRef: spec.image ?? '',
        init: false,
      };
      c.runs = 1;
    }
    for (const spec of pod.spec?.initContainers ?? []) {
      const c = (record.initContainers[spec.name] ??= newContainerRecord(spec.name));
      c.lastTermination ??= { exitCode: 0, reason: 'Completed', startedAt: now, finishedAt: now };
      c.runs = 1;
    }
    await this.#o.records.save(record);
    return undefined;
  }

  /** Sandbox, volumes and containers of a live pod; returns when to look again. */
  async #syncRunning(pod: V1Pod, record: PodRecord): Promise<number | undefined> {
    if (this.#o.config.simulatePods) return this.#simulate(pod, record);
    await this.#collectExits(pod, record);
    if (this.#terminal(pod, record)) return undefined;
    await this.#ensureSandbox(pod, record);
    let volumes: Map<string, PreparedVolume>;
    try {
      volumes = await this.#volumes(pod, record, false);
    } catch (err) {
      if (!(err instanceof VolumeError)) throw err;
      this.#o.events.record(pod, 'Warning', 'FailedMount', `MountVolume.SetUp failed for ${err.message}`);
      for (const c of pod.spec?.containers ?? []) {
        const r = (record.containers[c.name] ??= newContainerRecord(c.name));
        if (!r.current && !r.lastTermination)
          r.waiting = { reason: 'ContainerCreating', message: err.message };
      }
      return 2_000;
    }
    this.#adoptProbers(pod, record);
    let requeue: number | undefined = VOLUME_REFRESH_MS;
    const now = Date.now();
    const restartPolicy = pod.spec?.restartPolicy ?? 'Always';
    for (const spec of pod.spec?.initContainers ?? []) {
      const c = (record.initContainers[spec.name] ??= newContainerRecord(spec.name));
      if (isSidecar(spec)) {
        if (c.current) {
          if (this.probeView(c.current.id).started) continue;
          return requeue;
        }
      } else {
        if (c.current) return requeue;
        if (c.lastTermination?.exitCode === 0) continue;
        if (c.lastTermination && restartPolicy === 'Never') return undefined;
      }
      const wait = c.backoffUntil ? Date.parse(c.backoffUntil) - now : 0;
      if (wait > 0) return minDelay(requeue, wait);
      requeue = minDelay(requeue, await this.#start(pod, record, 'init', spec, volumes));
      if (!isSidecar(spec) || !c.current) return requeue;
    }
    for (const spec of pod.spec?.containers ?? []) {
      const c = (record.containers[spec.name] ??= newContainerRecord(spec.name));
      if (c.current) continue;
      if (c.lastTermination && !c.waiting) continue;
      const wait = c.backoffUntil ? Date.parse(c.backoffUntil) - now : 0;
      if (wait > 0) {
        requeue = minDelay(requeue, wait);
        continue;
      }
      requeue = minDelay(requeue, await this.#start(pod, record, 'main', spec, volumes));
    }
    return requeue;
  }

  /** Probers for containers a restarted agent found running (probes live in memory only). */
  #adoptProbers(pod: V1Pod, record: PodRecord): void {
    if (!this.#o.runtime) return;
    const specs = [...(pod.spec?.initContainers ?? []), ...(pod.spec?.containers ?? [])];
    for (const { record: c } of this.#allContainers(record)) {
      const handle = c.current;
      const spec = specs.find((s) => s.name === c.name);
      if (!handle || !spec || this.#probers.has(handle.id)) continue;
      this.#startProber(pod, record, spec, handle, handle.init, this.#envs.get(handle.id) ?? new Map());
    }
  }

  #startProber(
    pod: V1Pod,
    record: PodRecord,
    spec: V1Container,
    handle: ContainerHandle,
    init: boolean,
    env: ReadonlyMap<string, string>,
  ): void {
    if (!spec.startupProbe && !spec.readinessProbe && !spec.livenessProbe) return;
    const key = podKey(record);
    const runtime = this.#o.runtime;
    const prober = new ContainerProber(
      {
        podIP: record.ip ?? this.#o.node.address,
        container: spec,
        exec: (command, timeoutMs) =>
          runtime
            ? execInContainer(runtime.commandPid(handle, init), env, command, timeoutMs)
            : Promise.resolve({ ok: true, message: '' }),
      },
      {
        changed: () => this.#o.enqueue(key),
        unhealthy: (kind, message) =>
          this.#o.events.record(
            pod,
            'Warning',
            'Unhealthy',
            `${kind[0]?.toUpperCase()}${kind.slice(1)} probe failed: ${message}`,
            `spec.containers{${spec.name}}`,
          ),
        failed: (kind, message) => {
          this.#log.info({ pod: key, container: spec.name, kind }, 'probe failed; restarting the container');
          this.#o.events.record(
            pod,
            'Normal',
            'Killing',
            `Container ${spec.name} failed ${kind} probe, will be restarted`,
            `spec.containers{${spec.name}}`,
          );
          const probe = kind === 'liveness' ? spec.livenessProbe : spec.startupProbe;
          const grace = probe?.terminationGracePeriodSeconds ?? pod.spec?.terminationGracePeriodSeconds ?? 30;
          runtime?.signal(handle, 'SIGTERM');
          this.#killAt.set(handle.id, Date.now() + grace * 1000);
          setTimeout(() => this.#o.enqueue(key), grace * 1000 + 50).unref();
          void message;
        },
      },
    );
    this.#probers.set(handle.id, prober);
    prober.start();
  }

  async #envSources(
    pod: V1Pod,
    spec: V1Container,
  ): Promise<{ configMaps: Map<string, V1ConfigMap>; secrets: Map<string, V1Secret> }> {
    const refs = envReferences(spec);
    const namespace = pod.metadata?.namespace ?? '';
    const configMaps = new Map<string, V1ConfigMap>();
    const secrets = new Map<string, V1Secret>();
    const notFound = (err: unknown) => (err as { code?: number }).code === 404;
    for (const name of refs.configMaps) {
      try {
        configMaps.set(name, await this.#core.readNamespacedConfigMap({ name, namespace }));
      } catch (err) {
        if (!notFound(err)) throw err;
      }
    }
    for (const name of refs.secrets) {
      try {
        secrets.set(name, await this.#core.readNamespacedSecret({ name, namespace }));
      } catch (err) {
        if (!notFound(err)) throw err;
      }
    }
    return { configMaps, secrets };
  }

  #serviceEnv(hostname: string): Record<string, string> {
    const host = NETWORK.controlPlaneAddress;
    const port = String(PORTS.apiserver);
    return {
      HOSTNAME: hostname,
      // The API server's own address, not the kubernetes Service's ClusterIP a kubelet gives (which each node's
      // kube-proxy carries too): it keeps pods independent of kube-proxy's first sync.
      KUBERNETES_SERVICE_HOST: host,
      KUBERNETES_SERVICE_PORT: port,
      KUBERNETES_SERVICE_PORT_HTTPS: port,
      KUBERNETES_PORT: `tcp://${host}:${port}`,
      [`KUBERNETES_PORT_${port}_TCP`]: `tcp://${host}:${port}`,
      [`KUBERNETES_PORT_${port}_TCP_PROTO`]: 'tcp',
      [`KUBERNETES_PORT_${port}_TCP_PORT`]: port,
      [`KUBERNETES_PORT_${port}_TCP_ADDR`]: host,
    };
  }

  async #qemuCapabilities(): Promise<string | undefined> {
    this.#capabilities ??= (async () => {
      const script = join(this.#o.config.repoRoot, 'packages', 'launcher', 'src', 'capabilities-cache.ts');
      try {
        const { stdout } = await execFileAsync(
          process.execPath,
          ['--conditions=@kubevirt-ts/source', script],
          { timeout: 180_000 },
        );
        return stdout.trim() || undefined;
      } catch (err) {
        this.#log.warn(
          { err },
          'no QEMU capability cache for launcher pods; libvirt will probe QEMU (about 8 s per VM start)',
        );
        return undefined;
      }
    })();
    return this.#capabilities;
  }

  /** Waiting state for a container that cannot start yet, with an event; returns when to try again. */
  #cannotStart(
    pod: V1Pod,
    record: PodRecord,
    which: Which,
    spec: V1Container,
    c: ContainerRecord,
    reason: string,
    message: string,
  ): number {
    const previous = c.waiting?.reason;
    c.waiting = { reason, message };
    if (reason === 'ErrImagePull' && previous === 'ErrImagePull') c.waiting.reason = 'ImagePullBackOff';
    this.#o.events.record(pod, 'Warning', 'Failed', message, this.#fieldPath(which, spec));
    c.backoffMs = c.backoffMs ? Math.min(c.backoffMs * 2, MAX_BACKOFF_MS) : FIRST_BACKOFF_MS;
    c.backoffUntil = new Date(Date.now() + c.backoffMs).toISOString();
    void this.#o.records.save(record);
    return c.backoffMs;
  }

  async #start(
    pod: V1Pod,
    record: PodRecord,
    which: Which,
    spec: V1Container,
    volumes: Map<string, PreparedVolume>,
  ): Promise<number | undefined> {
    const c =
      which === 'init'
        ? (record.initContainers[spec.name] ??= newContainerRecord(spec.name))
        : (record.containers[spec.name] ??= newContainerRecord(spec.name));
    const log = this.#log.child({ pod: podKey(record), container: spec.name });
    let image: ImageConfig | 'pulling';
    try {
      image = await this.#image(spec.image ?? '');
    } catch (err) {
      if (err instanceof ImageError)
        return this.#cannotStart(pod, record, which, spec, c, err.reason, err.message);
      throw err;
    }
    if (image === 'pulling') {
      c.waiting = {
        reason: 'ContainerCreating',
        message: `pulling image ${spec.image} (building the test guest)`,
      };
      this.#o.events.record(
        pod,
        'Normal',
        'Pulling',
        `Pulling image "${spec.image}"`,
        this.#fieldPath(which, spec),
      );
      return 5_000;
    }
    const hostname = this.#hostname(pod);
    if (
      image.kind === 'service' &&
      spec.image &&
      image.privatePaths.some((p) => p.path === '/var/cache/libvirt')
    ) {
      const caps = await this.#qemuCapabilities();
      if (caps) image = await resolveImage(spec.image, { ...this.#o.images, qemuCapabilities: caps });
    }
    let env: Map<string, string>;
    try {
      env = envFor(
        spec,
        { ...image.env, ...this.#serviceEnv(hostname) },
        await this.#envSources(pod, spec),
        this.#downward(pod, record),
      );
    } catch (err) {
      if (err instanceof ContainerConfigError)
        return this.#cannotStart(pod, record, which, spec, c, 'CreateContainerConfigError', err.message);
      throw err;
    }
    if (!env.has('PATH'))
      env.set('PATH', image.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
    const argv = containerArgv(spec, image, env);
    if (argv.length === 0) {
      return this.#cannotStart(
        pod,
        record,
        which,
        spec,
        c,
        'CreateContainerError',
        `image ${spec.image} has no command and the container sets none (no command specified)`,
      );
    }
    if ((spec.volumeDevices ?? []).length > 0) {
      return this.#cannotStart(
        pod,
        record,
        which,
        spec,
        c,
        'CreateContainerConfigError',
        'volumeDevices (block volumes) are not supported on devcluster',
      );
    }
    // Device plugins: what Allocate returned goes into the container (envs, mounts, device nodes).
    const mounts: SandboxMount[] = [];
    for (const [resource, count] of extendedResources(spec)) {
      if (!this.#o.devices.serves(resource)) {
        return this.#cannotStart(
          pod,
          record,
          which,
          spec,
          c,
          'CreateContainerConfigError',
          `no device plugin on node ${this.#o.config.name} serves ${resource}`,
        );
      }
      try {
        const allocation = await this.#o.devices.allocate(record.uid, spec.name, resource, count);
        record.allocations[`${spec.name}/${resource}`] = allocation;
        for (const [k, v] of Object.entries(allocation.response.envs)) env.set(k, v);
        for (const m of allocation.response.mounts) {
          mounts.push({
            source: m.hostPath,
            target: m.containerPath,
            readOnly: m.readOnly,
            file: (await stat(m.hostPath).catch(() => undefined))?.isDirectory() === false,
          });
        }
        for (const d of allocation.response.devices)
          mounts.push({ source: d.hostPath, target: d.containerPath, readOnly: false, file: true });
      } catch (err) {
        return this.#cannotStart(
          pod,
          record,
          which,
          spec,
          c,
          'UnexpectedAdmissionError',
          `allocating ${resource}: ${(err as Error).message}`,
        );
      }
    }
    for (const vm of spec.volumeMounts ?? []) {
      const volume = volumes.get(vm.name);
      if (!volume) {
        return this.#cannotStart(
          pod,
          record,
          which,
          spec,
          c,
          'CreateContainerConfigError',
          `volumeMount ${vm.name}: the pod has no volume of that name`,
        );
      }
      let source = volume.path;
      const sub = vm.subPathExpr ? expandReferences(vm.subPathExpr, env) : vm.subPath;
      if (sub) {
        if (sub.split('/').includes('..') || sub.startsWith('/')) {
          return this.#cannotStart(
            pod,
            record,
            which,
            spec,
            c,
            'CreateContainerConfigError',
            `volumeMount ${vm.name}: subPath ${sub} must be relative and stay inside the volume`,
          );
        }
        source = join(volume.path, sub);
        if (!(await stat(source).catch(() => undefined)) && !volume.readOnly)
          await mkdir(source, { recursive: true, mode: 0o755 });
      }
      const st = await stat(source).catch(() => undefined);
      mounts.push({
        source,
        target: vm.mountPath,
        readOnly: vm.readOnly === true || volume.readOnly,
        file: st !== undefined && !st.isDirectory(),
      });
    }
    const dir = podDir(this.#o.paths, record.uid);
    const id = randomBytes(8).toString('hex');
    const privileged = spec.securityContext?.privileged === true;
    mounts.push({ source: join(dir, 'etc-hosts'), target: '/etc/hosts', readOnly: false, file: true });
    mounts.push({ source: join(dir, 'etc-hostname'), target: '/etc/hostname', readOnly: false, file: true });
    // Absent only in a sandbox an older agent made; the container then keeps the machine's resolver settings.
    if (existsSync(join(dir, 'etc-resolv.conf'))) {
      mounts.push({
        source: join(dir, 'etc-resolv.conf'),
        target: '/etc/resolv.conf',
        readOnly: false,
        file: true,
      });
    }
    if (!privileged) {
      const terminationLog = join(this.#o.paths.containers, `${id}.termination-log`);
      await mkdir(this.#o.paths.containers, { recursive: true, mode: 0o700 });
      await writeFile(terminationLog, '', { mode: 0o666 });
      mounts.push({
        source: terminationLog,
        target: spec.terminationMessagePath ?? '/dev/termination-log',
        readOnly: false,
        file: true,
      });
    }
    const logFile = containerLogFile(this.#o.paths, record, spec.name, c.runs);
    c.waiting = undefined;
    const runtime = this.#o.runtime;
    if (!runtime) throw new Error('no container runtime (simulate mode starts no container)');
    const result = await runtime.start(
      {
        id,
        dir: join(this.#o.paths.containers, id),
        sandbox: {
          hostname,
          mounts,
          privatePaths: image.privatePaths,
          files: image.files,
          workingDir: spec.workingDir ?? image.workingDir ?? '/',
          argv,
          init: image.init,
          pidNamespace: pod.spec?.hostPID !== true,
          privileged,
        },
        netnsPath: record.netns ? `/run/netns/${record.netns}` : undefined,
        logFile,
        env,
      },
      () => this.#o.enqueue(podKey(record)),
    );
    c.runs += 1;
    c.restartCount = c.runs - 1;
    if (!result.ok) {
      log.warn({ message: result.message }, 'container failed to start');
      this.#o.events.record(
        pod,
        'Warning',
        'Failed',
        `Error: ${result.message}`,
        this.#fieldPath(which, spec),
      );
      c.current = {
        id,
        dir: join(this.#o.paths.containers, id),
        shimPid: 0,
        initPid: 0,
        startedAt: new Date().toISOString(),
        logFile,
        imageRef: spec.image ?? '',
        init: image.init,
      };
      this.#finishRun(pod, record, which, spec, c, result.exitCode ?? 128, 'StartError', result.message);
      await this.#o.records.save(record);
      return c.backoffUntil ? Math.max(0, Date.parse(c.backoffUntil) - Date.now()) : undefined;
    }
    c.current = { ...result.handle, imageRef: spec.image ?? '', init: image.init };
    await this.#o.records.save(record);
    this.#envs.set(id, env);
    log.info({ containerId: id, initPid: result.handle.initPid }, 'container started');
    this.#o.events.record(
      pod,
      'Normal',
      'Started',
      `Started container ${spec.name}`,
      this.#fieldPath(which, spec),
    );
    this.#startProber(pod, record, spec, result.handle, image.init, env);
    return undefined;
  }

  // ---- termination ------------------------------------------------------------------------------------------

  /**
   * Stops every container of the record (SIGTERM, SIGKILL once the grace period is over), then releases the
   * sandbox and devices, finishes the pod's deletion in the API (when `pod` is given) and forgets the pod.
   * Returns when to look again while containers are still stopping.
   */
  async #terminate(
    record: PodRecord,
    pod: V1Pod | undefined,
    graceSeconds: number,
    reason: string,
  ): Promise<number | undefined> {
    const now = Date.now();
    const running = this.#allContainers(record).filter(
      (c) => c.record.current && this.#exitCode(c.record.current) === undefined,
    );
    if (!record.terminating) {
      record.terminating = {
        since: new Date(now).toISOString(),
        killAt: new Date(now + graceSeconds * 1000).toISOString(),
        reason,
      };
      for (const c of running) {
        const handle = c.record.current as ContainerHandle;
        if (pod)
          this.#o.events.record(
            pod,
            'Normal',
            'Killing',
            `Stopping container ${c.record.name}`,
            this.#fieldPath(c.which, c.spec),
          );
        if (graceSeconds <= 0) this.#o.runtime?.signal(handle, 'SIGKILL');
        else this.#o.runtime?.signal(handle, 'SIGTERM');
      }
      for (const prober of running.map((c) => this.#probers.get(c.record.current?.id ?? ''))) prober?.stop();
      this.#log.info(
        { pod: podKey(record), uid: record.uid, graceSeconds, reason, running: running.length },
        'stopping the pod',
      );
      await this.#o.records.save(record);
    }
    // A second delete with a shorter grace period brings the SIGKILL forward, as it does for the kubelet.
    const shorter = Date.parse(record.terminating.since) + graceSeconds * 1000;
    if (shorter < Date.parse(record.terminating.killAt)) {
      record.terminating.killAt = new Date(shorter).toISOString();
      await this.#o.records.save(record);
    }
    const killAt = Date.parse(record.terminating.killAt);
    if (running.length > 0 && this.#o.runtime) {
      if (now >= killAt) {
        for (const c of running) this.#o.runtime.signal(c.record.current as ContainerHandle, 'SIGKILL');
        return 100;
      }
      return Math.min(killAt - now, 1_000);
    }
    // Everything has stopped.
    for (const c of this.#allContainers(record)) {
      const handle = c.record.current;
      if (!handle) continue;
      const code = this.#o.runtime ? (this.#exitCode(handle) ?? 137) : 0;
      this.#finishRun(pod ?? { spec: { containers: [] } }, record, c.which, c.spec, c.record, code);
    }
    if (!record.sandboxReleased) await this.#releaseSandbox(record);
    if (pod) {
      await this.#writeStatus(pod, record).catch((err: unknown) =>
        this.#log.debug({ err }, 'final status not written'),
      );
      await this.#deleteApiPod(pod);
    }
    await rm(podDir(this.#o.paths, record.uid), { recursive: true, force: true });
    this.#o.volumes.forget(record.uid);
    this.#volumesAt.delete(record.uid);
    this.#lastStatus.delete(record.uid);
    await this.#o.records.remove(record.uid);
    this.#log.info({ pod: podKey(record), uid: record.uid }, 'pod stopped and cleaned up');
    return undefined;
  }

  async #deleteApiPod(pod: V1Pod): Promise<void> {
    try {
      await this.#core.deleteNamespacedPod({
        name: pod.metadata?.name ?? '',
        namespace: pod.metadata?.namespace ?? '',
        gracePeriodSeconds: 0,
        body: { gracePeriodSeconds: 0, preconditions: { uid: pod.metadata?.uid ?? '' } },
      });
    } catch (err) {
      const code = (err as { code?: number }).code;
      // Gone already, or replaced by a new pod of the same name (the uid precondition failed).
      if (code !== 404 && code !== 409) throw err;
    }
  }
}

/** A finished run's data for tests and the CLI. */
export type { TerminatedRun };
