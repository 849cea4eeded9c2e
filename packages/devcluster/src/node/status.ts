// A pod's status as the kubelet reports it, computed from the pod, the agent's record of it and the probe results
// (pure): phase by the kubelet's rules, the conditions the kubelet owns (PodReadyToStartContainers, Initialized,
// ContainersReady, Ready with readiness gates; PodScheduled stays the scheduler's), container statuses with
// state, last state, restart counts, readiness, and the pod's and host's addresses.
import type {
  V1Container,
  V1ContainerState,
  V1ContainerStatus,
  V1Pod,
  V1PodCondition,
  V1PodStatus,
} from '@kubernetes/client-node';
import type { ContainerRecord, PodRecord, TerminatedRun } from './records.ts';

export interface ProbeView {
  ready: boolean;
  started: boolean;
}

export interface StatusInput {
  pod: V1Pod;
  record: PodRecord | undefined;
  hostIP: string;
  /** Readiness and startup of a container's current run. */
  probes: (containerId: string) => ProbeView;
  now: string;
}

export const KUBELET_CONDITIONS = [
  'PodReadyToStartContainers',
  'Initialized',
  'ContainersReady',
  'Ready',
] as const;

export function isSidecar(container: V1Container): boolean {
  return container.restartPolicy === 'Always';
}

export function containerId(id: string): string {
  return `devcluster://${id}`;
}

function terminatedState(run: TerminatedRun | undefined): V1ContainerState | undefined {
  if (!run) return undefined;
  return {
    terminated: {
      exitCode: run.exitCode,
      reason: run.reason,
      ...(run.message ? { message: run.message } : {}),
      ...(run.startedAt ? { startedAt: new Date(run.startedAt) } : {}),
      finishedAt: new Date(run.finishedAt),
      ...(run.containerID ? { containerID: run.containerID } : {}),
    },
  };
}

function containerStatus(
  spec: V1Container,
  record: ContainerRecord | undefined,
  input: StatusInput,
  notStartedReason: string,
): V1ContainerStatus {
  const status: V1ContainerStatus = {
    name: spec.name,
    image: spec.image ?? '',
    imageID: '',
    ready: false,
    restartCount: record?.restartCount ?? 0,
    started: false,
    state: { waiting: { reason: notStartedReason } },
  };
  if (!record) return status;
  const last = terminatedState(record.lastTermination);
  if (record.current) {
    const probe = input.probes(record.current.id);
    status.containerID = containerId(record.current.id);
    status.imageID = `devcluster://${record.current.imageRef}`;
    status.state = { running: { startedAt: new Date(record.current.startedAt) } };
    status.started = probe.started;
    status.ready = probe.ready;
    if (last) status.lastState = last;
  } else if (record.waiting) {
    status.state = {
      waiting: {
        reason: record.waiting.reason,
        ...(record.waiting.message ? { message: record.waiting.message } : {}),
      },
    };
    if (last) status.lastState = last;
  } else if (last) {
    status.state = last;
    if (record.lastTermination?.containerID) status.containerID = record.lastTermination.containerID;
    const before = terminatedState(record.previousTermination);
    if (before) status.lastState = before;
  }
  return status;
}

type Counted = 'running' | 'waiting' | 'succeeded' | 'failed';

function classify(status: V1ContainerStatus): Counted {
  if (status.state?.running) return 'running';
  if (status.state?.terminated) return status.state.terminated.exitCode === 0 ? 'succeeded' : 'failed';
  // Waiting after a run (crash loop): the kubelet counts it as stopped.
  if (status.lastState?.terminated)
    return status.lastState.terminated.exitCode === 0 ? 'succeeded' : 'failed';
  return 'waiting';
}

/** True when every init container has completed (a sidecar counts once it has started). */
export function initialized(pod: V1Pod, record: PodRecord | undefined): boolean {
  return (pod.spec?.initContainers ?? []).every((c) => {
    const r = record?.initContainers[c.name];
    if (isSidecar(c)) return r?.current !== undefined || (r?.restartCount ?? 0) > 0;
    return r?.lastTermination?.exitCode === 0 && !r.current;
  });
}

/** A failed init container that will not run again (restartPolicy Never). */
function initFailedForGood(pod: V1Pod, record: PodRecord | undefined): boolean {
  if (pod.spec?.restartPolicy !== 'Never') return false;
  return (pod.spec.initContainers ?? []).some((c) => {
    const r = record?.initContainers[c.name];
    return (
      !isSidecar(c) && !r?.current && r?.lastTermination !== undefined && r.lastTermination.exitCode !== 0
    );
  });
}

/** The kubelet's getPhase, plus: a pod whose containers were stopped for deletion is terminal. */
export function podPhase(
  pod: V1Pod,
  record: PodRecord | undefined,
  statuses: V1ContainerStatus[],
): 'Pending' | 'Running' | 'Succeeded' | 'Failed' {
  const previous = pod.status?.phase;
  if (previous === 'Succeeded' || previous === 'Failed') return previous;
  if (initFailedForGood(pod, record)) return 'Failed';
  const counts: Record<Counted, number> = { running: 0, waiting: 0, succeeded: 0, failed: 0 };
  for (const s of statuses) counts[classify(s)] += 1;
  const stopped = counts.succeeded + counts.failed;
  const terminating = record?.terminating !== undefined;
  if (terminating && counts.running === 0 && stopped > 0 && counts.waiting === 0) {
    return counts.failed === 0 ? 'Succeeded' : 'Failed';
  }
  if (!initialized(pod, record)) return 'Pending';
  if (counts.waiting > 0) return 'Pending';
  if (counts.running > 0) return 'Running';
  if (stopped > 0) {
    const policy = pod.spec?.restartPolicy ?? 'Always';
    if (policy === 'Always') return 'Running';
    if (counts.failed === 0) return 'Succeeded';
    if (policy === 'Never') return 'Failed';
    return 'Running';
  }
  return 'Pending';
}

function condition(
  type: string,
  ok: boolean,
  reason: string | undefined,
  message: string | undefined,
  previous: V1PodCondition[] | undefined,
  now: string,
): V1PodCondition {
  const status = ok ? 'True' : 'False';
  const before = previous?.find((c) => c.type === type);
  const lastTransitionTime =
    before && before.status === status && before.lastTransitionTime
      ? before.lastTransitionTime
      : new Date(now);
  return {
    type,
    status,
    lastTransitionTime,
    ...(!ok && reason ? { reason } : {}),
    ...(!ok && message ? { message } : {}),
  };
}

export function podStatus(input: StatusInput): V1PodStatus {
  const { pod, record, now } = input;
  const spec = pod.spec;
  const previous = pod.status?.conditions;
  const inits = (spec?.initContainers ?? []).map((c) =>
    containerStatus(c, record?.initContainers[c.name], input, 'PodInitializing'),
  );
  const done = initialized(pod, record);
  const containers = (spec?.containers ?? []).map((c) =>
    containerStatus(c, record?.containers[c.name], input, done ? 'ContainerCreating' : 'PodInitializing'),
  );
  // Sidecars are restartable init containers: their readiness counts towards the pod's, like containers'.
  const sidecars = (spec?.initContainers ?? [])
    .filter(isSidecar)
    .map((c) => inits.find((s) => s.name === c.name));
  const readiness = [...containers, ...sidecars].filter((s): s is V1ContainerStatus => s !== undefined);
  const unready = readiness.filter((s) => !s.ready).map((s) => s.name);
  const phase = podPhase(pod, record, containers);
  const terminal = phase === 'Succeeded' || phase === 'Failed';
  const containersReady = unready.length === 0 && !terminal;
  const gates = (spec?.readinessGates ?? []).map((g) => g.conditionType);
  const missingGates = gates.filter((g) => previous?.find((c) => c.type === g)?.status !== 'True');
  const ready = containersReady && missingGates.length === 0;
  const readyMessage = !containersReady
    ? `containers with unready status: [${unready.join(' ')}]`
    : missingGates
        .map((g) => `corresponding condition of pod readiness gate "${g}" does not exist or is not True.`)
        .join(', ');
  const sandbox = record?.sandboxReady === true && record.sandboxReleased !== true;
  const conditions = [
    condition('PodReadyToStartContainers', sandbox, undefined, undefined, previous, now),
    condition(
      'Initialized',
      done,
      'ContainersNotInitialized',
      `containers with incomplete status: [${(spec?.initContainers ?? [])
        .filter((c) => !inits.find((s) => s.name === c.name)?.state?.terminated)
        .map((c) => c.name)
        .join(' ')}]`,
      previous,
      now,
    ),
    condition(
      'ContainersReady',
      containersReady,
      terminal ? 'PodCompleted' : 'ContainersNotReady',
      terminal ? undefined : readyMessage,
      previous,
      now,
    ),
    condition(
      'Ready',
      ready,
      terminal ? 'PodCompleted' : !containersReady ? 'ContainersNotReady' : 'ReadinessGatesNotReady',
      terminal ? undefined : readyMessage,
      previous,
      now,
    ),
  ];
  const status: V1PodStatus = {
    phase,
    conditions,
    hostIP: input.hostIP,
    hostIPs: [{ ip: input.hostIP }],
    startTime: new Date(record?.firstSeen ?? now),
    containerStatuses: containers,
  };
  if (inits.length > 0) status.initContainerStatuses = inits;
  if (record?.ip && !record.sandboxReleased) {
    status.podIP = record.ip;
    status.podIPs = [{ ip: record.ip }];
  } else if (record?.ip && pod.status?.podIP) {
    // The kubelet keeps reporting the last address of a terminated pod.
    status.podIP = pod.status.podIP;
    status.podIPs = pod.status.podIPs ?? [];
  }
  return status;
}

/**
 * What decides whether a computed status needs writing: the status without condition transition times. A sync that
 * runs on a pod from the informer cache before the node's own last status write reached it computes "now" as the
 * transition time of conditions that did not change; comparing with the times would write the same status again
 * (three extra patches per pod in simulate mode). A real transition changes a condition's status, so it still
 * changes the key.
 */
export function statusKey(status: V1PodStatus): string {
  return JSON.stringify(status, (key, value: unknown) => (key === 'lastTransitionTime' ? undefined : value));
}
