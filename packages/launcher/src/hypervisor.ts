// The one interface between the launcher's behaviour and libvirt. Everything above it (commands, events, shutdown)
// speaks in domains, states and reasons; how they reach libvirt (today its RPC protocol, ADR 0006) stays below it.

/** A domain's state, in the words KubeVirt's domain status uses. */
export type DomainState =
  'NoState' | 'Running' | 'Blocked' | 'Paused' | 'ShuttingDown' | 'Shutoff' | 'Crashed' | 'PMSuspended';

/** Why the domain is in its state, in KubeVirt's words (Booted, Unpaused, User, Shutdown, Destroyed, Panicked…). */
export type DomainReason = string;

export interface DomainStatus {
  state: DomainState;
  reason: DomainReason;
}

/** A libvirt lifecycle event (Defined, Started, Suspended, Resumed, Stopped, Shutdown, Crashed…) and its detail. */
export interface LifecycleEvent {
  kind: 'lifecycle';
  domain: string;
  event: string;
  detail: string;
}

/** The guest agent connected to or left its channel. */
export interface AgentEvent {
  kind: 'agent';
  domain: string;
  connected: boolean;
}

/** A guest reboot seen by libvirt (the domain stays Running). */
export interface RebootEvent {
  kind: 'reboot';
  domain: string;
}

export type HypervisorEvent = LifecycleEvent | AgentEvent | RebootEvent;

/** Typed values as libvirt reports statistics and guest info: flat keys such as `block.0.rd.bytes`. */
export type TypedParams = Record<string, string | number | boolean>;

export interface Hypervisor {
  /** Defines the domain, or updates the definition of one with the same name and UUID. */
  defineDomain(xml: string): Promise<void>;
  /** The state of a defined domain, or undefined when no domain of that name is defined. */
  domainStatus(name: string): Promise<DomainStatus | undefined>;
  /** The domain's live XML (its persistent XML when it is not running). */
  domainXml(name: string): Promise<string>;
  /** Starts a defined domain; `paused`: with its vCPUs stopped (the VMI's startStrategy Paused), until resumed. */
  start(name: string, options?: { paused?: boolean }): Promise<void>;
  pause(name: string): Promise<void>;
  resume(name: string): Promise<void>;
  /** Asks the guest to power off through the ACPI power button. */
  shutdown(name: string): Promise<void>;
  /** Asks the guest to reboot: through its agent when it has one, else ACPI. */
  reboot(name: string): Promise<void>;
  /** Hard reset, as the reset button. */
  reset(name: string): Promise<void>;
  /** Power cut: QEMU is killed. */
  destroy(name: string): Promise<void>;
  undefine(name: string): Promise<void>;
  /** Replaces the domain's metadata element of the given XML namespace (live and persistent). */
  setMetadata(name: string, namespaceUri: string, prefix: string, xml: string): Promise<void>;
  /** The domain's metadata element of the given namespace, or undefined when it has none. */
  metadata(name: string, namespaceUri: string): Promise<string | undefined>;
  stats(name: string): Promise<TypedParams>;
  /** What the guest agent reports (os.*, hostname, timezone.*, fs.*, user.*); rejects when there is no agent. */
  guestInfo(name: string): Promise<TypedParams>;
  /** Domain events from the daemon, for as long as this connection lasts. */
  onEvent(listener: (event: HypervisorEvent) => void): () => void;
  /** Called once when the connection to the daemon ends (daemon died or restarted); reconnect to go on. */
  onDisconnect(listener: (error: Error) => void): void;
  close(): void;
}
