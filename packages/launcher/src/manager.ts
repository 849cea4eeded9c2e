// The launcher's behaviour toward its one domain: the commands of launcher.v1 (Sync, Pause, Shutdown, …), the
// domain events it reports, and the graceful shutdown with a deadline that survives a launcher restart (it is kept
// in the domain's kubevirt.io metadata). Commands run one at a time. The Hypervisor connection is re-made when
// the libvirt daemon restarts; the domain keeps running meanwhile.
import type { Logger } from '@kubevirt-ts/runtime';
import { ConversionError, convertVMIToDomain, domainName, gracePeriodSeconds } from './converter/convert.ts';
import type { ConverterContext } from './converter/convert.ts';
import { prepareDisks } from './disks.ts';
import type { DiskLayout } from './disks.ts';
import { KUBEVIRT_METADATA_NS, guestAgentInfo, metadataXml, parseMetadataXml } from './domain.ts';
import type { DomainJson, GuestAgentInfo, KubevirtMetadata, VMIIdentity } from './domain.ts';
import { DiskError } from './errors.ts';
import { PodNetworkError, type PodNetwork } from './network/pod-network.ts';
import type { DomainStatus, Hypervisor, HypervisorEvent, TypedParams } from './hypervisor.ts';
import type { VirtualMachineInstance } from './vmi.ts';

export type DomainEventType = 'ADDED' | 'MODIFIED' | 'DELETED';
export type K8sEventType = 'Normal' | 'Warning';

export interface ManagerListener {
  domain(type: DomainEventType, domain: DomainJson): void;
  k8sEvent(type: K8sEventType, reason: string, message: string): void;
}

export interface DomainManagerOptions {
  identity: VMIIdentity;
  /** Opens a Hypervisor connection (called again after the daemon restarted). */
  connect: () => Promise<Hypervisor>;
  converter: Omit<ConverterContext, 'disks'>;
  layout: DiskLayout;
  /** Grace period until a VMI says otherwise (the launcher's flag). */
  gracePeriodSeconds: number;
  log: Logger;
  /** How often the ACPI request is repeated during a graceful shutdown: a press before the guest listens is lost. */
  acpiRetryMs?: number;
  reconnectDelayMs?: number;
  /** The pod network's launcher side (the guest's DHCP server); tests leave it out. */
  podNetwork?: PodNetwork;
}

/** A command the launcher understood but cannot carry out; the handler gets its message (success=false). */
export class CommandError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'CommandError';
  }
}

/** How long a command waits for the libvirt connection to come back before it fails. */
const RECONNECT_WAIT_MS = 10_000;

const ACTIVE = new Set(['Running', 'Paused', 'Blocked', 'ShuttingDown', 'PMSuspended', 'Crashed']);

export class DomainManager {
  private readonly options: DomainManagerOptions;
  private readonly log: Logger;
  private readonly name: string;
  private readonly listeners = new Set<ManagerListener>();
  private hv: Hypervisor | undefined;
  private reconnecting: Promise<void> | undefined;
  private closed = false;
  private queue: Promise<unknown> = Promise.resolve();
  /** libvirt events are handled one after the other, so the handler gets the domain's states in order. */
  private events: Promise<void> = Promise.resolve();
  private agentConnected = false;
  private last: DomainJson | undefined;
  /** Whether the handler has been told the domain exists (its first event is ADDED). */
  private announced = false;
  private deadlineTimer: NodeJS.Timeout | undefined;
  private acpiTimer: NodeJS.Timeout | undefined;
  private grace: number;

  constructor(options: DomainManagerOptions) {
    this.options = options;
    this.log = options.log.child({ component: 'domain-manager' });
    this.name = domainName({ metadata: options.identity });
    this.grace = options.gracePeriodSeconds;
  }

  get domainName(): string {
    return this.name;
  }

  subscribe(listener: ManagerListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Connects to libvirt and picks up a domain a previous launcher left running (and its shutdown deadline). */
  async start(): Promise<void> {
    this.attach(await this.options.connect());
    const status = await (await this.hypervisor()).domainStatus(this.name);
    if (!status) return;
    const meta = await this.readMetadata();
    if (meta) this.grace = meta.graceperiod.deletionGracePeriodSeconds;
    if (meta?.graceperiod.deletionTimestamp && ACTIVE.has(status.state)) {
      this.log.info(
        { deletionTimestamp: meta.graceperiod.deletionTimestamp },
        'resuming a graceful shutdown begun before a restart',
      );
      this.armDeadline(meta.graceperiod);
    }
  }

  close(): void {
    this.closed = true;
    this.clearTimers();
    this.hv?.close();
    this.hv = undefined;
    void this.options.podNetwork?.close();
  }

  // ---- commands -------------------------------------------------------------------------------------------

  sync(vmi: VirtualMachineInstance): Promise<void> {
    return this.serialize('sync', async () => {
      this.checkIdentity(vmi);
      try {
        await this.options.podNetwork?.ensure(vmi);
      } catch (err) {
        if (err instanceof PodNetworkError) {
          this.emitK8sEvent('Warning', 'SyncFailed', err.message);
          throw new CommandError(err.message, { cause: err });
        }
        throw err;
      }
      const hv = await this.hypervisor();
      const meta = await this.readMetadata();
      if (meta?.graceperiod.deletionTimestamp || meta?.graceperiod.markedForGracefulShutdown) {
        throw new CommandError(`the domain ${this.name} is shutting down; it is not started again`);
      }
      let status = await hv.domainStatus(this.name);
      if (!status || status.state === 'Shutoff') {
        try {
          const disks = await prepareDisks(vmi, this.options.layout, this.log);
          const domain = convertVMIToDomain(vmi, {
            ...this.options.converter,
            disks,
            podInterfaceMac: this.options.podNetwork?.guestMac,
          });
          await hv.defineDomain(domain.xml);
        } catch (err) {
          if (err instanceof DiskError || err instanceof ConversionError) {
            this.emitK8sEvent('Warning', 'SyncFailed', err.message);
            throw new CommandError(err.message, { cause: err });
          }
          throw err;
        }
        this.grace = gracePeriodSeconds(vmi);
        status = await hv.domainStatus(this.name);
      }
      // A domain libvirt never ran is Shutoff with no reason: start it. One that ran and stopped stays stopped; the
      // handler decides what comes next (the VMI is final then). startStrategy Paused starts it paused, which
      // libvirt reports as paused by the user: it stays so until an unpause.
      if (status?.state === 'Shutoff' && status.reason === 'Unknown') {
        const paused = vmi.spec.startStrategy === 'Paused';
        await hv.start(this.name, { paused });
        this.log.info({ domain: this.name, paused }, 'domain started');
      } else if (status?.state === 'Paused' && status.reason !== 'User') {
        this.log.info({ reason: status.reason }, 'resuming a domain paused unexpectedly');
        await hv.resume(this.name);
      }
    });
  }

  pause(vmi?: VirtualMachineInstance): Promise<void> {
    return this.serialize('pause', async () => {
      if (vmi) this.checkIdentity(vmi);
      const status = await this.requireDomain();
      if (status.state === 'Paused') return;
      if (status.state !== 'Running')
        throw new CommandError(`cannot pause the domain ${this.name}: it is ${status.state}`);
      await (await this.hypervisor()).pause(this.name);
    });
  }

  unpause(vmi?: VirtualMachineInstance): Promise<void> {
    return this.serialize('unpause', async () => {
      if (vmi) this.checkIdentity(vmi);
      const status = await this.requireDomain();
      if (status.state === 'Running') return;
      if (status.state !== 'Paused')
        throw new CommandError(`cannot unpause the domain ${this.name}: it is ${status.state}`);
      await (await this.hypervisor()).resume(this.name);
    });
  }

  /**
   * ACPI shutdown with a deadline: records when it began and the grace period in the domain, repeats the ACPI
   * request until the guest is off, and destroys the domain when the grace period ends. Asking again keeps the
   * first deadline. Grace 0 destroys at once.
   */
  shutdown(grace?: number, reason = 'shutdown'): Promise<void> {
    return this.serialize('shutdown', async () => {
      const status = await (await this.hypervisor()).domainStatus(this.name);
      if (!status || !ACTIVE.has(status.state)) return;
      const seconds = grace ?? this.grace;
      const meta = (await this.readMetadata()) ?? this.defaultMetadata();
      const period = meta.graceperiod;
      if (!period.deletionTimestamp) {
        period.deletionTimestamp = new Date().toISOString();
        period.deletionGracePeriodSeconds = seconds;
      }
      if (reason === 'sigterm') period.markedForGracefulShutdown = true;
      await (
        await this.hypervisor()
      ).setMetadata(this.name, KUBEVIRT_METADATA_NS, 'kubevirt', metadataXml(meta));
      this.log.info(
        { grace: period.deletionGracePeriodSeconds, since: period.deletionTimestamp, reason },
        'graceful shutdown',
      );
      if (period.deletionGracePeriodSeconds === 0 || status.state === 'Crashed') {
        await this.destroyIfActive('no grace period');
        return;
      }
      await this.sendAcpi();
      this.armDeadline(period);
      await this.emitCurrent('MODIFIED');
    });
  }

  kill(vmi?: VirtualMachineInstance): Promise<void> {
    return this.serialize('kill', async () => {
      if (vmi) this.checkIdentity(vmi);
      await this.destroyIfActive('kill requested');
    });
  }

  delete(vmi?: VirtualMachineInstance): Promise<void> {
    return this.serialize('delete', async () => {
      if (vmi) this.checkIdentity(vmi);
      const status = await (await this.hypervisor()).domainStatus(this.name);
      if (!status) return;
      if (ACTIVE.has(status.state)) {
        throw new CommandError(
          `the domain ${this.name} is ${status.state}; shut it down or kill it before deleting it`,
        );
      }
      await (await this.hypervisor()).undefine(this.name);
    });
  }

  softReboot(vmi?: VirtualMachineInstance): Promise<void> {
    return this.serialize('soft reboot', async () => {
      if (vmi) this.checkIdentity(vmi);
      const status = await this.requireDomain();
      if (status.state !== 'Running')
        throw new CommandError(`cannot reboot the domain ${this.name}: it is ${status.state}`);
      await (await this.hypervisor()).reboot(this.name);
    });
  }

  reset(vmi?: VirtualMachineInstance): Promise<void> {
    return this.serialize('reset', async () => {
      if (vmi) this.checkIdentity(vmi);
      const status = await this.requireDomain();
      if (!ACTIVE.has(status.state))
        throw new CommandError(`cannot reset the domain ${this.name}: it is ${status.state}`);
      await (await this.hypervisor()).reset(this.name);
    });
  }

  /** The domain as the handler sees it, or undefined when none is defined. */
  async domain(): Promise<DomainJson | undefined> {
    if (!this.hv) return this.last;
    const status = await this.hv.domainStatus(this.name);
    if (!status) return undefined;
    return this.domainJson(status, (await this.readMetadata()) ?? this.defaultMetadata());
  }

  async stats(): Promise<TypedParams> {
    await this.requireDomain();
    return (await this.hypervisor()).stats(this.name);
  }

  async guestInfo(): Promise<GuestAgentInfo> {
    const status = await this.requireDomain();
    if (status.state !== 'Running')
      throw new CommandError(`the domain ${this.name} is ${status.state}; its guest agent cannot answer`);
    try {
      return guestAgentInfo(await (await this.hypervisor()).guestInfo(this.name));
    } catch (err) {
      throw new CommandError(`the guest agent of ${this.name} did not answer: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }

  // ---- internals ------------------------------------------------------------------------------------------

  private serialize<T>(what: string, work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work, work);
    this.queue = result.catch(() => undefined);
    return result.catch((err: unknown) => {
      this.log.warn({ err, command: what }, 'command failed');
      throw err;
    });
  }

  /** The connection; while it is being made again (libvirtd restarting), waits for it a little. */
  private async hypervisor(): Promise<Hypervisor> {
    if (!this.hv && this.reconnecting) {
      await Promise.race([this.reconnecting, new Promise((r) => setTimeout(r, RECONNECT_WAIT_MS))]);
    }
    if (!this.hv)
      throw new CommandError(
        'the launcher is not connected to its libvirt daemon (it is restarting); try again',
      );
    return this.hv;
  }

  private async requireDomain(): Promise<DomainStatus> {
    const status = await (await this.hypervisor()).domainStatus(this.name);
    if (!status) throw new CommandError(`no domain ${this.name} is defined; Sync first`);
    return status;
  }

  private checkIdentity(vmi: VirtualMachineInstance): void {
    const { uid, name, namespace } = this.options.identity;
    if (vmi.metadata?.uid !== uid) {
      throw new CommandError(
        `this launcher runs VMI ${namespace}/${name} (uid ${uid}), not ${vmi.metadata?.namespace}/${vmi.metadata?.name} (uid ${vmi.metadata?.uid})`,
      );
    }
  }

  private defaultMetadata(): KubevirtMetadata {
    return { uid: this.options.identity.uid, graceperiod: { deletionGracePeriodSeconds: this.grace } };
  }

  private async readMetadata(): Promise<KubevirtMetadata | undefined> {
    const xml = await (
      await this.hypervisor()
    )
      .metadata(this.name, KUBEVIRT_METADATA_NS)
      .catch(() => undefined);
    return xml === undefined ? undefined : parseMetadataXml(xml);
  }

  private domainJson(status: DomainStatus, meta: KubevirtMetadata, deleted = false): DomainJson {
    const json: DomainJson = {
      kind: 'Domain',
      apiVersion: 'kubevirt.io/v1',
      metadata: { ...this.options.identity },
      spec: { name: this.name, metadata: { kubevirt: meta } },
      status: {
        status: status.state,
        reason: status.reason,
        guestAgentConnected: this.agentConnected && status.state === 'Running',
      },
    };
    if (deleted) json.metadata.deletionTimestamp = new Date().toISOString();
    return json;
  }

  private async sendAcpi(): Promise<void> {
    try {
      await (await this.hypervisor()).shutdown(this.name);
    } catch (err) {
      this.log.warn({ err }, 'ACPI shutdown request failed; it is repeated until the deadline');
    }
  }

  private armDeadline(period: {
    deletionTimestamp?: string | undefined;
    deletionGracePeriodSeconds: number;
  }): void {
    this.clearTimers();
    const deadline =
      Date.parse(period.deletionTimestamp ?? new Date().toISOString()) +
      period.deletionGracePeriodSeconds * 1000;
    const remaining = Math.max(0, deadline - Date.now());
    this.deadlineTimer = setTimeout(() => {
      void this.serialize('grace period over', () => this.destroyIfActive('the grace period is over')).catch(
        () => undefined,
      );
    }, remaining);
    const retry = this.options.acpiRetryMs ?? 5_000;
    this.acpiTimer = setInterval(() => void this.sendAcpi(), retry);
  }

  private clearTimers(): void {
    clearTimeout(this.deadlineTimer);
    clearInterval(this.acpiTimer);
    this.deadlineTimer = undefined;
    this.acpiTimer = undefined;
  }

  private async destroyIfActive(why: string): Promise<void> {
    this.clearTimers();
    const status = await (await this.hypervisor()).domainStatus(this.name);
    if (!status || !ACTIVE.has(status.state)) return;
    this.log.warn({ why }, 'destroying the domain');
    await (await this.hypervisor()).destroy(this.name);
  }

  private attach(hv: Hypervisor): void {
    this.hv = hv;
    hv.onEvent((event) => {
      this.events = this.events
        .then(() => this.onEvent(event))
        .catch((err: unknown) => this.log.warn({ err }, 'handling a libvirt event failed'));
    });
    hv.onDisconnect((error) => {
      if (this.hv !== hv) return;
      this.hv = undefined;
      if (this.closed) return;
      this.log.warn({ err: error }, 'lost the connection to libvirt; reconnecting');
      void this.reconnect();
    });
  }

  /**
   * Connects again after the connection dropped (the daemon died); the launcher also calls it when its supervisor
   * has restarted libvirtd. One attempt runs at a time; it ends once a connection is up.
   */
  reconnect(): Promise<void> {
    this.reconnecting ??= this.runReconnect().finally(() => (this.reconnecting = undefined));
    return this.reconnecting;
  }

  private async runReconnect(): Promise<void> {
    while (!this.closed && !this.hv) {
      try {
        const hv = await this.options.connect();
        if (this.closed) {
          hv.close();
          return;
        }
        this.attach(hv);
        this.log.info('reconnected to libvirt');
        await this.emitCurrent('MODIFIED');
        return;
      } catch (err) {
        this.log.debug({ err }, 'libvirt is not back yet');
        await new Promise((r) => setTimeout(r, this.options.reconnectDelayMs ?? 500));
      }
    }
  }

  private async emitCurrent(type: DomainEventType): Promise<void> {
    const domain = await this.domain().catch(() => undefined);
    if (!domain) return;
    this.last = domain;
    const kind = this.announced ? type : 'ADDED';
    this.announced = true;
    for (const l of this.listeners) l.domain(kind, domain);
  }

  private emitK8sEvent(type: K8sEventType, reason: string, message: string): void {
    for (const l of this.listeners) l.k8sEvent(type, reason, message);
  }

  private async onEvent(event: HypervisorEvent): Promise<void> {
    if (event.domain !== this.name) return;
    this.log.debug({ event }, 'libvirt event');
    if (event.kind === 'agent') this.agentConnected = event.connected;
    if (event.kind === 'lifecycle') {
      if (event.event === 'Undefined') {
        this.announced = false;
        this.clearTimers();
        const last =
          this.last ?? this.domainJson({ state: 'Shutoff', reason: 'Unknown' }, this.defaultMetadata());
        const final = {
          ...last,
          metadata: { ...last.metadata, deletionTimestamp: new Date().toISOString() },
        };
        for (const l of this.listeners) l.domain('DELETED', final);
        return;
      }
      if (event.event === 'Stopped') {
        this.clearTimers();
        this.agentConnected = false;
      }
      if (event.event === 'Crashed') {
        this.emitK8sEvent('Warning', 'GuestPanicked', `the guest of ${this.name} panicked (${event.detail})`);
      }
      if (event.event === 'Stopped' && event.detail === 'Failed') {
        this.emitK8sEvent('Warning', 'QemuFailed', `QEMU of ${this.name} failed`);
      }
    }
    await this.emitCurrent('MODIFIED');
  }
}
