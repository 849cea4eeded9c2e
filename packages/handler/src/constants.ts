// Names virt-handler shares with KubeVirt and with the other services: labels, annotations, condition types, event
// reasons and the file names in a launcher pod's sockets folder (DESIGN.md §4a, reference §1.7 and §3). Defined once
// here; the controller keeps its own copy until @kubevirt-ts/schema takes them.

export const LABELS = {
  /** On a VMI once it is Scheduled: the node that runs it. The handler's informer selects by it. */
  nodeName: 'kubevirt.io/nodeName',
  /** On a Node: `true` while its handler is alive and its device plugins are registered. */
  schedulable: 'kubevirt.io/schedulable',
  /** On a Node: whether /dev/kvm can be opened there (`true`/`false`); kubevirt-ts's own label. */
  kvmUsable: 'kubevirt-ts.dev/kvm-usable',
} as const;

export const ANNOTATIONS = {
  /** On a Node: when its handler last said it is alive (RFC 3339). */
  heartbeat: 'kubevirt.io/heartbeat',
} as const;

/** The VMI condition types the handler writes (the controller owns Ready, PodScheduled and the early Synchronized). */
export const CONDITIONS = {
  ready: 'Ready',
  paused: 'Paused',
  agentConnected: 'AgentConnected',
  synchronized: 'Synchronized',
} as const;

/** Condition reasons, as KubeVirt words them. */
export const CONDITION_REASONS = {
  pausedByUser: 'PausedByUser',
  pausedIOError: 'PausedIOError',
  paused: 'Paused',
  guestNotRunning: 'GuestNotRunning',
  /** KubeVirt's reason of a failed Synchronized condition, kept verbatim for tools that match on it. */
  syncFailed: 'Synchronizing with the Domain failed.',
  launcherUnresponsive: 'LauncherUnresponsive',
} as const;

/** Kubernetes Event reasons the handler records on a VMI (KubeVirt's where it has one). */
export const EVENT_REASONS = {
  created: 'Created',
  started: 'Started',
  shuttingDown: 'ShuttingDown',
  stopped: 'Stopped',
  deleted: 'Deleted',
  syncFailed: 'SyncFailed',
  launcherUnresponsive: 'LauncherUnresponsive',
  paused: 'Paused',
  resumed: 'Resumed',
} as const;

/** Files in a launcher pod's `sockets` emptyDir. */
export const SOCKETS = {
  /** The launcher's command socket while it initialises; it does not take commands yet. */
  launcherInit: 'launcher-init-sock',
  /** The launcher's command socket once it is ready (renamed from launcher-init-sock). */
  launcher: 'launcher-sock',
  /** The handler's notify.v1 server for this launcher. */
  notify: 'notify-sock',
  serial: 'serial0',
  vnc: 'vnc',
  /** Marker the handler leaves when the launcher stopped answering (KubeVirt's name). */
  unresponsiveMarker: 'launcher-unresponsive',
} as const;

/** The kubelet's folder of one emptyDir volume of a pod, relative to the pods folder. */
export function emptyDirPath(podUid: string, volume: string): string {
  return `${podUid}/volumes/kubernetes.io~empty-dir/${volume}`;
}

/** The launcher pod's sockets emptyDir (DESIGN.md §4a). */
export const SOCKETS_VOLUME = 'sockets';
/** The launcher pod's private emptyDir (DESIGN.md §4a): the handler leaves the pod network's cache there. */
export const PRIVATE_VOLUME = 'private';

/** KubeVirt's default terminationGracePeriodSeconds. */
export const DEFAULT_GRACE_PERIOD_SECONDS = 30;

/** A launcher that answers nothing for this long is unresponsive and its VMI Failed (KubeVirt's watchdog timeout). */
export const DEFAULT_UNRESPONSIVE_AFTER_MS = 30_000;

/** The handler's component name in Events and logs. */
export const COMPONENT = 'virt-handler';
