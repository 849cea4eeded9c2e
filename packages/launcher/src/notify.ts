// The launcher's side of notify.v1: it streams domain events and Kubernetes events to the handler's notify-sock in
// the pod's sockets dir. The handler may not be there yet, or may restart: the client waits for the socket, retries
// with backoff, and on every new connection sends the domain's current state first (the handler's cache is
// level-triggered). Domain events waiting to be sent collapse into the latest; Kubernetes events are all kept.
import { access } from 'node:fs/promises';
import { dialNotify, negotiateVersion } from '@kubevirt-ts/proto';
import type { NotifyConnection } from '@kubevirt-ts/proto';
import type { Logger } from '@kubevirt-ts/runtime';
import type { DomainJson, VMIIdentity } from './domain.ts';
import type { DomainEventType, K8sEventType } from './manager.ts';

type Item =
  | { kind: 'domain'; type: DomainEventType; domain: DomainJson }
  | { kind: 'k8s'; type: K8sEventType; reason: string; message: string };

export interface NotifyClientOptions {
  /** The handler's socket: <sockets dir>/notify-sock. */
  socketPath: string;
  identity: VMIIdentity;
  log: Logger;
  /** The domain as it is now, sent first on each new connection. */
  current: () => Promise<DomainJson | undefined>;
  maxBackoffMs?: number;
}

export class NotifyClient {
  private readonly options: NotifyClientOptions;
  private readonly log: Logger;
  private readonly items: Item[] = [];
  private connection: NotifyConnection | undefined;
  private wake: (() => void) | undefined;
  private closed = false;
  private running: Promise<void> | undefined;
  private idle: (() => void)[] = [];
  private resync = true;
  private sending = false;

  constructor(options: NotifyClientOptions) {
    this.options = options;
    this.log = options.log.child({ component: 'notify-client' });
  }

  start(): void {
    this.running ??= this.loop();
  }

  domainEvent(type: DomainEventType, domain: DomainJson): void {
    const last = this.items.at(-1);
    if (last?.kind === 'domain' && last.type !== 'DELETED' && type !== 'DELETED') {
      // Only the latest state matters; an ADDED not yet sent stays an ADDED.
      last.domain = domain;
      if (type === 'ADDED') last.type = 'ADDED';
    } else this.items.push({ kind: 'domain', type, domain });
    this.wake?.();
  }

  k8sEvent(type: K8sEventType, reason: string, message: string): void {
    this.items.push({ kind: 'k8s', type, reason, message });
    this.wake?.();
  }

  /** Resolves when everything queued has been delivered, or after timeoutMs (returns false then). */
  flush(timeoutMs: number): Promise<boolean> {
    if (this.items.length === 0 && !this.resync && !this.sending) return Promise.resolve(true);
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), timeoutMs);
      this.idle.push(() => {
        clearTimeout(timer);
        resolve(true);
      });
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    this.wake?.();
    this.connection?.close();
    await this.running;
  }

  private async loop(): Promise<void> {
    let backoff = 100;
    const maxBackoff = this.options.maxBackoffMs ?? 5_000;
    while (!this.closed) {
      try {
        await this.ensureConnection();
        if (this.resync) {
          const domain = await this.options.current();
          if (domain) await this.send({ kind: 'domain', type: 'MODIFIED', domain });
          this.resync = false;
        }
        const item = this.items[0];
        if (!item) {
          for (const done of this.idle.splice(0)) done();
          await new Promise<void>((resolve) => (this.wake = resolve));
          this.wake = undefined;
          continue;
        }
        // Taken off the queue while it is sent, so a newer domain state queued meanwhile is not merged into it.
        this.items.shift();
        this.sending = true;
        try {
          await this.send(item);
        } catch (err) {
          this.items.unshift(item);
          throw err;
        } finally {
          this.sending = false;
        }
        backoff = 100;
      } catch (err) {
        if (this.closed) break;
        this.log.debug({ err, socket: this.options.socketPath }, 'notify delivery failed; retrying');
        this.connection?.close();
        this.connection = undefined;
        this.resync = true;
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, backoff);
          this.wake = () => {
            if (this.closed) {
              clearTimeout(timer);
              resolve();
            }
          };
        });
        this.wake = undefined;
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  private async ensureConnection(): Promise<void> {
    if (this.connection) return;
    // grpc-js would keep retrying a missing path on its own; waiting for the file keeps the log quiet until the
    // handler has made its socket.
    await access(this.options.socketPath);
    const connection = dialNotify({ unix: this.options.socketPath });
    try {
      await negotiateVersion(connection);
    } catch (err) {
      connection.close();
      throw err;
    }
    this.connection = connection;
    this.log.info({ socket: this.options.socketPath }, 'connected to the handler');
  }

  private async send(item: Item): Promise<void> {
    const connection = this.connection;
    if (!connection) throw new Error('not connected');
    const response =
      item.kind === 'domain'
        ? await connection.domainEvent({
            eventType: item.type,
            domainJson: Buffer.from(JSON.stringify(item.domain)),
          })
        : await connection.k8sEvent({
            type: item.type === 'Warning' ? 'WARNING' : 'NORMAL',
            reason: item.reason,
            message: item.message,
            vmiName: this.options.identity.name,
            vmiNamespace: this.options.identity.namespace,
            vmiUid: this.options.identity.uid,
          });
    if (!response.success) {
      // The handler understood and refused (e.g. the VMI is gone); resending would not change its answer.
      this.log.warn({ kind: item.kind, message: response.message }, 'the handler refused a notification');
    }
  }
}
