// The handler's link to one launcher: the notify.v1 server it serves in the launcher pod's sockets folder (domain
// events and Kubernetes events come in there), the launcher.v1 client on launcher-sock (after version negotiation),
// the last domain the launcher reported, and a watchdog that pings it and marks it unresponsive when it has not
// answered anything for the timeout (KubeVirt: 30 s, then the VMI is Failed). It holds cached state only; what to do
// with it is decided by the reconcile loop.
import { writeFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { status as grpcStatus } from '@grpc/grpc-js';
import {
  RpcError,
  dialLauncher,
  negotiateVersion,
  serveNotify,
  statusName,
  type LauncherConnection,
  type NotifyImplementation,
  type RunningServer,
} from '@kubevirt-ts/proto';
import type { Logger } from '@kubevirt-ts/runtime';
import type { LauncherRecord } from './checkpoint.ts';
import { DEFAULT_UNRESPONSIVE_AFTER_MS, SOCKETS } from './constants.ts';
import { DomainParseError, parseDomain, parseGuestInfo, type Domain, type GuestAgentInfo } from './domain.ts';
import type { PodSockets } from './pod-sockets.ts';
import type { LauncherObservation } from './status.ts';
import type { VMI } from './vmi.ts';

/** An answer of the launcher to a command: `success: false` means it understood and could not do it. */
export interface CommandOutcome {
  success: boolean;
  message: string;
}

export interface LauncherLinkHooks {
  /** Something about this launcher changed (an event arrived, it connected, it stopped answering). */
  changed(record: LauncherRecord): void;
  /** The launcher asks for an Event on its VMI. */
  k8sEvent(record: LauncherRecord, type: 'Normal' | 'Warning', reason: string, message: string): void;
  /** A launcher RPC failed at the transport level (for metrics). */
  rpcError(rpc: string, code: string): void;
}

export interface LauncherLinkOptions {
  record: LauncherRecord;
  sockets: PodSockets;
  log: Logger;
  hooks: LauncherLinkHooks;
  unresponsiveAfterMs?: number;
  pingIntervalMs?: number;
  now?: () => number;
}

export type CommandRpc = 'sync' | 'pause' | 'unpause' | 'kill' | 'delete' | 'softReboot' | 'reset';

export class LauncherLink {
  readonly record: LauncherRecord;
  readonly #sockets: PodSockets;
  readonly #log: Logger;
  readonly #hooks: LauncherLinkHooks;
  readonly #unresponsiveAfterMs: number;
  readonly #pingIntervalMs: number;
  readonly #now: () => number;
  #dir: string | undefined;
  #notify: RunningServer | undefined;
  #connection: LauncherConnection | undefined;
  #connecting: Promise<void> | undefined;
  /** Whether a command connection was ever established (then a vanished launcher-sock is not "initializing"). */
  #everConnected = false;
  #domain: Domain | undefined;
  #domainKnown = false;
  #lastSeen: number;
  #unresponsive = false;
  #gone = false;
  #guestInfo: { info: GuestAgentInfo; at: number } | undefined;
  #watchdog: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(opts: LauncherLinkOptions) {
    this.record = opts.record;
    this.#sockets = opts.sockets;
    this.#log = opts.log.child({
      component: 'launcher-link',
      kind: 'VirtualMachineInstance',
      namespace: opts.record.namespace,
      name: opts.record.name,
      uid: opts.record.uid,
      podUid: opts.record.podUid,
    });
    this.#hooks = opts.hooks;
    this.#unresponsiveAfterMs = opts.unresponsiveAfterMs ?? DEFAULT_UNRESPONSIVE_AFTER_MS;
    this.#pingIntervalMs = opts.pingIntervalMs ?? 5_000;
    this.#now = opts.now ?? Date.now;
    // A launcher gets the full timeout from the moment this handler starts looking at it.
    this.#lastSeen = this.#now();
  }

  /** What the reconcile loop needs to know, fresh. Connects when the launcher has become ready meanwhile. */
  async observe(): Promise<LauncherObservation> {
    if (this.#closed) throw new Error('the launcher link is closed');
    if (!(await this.#sockets.exists(this.record.podUid))) {
      if (!this.#gone) this.#log.info('the launcher pod is gone (its sockets folder was removed)');
      this.#gone = true;
      this.#stopWatchdog();
      return { state: 'gone', domainKnown: this.#domainKnown, domain: this.#domain };
    }
    await this.#ensureNotifyServer();
    if (!this.#connection) await this.#connect();
    if (this.#unresponsive) return this.#observation('unresponsive');
    if (!this.#connection) {
      if (!this.#everConnected) return this.#observation('initializing');
      this.#checkUnresponsive();
      return this.#observation(this.#unresponsive ? 'unresponsive' : 'ready');
    }
    return this.#observation('ready');
  }

  #observation(state: LauncherObservation['state']): LauncherObservation {
    return {
      state,
      domainKnown: this.#domainKnown,
      domain: this.#domain,
      guestInfo: this.#guestInfo?.info,
    };
  }

  get unresponsive(): boolean {
    return this.#unresponsive;
  }

  /** The reachable sockets folder (after the first observe). */
  get socketsDir(): string | undefined {
    return this.#dir;
  }

  async #dirPath(): Promise<string> {
    this.#dir ??= await this.#sockets.reachableDir(this.record.podUid);
    return this.#dir;
  }

  async #ensureNotifyServer(): Promise<void> {
    if (this.#notify) return;
    const dir = await this.#dirPath();
    const implementation: NotifyImplementation = {
      domainEvent: (request) => {
        let domain: Domain;
        try {
          domain = parseDomain(request.domainJson);
        } catch (err) {
          if (err instanceof DomainParseError) {
            throw new RpcError(grpcStatus.INVALID_ARGUMENT, err.message);
          }
          throw err;
        }
        if (domain.metadata.uid !== this.record.uid) {
          // A socket folder belongs to one pod and one VMI; anything else is a confused or stale sender.
          return {
            success: false,
            message: `this notify socket serves VMI uid ${this.record.uid}, not ${domain.metadata.uid}`,
          };
        }
        this.#seen();
        if (request.eventType === 'DELETED') {
          this.#domain = {
            ...domain,
            metadata: {
              ...domain.metadata,
              deletionTimestamp: domain.metadata.deletionTimestamp ?? new Date(this.#now()).toISOString(),
            },
          };
        } else {
          this.#domain = domain;
        }
        this.#domainKnown = true;
        if (!domain.status.guestAgentConnected) this.#guestInfo = undefined;
        this.#log.debug(
          { event: request.eventType, state: domain.status.status, reason: domain.status.reason },
          'domain event',
        );
        this.#hooks.changed(this.record);
        return { success: true, message: '' };
      },
      k8sEvent: (request) => {
        if (request.vmiUid !== '' && request.vmiUid !== this.record.uid) {
          return {
            success: false,
            message: `this notify socket serves VMI uid ${this.record.uid}, not ${request.vmiUid}`,
          };
        }
        this.#seen();
        this.#hooks.k8sEvent(
          this.record,
          request.type === 'WARNING' ? 'Warning' : 'Normal',
          request.reason || 'LauncherEvent',
          request.message,
        );
        return { success: true, message: '' };
      },
    };
    this.#notify = await serveNotify({ unix: join(dir, SOCKETS.notify) }, implementation, {
      logger: this.#log,
      shutdownGraceMs: 1_000,
    });
    this.#log.debug({ socket: this.#notify.target }, 'serving notify for the launcher');
  }

  #connect(): Promise<void> {
    this.#connecting ??= this.#runConnect().finally(() => (this.#connecting = undefined));
    return this.#connecting;
  }

  async #runConnect(): Promise<void> {
    const dir = await this.#dirPath();
    const socket = join(dir, SOCKETS.launcher);
    const exists = await stat(socket).then(
      (s) => s.isSocket(),
      () => false,
    );
    if (!exists) return;
    const connection = dialLauncher({ unix: socket });
    try {
      const version = await negotiateVersion(connection);
      const answer = await connection.getDomain({});
      if (!answer.success) throw new Error(`GetDomain failed: ${answer.message}`);
      this.#domain = answer.domainJson.length === 0 ? undefined : parseDomain(answer.domainJson);
      this.#domainKnown = true;
      this.#connection = connection;
      this.#everConnected = true;
      this.#seen();
      this.#startWatchdog();
      this.#log.info({ version, domain: this.#domain?.status.status ?? 'none' }, 'connected to the launcher');
    } catch (err) {
      connection.close();
      this.#countError('GetDomain', err);
      this.#log.debug({ err }, 'the launcher did not answer on launcher-sock yet');
    }
  }

  #seen(): void {
    this.#lastSeen = this.#now();
    if (this.#unresponsive) {
      this.#log.info('the launcher answers again');
      this.#unresponsive = false;
    }
  }

  #checkUnresponsive(): void {
    if (this.#unresponsive || this.#now() - this.#lastSeen < this.#unresponsiveAfterMs) return;
    this.#unresponsive = true;
    this.#log.warn(
      { silentForMs: this.#now() - this.#lastSeen },
      'the launcher stopped answering; marking it unresponsive',
    );
    // KubeVirt's marker next to the socket, for humans and tools that look at the pod's folder.
    if (this.#dir !== undefined) {
      void writeFile(join(this.#dir, SOCKETS.unresponsiveMarker), '').catch(() => undefined);
    }
    this.#hooks.changed(this.record);
  }

  #startWatchdog(): void {
    if (this.#watchdog || this.#closed) return;
    this.#watchdog = setInterval(() => void this.#ping(), this.#pingIntervalMs);
    this.#watchdog.unref();
  }

  #stopWatchdog(): void {
    clearInterval(this.#watchdog);
    this.#watchdog = undefined;
  }

  async #ping(): Promise<void> {
    const connection = this.#connection;
    if (!connection) {
      this.#checkUnresponsive();
      return;
    }
    try {
      await connection.ping({}, { timeoutMs: Math.min(5_000, this.#pingIntervalMs) });
      this.#seen();
    } catch (err) {
      this.#countError('Ping', err);
      this.#log.debug({ err }, 'the launcher did not answer a ping');
      this.#checkUnresponsive();
    }
  }

  #countError(rpc: string, err: unknown): void {
    this.#hooks.rpcError(rpc, err instanceof RpcError ? statusName(err.code) : 'UNKNOWN');
  }

  #requireConnection(): LauncherConnection {
    if (!this.#connection) {
      throw new RpcError(
        grpcStatus.UNAVAILABLE,
        `the launcher of ${this.record.namespace}/${this.record.name} is not connected`,
      );
    }
    return this.#connection;
  }

  /** Runs a launcher command; transport errors throw (and are counted), the launcher's refusals are returned. */
  async command(rpc: CommandRpc, vmi: VMI | undefined): Promise<CommandOutcome> {
    const connection = this.#requireConnection();
    const vmiJson = vmi === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(vmi));
    try {
      const answer = await connection[rpc]({ vmiJson });
      this.#seen();
      return answer;
    } catch (err) {
      this.#countError(rpc, err);
      throw err;
    }
  }

  /** ACPI shutdown; `graceSeconds` undefined lets the launcher use the grace period recorded in the domain. */
  async shutdown(vmi: VMI | undefined, graceSeconds: number | undefined): Promise<CommandOutcome> {
    const connection = this.#requireConnection();
    try {
      const answer = await connection.shutdown({
        vmiJson: vmi === undefined ? Buffer.alloc(0) : Buffer.from(JSON.stringify(vmi)),
        gracePeriodSeconds: graceSeconds ?? 0,
      });
      this.#seen();
      return answer;
    } catch (err) {
      this.#countError('Shutdown', err);
      throw err;
    }
  }

  /** Asks the launcher for its domain again (after a command, or when events may have been missed). */
  async refreshDomain(): Promise<void> {
    const connection = this.#requireConnection();
    try {
      const answer = await connection.getDomain({});
      this.#seen();
      if (!answer.success) return;
      this.#domain = answer.domainJson.length === 0 ? undefined : parseDomain(answer.domainJson);
      this.#domainKnown = true;
    } catch (err) {
      this.#countError('GetDomain', err);
      throw err;
    }
  }

  /**
   * What the guest agent reports, fetched again when the cached answer is older than `maxAgeMs`. Undefined when
   * the launcher has no agent answer (the guest agent is not connected).
   */
  async guestInfo(maxAgeMs: number): Promise<GuestAgentInfo | undefined> {
    if (this.#guestInfo && this.#now() - this.#guestInfo.at < maxAgeMs) return this.#guestInfo.info;
    const answer = await this.rawGuestInfo();
    if (!answer.success) return this.#guestInfo?.info;
    const info = parseGuestInfo(answer.guestInfoJson);
    if (info !== undefined) this.#guestInfo = { info, at: this.#now() };
    return info;
  }

  /** GetGuestInfo as the launcher answers it (for the guestosinfo subresource). */
  async rawGuestInfo(): Promise<{ success: boolean; message: string; guestInfoJson: Buffer }> {
    const connection = this.#requireConnection();
    try {
      const answer = await connection.getGuestInfo({});
      this.#seen();
      return answer;
    } catch (err) {
      this.#countError('GetGuestInfo', err);
      throw err;
    }
  }

  /** Stops serving notify and closes the command connection; the launcher and its domain are left alone. */
  async close(opts: { releaseLink?: boolean } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopWatchdog();
    await this.#connecting;
    this.#connection?.close();
    this.#connection = undefined;
    await this.#notify?.shutdown(500).catch((err: unknown) => this.#log.debug({ err }, 'notify shutdown'));
    this.#notify = undefined;
    if (opts.releaseLink) await this.#sockets.release(this.record.podUid).catch(() => undefined);
  }
}
