// The VMI status the handler reports, as pure functions of the VMI and what its launcher says (KubeVirt's
// updateVMIStatus and calculateVmPhaseForStatusReason, reference §2.1 and §3.4). The handler owns the phases
// Scheduled → Running → Succeeded/Failed of a VMI on its node, the Paused, AgentConnected and (from Scheduled on)
// Synchronized conditions, interfaces and guestOSInfo. The VMI controller owns Ready (from the launcher pod's Ready
// condition), PodScheduled, activePods and launcherContainerImageVersion; the handler only makes sure a VMI whose
// guest is gone does not still say Ready=True.
import type { Condition, VirtualMachineInstanceStatus } from '@kubevirt-ts/schema';
import { CONDITION_REASONS, CONDITIONS, EVENT_REASONS } from './constants.ts';
import type { Domain, DomainInterface, GuestAgentInfo } from './domain.ts';
import type { PodNetworkObservation } from './network/pod-network.ts';
import {
  acpiEnabled,
  findCondition,
  gracePeriodSeconds,
  isHandlerPhase,
  jsonCopy,
  jsonEqual,
  phaseOf,
  putCondition,
  removeCondition,
  rfc3339,
  type Phase,
  type VMI,
} from './vmi.ts';

/** What the handler knows about the launcher of one VMI when it computes the status. */
export interface LauncherObservation {
  /**
   * `ready`: the launcher answers commands; `initializing`: its pod is there but it does not take commands yet;
   * `unresponsive`: it stopped answering for longer than the watchdog allows; `gone`: its pod's sockets folder
   * vanished (the pod was removed).
   */
  state: 'ready' | 'initializing' | 'unresponsive' | 'gone';
  /** Whether `domain` reflects an answer of the launcher (GetDomain or an event) since the handler connected. */
  domainKnown: boolean;
  /** The domain, undefined when none is defined. A DELETED event's domain has metadata.deletionTimestamp. */
  domain: Domain | undefined;
  /** What the guest agent last reported, if anything. */
  guestInfo?: GuestAgentInfo | undefined;
  /** The pod network interface (masquerade) and the pod's addresses, once the handler prepared it. */
  podNetwork?: PodNetworkObservation | undefined;
}

export interface PhaseDecision {
  phase: Phase;
  /** CamelCase, for status.reason, when the phase is Failed for a reason worth naming. */
  reason?: string;
  /** For the Event that announces a final phase. */
  message?: string;
}

/**
 * The phase the domain implies for a VMI in a handler phase (Scheduled or Running); other phases are returned as
 * they are. Mirrors KubeVirt's table: running states → Running; powered off by the guest → Succeeded; crashed,
 * panicked, destroyed although ACPI and a grace period were available, vanished or unresponsive → Failed.
 */
export function calculatePhase(vmi: VMI, launcher: LauncherObservation): PhaseDecision {
  const current = phaseOf(vmi);
  if (!isHandlerPhase(vmi)) return { phase: current };

  if (launcher.state === 'unresponsive') {
    return {
      phase: 'Failed',
      reason: CONDITION_REASONS.launcherUnresponsive,
      message:
        'The virt-launcher of the VirtualMachineInstance stopped answering; its guest is considered lost.',
    };
  }
  if (launcher.state === 'gone') {
    return {
      phase: 'Failed',
      reason: 'LauncherGone',
      message: 'The launcher pod of the VirtualMachineInstance is gone.',
    };
  }
  if (!launcher.domainKnown) return { phase: current };

  const domain = launcher.domain;
  if (domain === undefined) {
    // Before the first Sync there is no domain yet; after the guest ran, a missing domain means it was lost.
    if (current === 'Running') {
      return {
        phase: 'Failed',
        reason: 'DomainDisappeared',
        message: 'The domain of the VirtualMachineInstance disappeared while it was running.',
      };
    }
    return { phase: current };
  }

  const { status, reason } = domain.status;
  switch (status) {
    case 'Running':
    case 'Blocked':
    case 'PMSuspended':
    case 'ShuttingDown':
      return deletedWhileActive(domain) ?? { phase: 'Running' };
    case 'Paused':
      if (reason === 'PostcopyFailed') {
        return { phase: 'Failed', reason: 'PostcopyFailed', message: 'A post-copy migration failed.' };
      }
      return deletedWhileActive(domain) ?? { phase: 'Running' };
    case 'Crashed':
      return {
        phase: 'Failed',
        reason: reason === 'Panicked' ? 'GuestPanicked' : 'GuestCrashed',
        message:
          reason === 'Panicked'
            ? 'The guest of the VirtualMachineInstance panicked.'
            : 'The VirtualMachineInstance crashed.',
      };
    case 'Shutoff':
      return shutoffPhase(vmi, domain, current);
    default:
      return { phase: current };
  }
}

function deletedWhileActive(domain: Domain): PhaseDecision | undefined {
  if (domain.metadata.deletionTimestamp === undefined) return undefined;
  return {
    phase: 'Failed',
    reason: 'DomainDisappeared',
    message: 'The domain of the VirtualMachineInstance was removed while its guest was running.',
  };
}

function shutoffPhase(vmi: VMI, domain: Domain, current: Phase): PhaseDecision {
  switch (domain.status.reason) {
    case 'Shutdown':
    case 'Saved':
    case 'FromSnapshot':
      return { phase: 'Succeeded', message: 'The VirtualMachineInstance was shut down.' };
    case 'Destroyed': {
      // A guest that was asked to power off (ACPI) and given a grace period, but had to be destroyed, ignored the
      // request: Failed. Without ACPI or without a grace period, destroying it was the way to stop it: Succeeded.
      const recorded = domain.spec.gracePeriod;
      const grace =
        recorded?.deletionTimestamp !== undefined
          ? recorded.deletionGracePeriodSeconds
          : gracePeriodSeconds(vmi);
      if (acpiEnabled(vmi) && grace > 0) {
        return {
          phase: 'Failed',
          reason: 'GuestShutdownTimedOut',
          message:
            'The VirtualMachineInstance was killed: its guest did not power off within the grace period.',
        };
      }
      return { phase: 'Succeeded', message: 'The VirtualMachineInstance was shut down.' };
    }
    case 'Crashed':
    case 'Failed':
      return {
        phase: 'Failed',
        reason: 'GuestCrashed',
        message: 'The VirtualMachineInstance crashed: its QEMU process ended unexpectedly.',
      };
    case 'Migrated':
      return { phase: current };
    default:
      // Shutoff without a reason: defined but never started (a Scheduled VMI before its first start). Once the
      // guest ran, a domain that went off without saying why is lost.
      if (current === 'Running') {
        return {
          phase: 'Failed',
          reason: 'GuestStopped',
          message: 'The VirtualMachineInstance stopped for an unknown reason.',
        };
      }
      return { phase: current };
  }
}

export interface StatusInput {
  vmi: VMI;
  launcher: LauncherObservation;
  /** Why the last Sync failed, if it did (the launcher's message or the transport error). */
  syncError?: string | undefined;
  now: Date;
}

export interface StatusEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export interface StatusResult {
  /** The VMI with the status the handler wants; the input is not modified. */
  vmi: VMI;
  /** Whether anything in the status differs from the input's. */
  changed: boolean;
  /** Events to record once the status is written (so a conflicting write does not record them twice). */
  events: StatusEvent[];
}

/** The VMI with the status the handler reports now. Only handler-owned fields change. */
export function nextStatus(input: StatusInput): StatusResult {
  const { vmi, launcher } = input;
  const now = rfc3339(input.now);
  const next = jsonCopy(vmi);
  const status: VirtualMachineInstanceStatus = (next.status ??= {});
  const conditions: Condition[] = (status.conditions ??= []);
  const events: StatusEvent[] = [];
  const before = phaseOf(vmi);

  const decision = calculatePhase(vmi, launcher);
  if (decision.phase !== before) {
    status.phase = decision.phase;
    const transitions = (status.phaseTransitionTimestamps ??= []);
    if (!transitions.some((t) => t.phase === decision.phase)) {
      transitions.push({ phase: decision.phase, phaseTransitionTimestamp: now });
    }
    if (decision.reason !== undefined) status.reason = decision.reason;
    events.push(...transitionEvents(before, decision));
  }
  const phase = status.phase ?? '';
  const domain = launcher.domainKnown ? launcher.domain : undefined;

  if (phase === 'Running') {
    updatePaused(conditions, domain, now);
    updateAgentConnected(conditions, domain, now);
    updateInterfaces(status, domain, launcher.guestInfo, launcher.podNetwork);
    updateGuestOSInfo(status, launcher.guestInfo);
  } else if (phase === 'Succeeded' || phase === 'Failed') {
    // A guest that is gone is neither paused nor talking to anyone.
    removeCondition(conditions, CONDITIONS.paused);
    removeCondition(conditions, CONDITIONS.agentConnected);
    const ready = findCondition(conditions, CONDITIONS.ready);
    if (ready === undefined || ready.status === 'True') {
      putCondition(conditions, {
        type: CONDITIONS.ready,
        status: 'False',
        reason: CONDITION_REASONS.guestNotRunning,
        message: 'Guest VM is not reported as running',
        lastProbeTime: null,
        lastTransitionTime: now,
      });
    }
  }

  if (phase === 'Scheduled' || phase === 'Running') {
    updateSynchronized(conditions, input.syncError, now);
  }

  if (conditions.length === 0 && vmi.status?.conditions === undefined) delete status.conditions;
  const changed = !jsonEqual(vmi.status ?? {}, status);
  return { vmi: next, changed, events: changed ? events : [] };
}

function transitionEvents(before: Phase, decision: PhaseDecision): StatusEvent[] {
  switch (decision.phase) {
    case 'Running':
      return [{ type: 'Normal', reason: EVENT_REASONS.started, message: 'VirtualMachineInstance started.' }];
    case 'Succeeded':
      return [
        {
          type: 'Normal',
          reason: EVENT_REASONS.stopped,
          message: decision.message ?? 'The VirtualMachineInstance was shut down.',
        },
      ];
    case 'Failed':
      return [
        {
          type: 'Warning',
          reason: EVENT_REASONS.stopped,
          message:
            `${decision.message ?? 'The VirtualMachineInstance crashed.'}` +
            (decision.reason !== undefined ? ` (reason: ${decision.reason}; was ${before})` : ''),
        },
      ];
    default:
      return [];
  }
}

/** KubeVirt's Paused condition: True while the domain is paused by a user or by an I/O error. */
function updatePaused(conditions: Condition[], domain: Domain | undefined, now: string): void {
  if (domain?.status.status !== 'Paused') {
    removeCondition(conditions, CONDITIONS.paused);
    return;
  }
  const io = domain.status.reason === 'IOError';
  putCondition(conditions, {
    type: CONDITIONS.paused,
    status: 'True',
    reason: io ? CONDITION_REASONS.pausedIOError : CONDITION_REASONS.pausedByUser,
    message: io ? 'VMI was paused, low-level IO error detected' : 'VMI was paused by user',
    lastProbeTime: null,
    lastTransitionTime: now,
  });
}

function updateAgentConnected(conditions: Condition[], domain: Domain | undefined, now: string): void {
  if (domain?.status.guestAgentConnected !== true) {
    removeCondition(conditions, CONDITIONS.agentConnected);
    return;
  }
  putCondition(conditions, {
    type: CONDITIONS.agentConnected,
    status: 'True',
    lastProbeTime: null,
    lastTransitionTime: now,
  });
}

/** KubeVirt's CheckFailure: Synchronized=False with the error while Sync fails, no condition once it works. */
function updateSynchronized(conditions: Condition[], syncError: string | undefined, now: string): void {
  if (syncError === undefined) {
    removeCondition(conditions, CONDITIONS.synchronized);
    return;
  }
  putCondition(conditions, {
    type: CONDITIONS.synchronized,
    status: 'False',
    reason: CONDITION_REASONS.syncFailed,
    message: syncError,
    lastProbeTime: now,
    lastTransitionTime: now,
  });
}

type StatusInterface = NonNullable<VirtualMachineInstanceStatus['interfaces']>[number];

function toStatusInterface(i: DomainInterface, source: string): StatusInterface {
  const out: StatusInterface = {};
  if (i.name !== undefined) out.name = i.name;
  if (i.mac !== undefined) out.mac = i.mac;
  if (i.ip !== undefined) out.ipAddress = i.ip;
  if (i.ips !== undefined) out.ipAddresses = i.ips;
  if (i.interfaceName !== undefined) out.interfaceName = i.interfaceName;
  out.infoSource = i.infoSource ?? source;
  return out;
}

/**
 * Interfaces from the domain, completed with what the guest agent reports for the same MAC (KubeVirt's
 * infoSource `domain, guest-agent`). Nothing reported keeps what is there (another writer may have set it).
 */
function updateInterfaces(
  status: VirtualMachineInstanceStatus,
  domain: Domain | undefined,
  guest: GuestAgentInfo | undefined,
  pod: PodNetworkObservation | undefined,
): void {
  const fromDomain = domain?.status.interfaces;
  const fromGuest = guest?.interfaces;
  if (fromDomain === undefined && fromGuest === undefined && pod === undefined) return;
  const result: StatusInterface[] = (fromDomain ?? []).map((i) => toStatusInterface(i, 'domain'));
  // A masquerade guest is reached at the pod's address, whatever address it has behind the NAT (KubeVirt reports
  // the pod IPs for it, and the guest agent only adds the guest's interface name).
  let podEntry: StatusInterface | undefined;
  if (pod !== undefined) {
    podEntry = result.find((r) => r.name === pod.name);
    if (podEntry === undefined) result.unshift((podEntry = { name: pod.name, infoSource: 'domain' }));
    podEntry.mac = pod.mac;
    podEntry.podInterfaceName = 'eth0';
    const [first] = pod.podIPs;
    if (first !== undefined) {
      podEntry.ipAddress = first;
      podEntry.ipAddresses = [...pod.podIPs];
    }
  }
  for (const g of fromGuest ?? []) {
    const match = result.find((r) => g.mac !== undefined && r.mac?.toLowerCase() === g.mac.toLowerCase());
    if (match === undefined) {
      result.push(toStatusInterface(g, 'guest-agent'));
      continue;
    }
    if (match !== podEntry) {
      if (g.ip !== undefined) match.ipAddress = g.ip;
      if (g.ips !== undefined) match.ipAddresses = g.ips;
    }
    if (g.interfaceName !== undefined) match.interfaceName = g.interfaceName;
    match.infoSource = 'domain, guest-agent';
  }
  status.interfaces = result;
}

function updateGuestOSInfo(status: VirtualMachineInstanceStatus, guest: GuestAgentInfo | undefined): void {
  const os = guest?.os;
  if (os === undefined) return;
  const info: NonNullable<VirtualMachineInstanceStatus['guestOSInfo']> = {};
  for (const key of [
    'name',
    'kernelRelease',
    'version',
    'prettyName',
    'versionId',
    'kernelVersion',
    'machine',
    'id',
  ] as const) {
    const v = os[key];
    if (typeof v === 'string' && v !== '') info[key] = v;
  }
  if (Object.keys(info).length > 0) status.guestOSInfo = info;
}
