// The Hypervisor interface over libvirt's RPC protocol: the procedures the launcher uses, their argument and reply
// layouts (remote_protocol.x), and the translation of libvirt's numeric states, reasons and events into the names
// KubeVirt's domain status uses.
import type { DomainState, DomainStatus, Hypervisor, HypervisorEvent, TypedParams } from '../hypervisor.ts';
import { LibvirtError, LibvirtErrorCode, RpcConnection } from './rpc.ts';
import { XdrWriter } from './xdr.ts';
import type { XdrReader } from './xdr.ts';

/** Procedure numbers from libvirt's remote_protocol.x (stable: the protocol only ever adds). */
const Proc = {
  CONNECT_OPEN: 1,
  CONNECT_CLOSE: 2,
  DOMAIN_GET_XML_DESC: 14,
  DOMAIN_LOOKUP_BY_NAME: 23,
  DOMAIN_REBOOT: 27,
  DOMAIN_RESUME: 28,
  DOMAIN_SUSPEND: 34,
  AUTH_LIST: 66,
  DOMAIN_CREATE_WITH_FLAGS: 196,
  DOMAIN_GET_STATE: 212,
  DOMAIN_UNDEFINE_FLAGS: 231,
  DOMAIN_DESTROY_FLAGS: 234,
  DOMAIN_RESET: 245,
  DOMAIN_SHUTDOWN_FLAGS: 258,
  DOMAIN_SET_METADATA: 264,
  DOMAIN_GET_METADATA: 265,
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: 316,
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: 318,
  DOMAIN_EVENT_CALLBACK_REBOOT: 319,
  CONNECT_GET_DOMAIN_CAPABILITIES: 342,
  CONNECT_GET_ALL_DOMAIN_STATS: 344,
  DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE: 348,
  DOMAIN_DEFINE_XML_FLAGS: 350,
  DOMAIN_GET_GUEST_INFO: 418,
} as const;

const EventId = { LIFECYCLE: 0, REBOOT: 1, AGENT_LIFECYCLE: 18 } as const;

const START_PAUSED = 1;
const SHUTDOWN_ACPI_POWER_BTN = 1;
const REBOOT_ACPI_POWER_BTN = 1;
const REBOOT_GUEST_AGENT = 2;
const METADATA_ELEMENT = 2;
const AFFECT_LIVE_AND_CONFIG = 1 | 2;
const AFFECT_CURRENT = 0;
const UNDEFINE_NVRAM = 4;
const GET_ALL_STATS_ENFORCE = 0x80000000;
// state, cpu-total, balloon, vcpu, interface, block
const STATS_TYPES = 1 | 2 | 4 | 8 | 16 | 32;
// users, os, timezone, hostname, filesystem, interfaces (the guest's own addresses, for status.interfaces)
const GUEST_INFO_TYPES = 1 | 2 | 4 | 8 | 16 | 64;

const STATES: readonly DomainState[] = [
  'NoState',
  'Running',
  'Blocked',
  'Paused',
  'ShuttingDown',
  'Shutoff',
  'Crashed',
  'PMSuspended',
];

/** Reasons per state (libvirt's virDomain<State>Reason enums), named as KubeVirt's domain status names them. */
const REASONS: Record<DomainState, readonly string[]> = {
  NoState: ['Unknown'],
  Running: [
    'Unknown',
    'Booted',
    'Migrated',
    'Restored',
    'FromSnapshot',
    'Unpaused',
    'MigrationCanceled',
    'SaveCanceled',
    'Wakeup',
    'Crashed',
    'Postcopy',
    'PostcopyFailed',
  ],
  Blocked: ['Unknown'],
  Paused: [
    'Unknown',
    'User',
    'Migration',
    'Save',
    'Dump',
    'IOError',
    'Watchdog',
    'FromSnapshot',
    'ShuttingDown',
    'Snapshot',
    'Crashed',
    'StartingUp',
    'Postcopy',
    'PostcopyFailed',
    'APIError',
  ],
  ShuttingDown: ['Unknown', 'User'],
  Shutoff: [
    'Unknown',
    'Shutdown',
    'Destroyed',
    'Crashed',
    'Migrated',
    'Saved',
    'Failed',
    'FromSnapshot',
    'Daemon',
  ],
  Crashed: ['Unknown', 'Panicked'],
  PMSuspended: ['Unknown'],
};

/** Lifecycle events and their details (virDomainEventType and the virDomainEvent*DetailType enums). */
const EVENTS: readonly (readonly [string, readonly string[]])[] = [
  ['Defined', ['Added', 'Updated', 'Renamed', 'FromSnapshot']],
  ['Undefined', ['Removed', 'Renamed']],
  ['Started', ['Booted', 'Migrated', 'Restored', 'FromSnapshot', 'Wakeup', 'Recreated']],
  [
    'Suspended',
    [
      'Paused',
      'Migrated',
      'IOError',
      'Watchdog',
      'Restored',
      'FromSnapshot',
      'APIError',
      'Postcopy',
      'PostcopyFailed',
    ],
  ],
  ['Resumed', ['Unpaused', 'Migrated', 'FromSnapshot', 'Postcopy', 'PostcopyFailed']],
  [
    'Stopped',
    ['Shutdown', 'Destroyed', 'Crashed', 'Migrated', 'Saved', 'Failed', 'FromSnapshot', 'Recreated'],
  ],
  ['Shutdown', ['Finished', 'Guest', 'Host']],
  ['PMSuspended', ['Memory', 'Disk']],
  ['Crashed', ['Panicked', 'Crashloaded']],
];

export function domainStatusOf(state: number, reason: number): DomainStatus {
  const name = STATES[state] ?? 'NoState';
  return { state: name, reason: REASONS[name][reason] ?? 'Unknown' };
}

export function lifecycleEventOf(event: number, detail: number): { event: string; detail: string } {
  const entry = EVENTS[event];
  return { event: entry?.[0] ?? `Event${event}`, detail: entry?.[1][detail] ?? `Detail${detail}` };
}

interface DomainRef {
  name: string;
  uuid: Buffer;
  id: number;
}

function readDomain(r: XdrReader): DomainRef {
  return { name: r.string(), uuid: r.fixedOpaque(16), id: r.int() };
}

function writeDomain(w: XdrWriter, d: DomainRef): XdrWriter {
  return w.string(d.name).fixedOpaque(d.uuid).int(d.id);
}

export function readTypedParams(r: XdrReader): TypedParams {
  const params: TypedParams = {};
  for (const [field, value] of r.array(() => {
    const field = r.string();
    const type = r.int();
    switch (type) {
      case 1:
        return [field, r.int()] as const;
      case 2:
        return [field, r.uint()] as const;
      case 3:
        return [field, Number(r.hyper())] as const;
      case 4:
        return [field, Number(r.uhyper())] as const;
      case 5:
        return [field, r.double()] as const;
      case 6:
        return [field, r.int() !== 0] as const;
      case 7:
        return [field, r.string()] as const;
      default:
        throw new Error(`libvirt typed parameter ${field} has unknown type ${type}`);
    }
  })) {
    params[field] = value;
  }
  return params;
}

export interface LibvirtConnectOptions {
  /** The daemon's socket; libvirtd's default for qemu:///system is /run/libvirt/libvirt-sock. */
  socketPath?: string;
  timeoutMs?: number;
}

export const DEFAULT_LIBVIRT_SOCKET = '/run/libvirt/libvirt-sock';

/** A Hypervisor on one open connection to a libvirt daemon (qemu:///system). */
export class LibvirtHypervisor implements Hypervisor {
  private readonly rpc: RpcConnection;
  private readonly listeners = new Set<(event: HypervisorEvent) => void>();

  private constructor(rpc: RpcConnection) {
    this.rpc = rpc;
    rpc.onMessage((program, procedure, body) => this.onMessage(procedure, body));
  }

  static async connect(options: LibvirtConnectOptions = {}): Promise<LibvirtHypervisor> {
    const rpc = await RpcConnection.connect(options.socketPath ?? DEFAULT_LIBVIRT_SOCKET, {
      timeoutMs: options.timeoutMs,
    });
    try {
      // The daemon accepts no other call before the client has asked which authentication it wants.
      const auth = await rpc.call(Proc.AUTH_LIST, undefined, { what: 'auth-list' });
      const types = auth.array(() => auth.int());
      if (types.length > 0 && !types.includes(0)) {
        throw new Error(
          `the libvirt daemon wants authentication (${types.join(', ')}); the launcher's libvirtd.conf must set auth_unix_rw = "none"`,
        );
      }
      await rpc.call(Proc.CONNECT_OPEN, new XdrWriter().optionalString('qemu:///system').uint(0), {
        what: 'connect-open',
      });
      const client = new LibvirtHypervisor(rpc);
      for (const id of [EventId.LIFECYCLE, EventId.REBOOT, EventId.AGENT_LIFECYCLE]) {
        // All domains (no domain argument): the pod has one, and it may not be defined yet.
        await rpc.call(Proc.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, new XdrWriter().int(id).bool(false), {
          what: `register event ${id}`,
        });
      }
      return client;
    } catch (err) {
      rpc.close();
      throw err;
    }
  }

  onEvent(listener: (event: HypervisorEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  onDisconnect(listener: (error: Error) => void): void {
    this.rpc.onClose(listener);
  }

  close(): void {
    // CONNECT_CLOSE lets the daemon drop our event callbacks at once; the socket closes either way.
    this.rpc.call(Proc.CONNECT_CLOSE, undefined, { timeoutMs: 1_000, what: 'connect-close' }).then(
      () => this.rpc.close(),
      () => this.rpc.close(),
    );
  }

  /**
   * The domain capabilities XML of software-emulated x86_64. The first call after the daemon started makes it probe
   * QEMU (or read its capability cache), which is what filling the cache needs.
   */
  async domainCapabilities(): Promise<string> {
    const args = new XdrWriter()
      .optionalString(undefined)
      .optionalString('x86_64')
      .optionalString(undefined)
      .optionalString('qemu')
      .uint(0);
    const r = await this.rpc.call(Proc.CONNECT_GET_DOMAIN_CAPABILITIES, args, {
      what: 'domain capabilities',
      timeoutMs: 120_000,
    });
    return r.string();
  }

  async defineDomain(xml: string): Promise<void> {
    await this.rpc.call(Proc.DOMAIN_DEFINE_XML_FLAGS, new XdrWriter().string(xml).uint(0), {
      what: 'define domain',
    });
  }

  async domainStatus(name: string): Promise<DomainStatus | undefined> {
    const dom = await this.lookupOrUndefined(name);
    if (!dom) return undefined;
    try {
      const r = await this.rpc.call(Proc.DOMAIN_GET_STATE, writeDomain(new XdrWriter(), dom).uint(0), {
        what: `state of ${name}`,
      });
      return domainStatusOf(r.int(), r.int());
    } catch (err) {
      if (err instanceof LibvirtError && err.code === LibvirtErrorCode.NO_DOMAIN) return undefined;
      throw err;
    }
  }

  async domainXml(name: string): Promise<string> {
    const r = await this.domainCall(name, Proc.DOMAIN_GET_XML_DESC, (w) => w.uint(0), 'get XML of');
    return r.string();
  }

  async start(name: string, options: { paused?: boolean } = {}): Promise<void> {
    const flags = options.paused === true ? START_PAUSED : 0;
    await this.domainCall(name, Proc.DOMAIN_CREATE_WITH_FLAGS, (w) => w.uint(flags), 'start');
  }

  async pause(name: string): Promise<void> {
    await this.domainCall(name, Proc.DOMAIN_SUSPEND, (w) => w, 'pause');
  }

  async resume(name: string): Promise<void> {
    await this.domainCall(name, Proc.DOMAIN_RESUME, (w) => w, 'resume');
  }

  async shutdown(name: string): Promise<void> {
    await this.domainCall(
      name,
      Proc.DOMAIN_SHUTDOWN_FLAGS,
      (w) => w.uint(SHUTDOWN_ACPI_POWER_BTN),
      'shut down',
    );
  }

  async reboot(name: string): Promise<void> {
    try {
      await this.domainCall(
        name,
        Proc.DOMAIN_REBOOT,
        (w) => w.uint(REBOOT_GUEST_AGENT),
        'reboot (guest agent)',
        10_000,
      );
    } catch (err) {
      if (!(err instanceof LibvirtError)) throw err;
      await this.domainCall(name, Proc.DOMAIN_REBOOT, (w) => w.uint(REBOOT_ACPI_POWER_BTN), 'reboot (ACPI)');
    }
  }

  async reset(name: string): Promise<void> {
    await this.domainCall(name, Proc.DOMAIN_RESET, (w) => w.uint(0), 'reset');
  }

  async destroy(name: string): Promise<void> {
    await this.domainCall(name, Proc.DOMAIN_DESTROY_FLAGS, (w) => w.uint(0), 'destroy');
  }

  async undefine(name: string): Promise<void> {
    await this.domainCall(name, Proc.DOMAIN_UNDEFINE_FLAGS, (w) => w.uint(UNDEFINE_NVRAM), 'undefine');
  }

  async setMetadata(name: string, namespaceUri: string, prefix: string, xml: string): Promise<void> {
    const status = await this.domainStatus(name);
    const active = status !== undefined && status.state !== 'Shutoff';
    // A running domain's live and persistent definitions both get it, so it survives a restart of the daemon.
    const flags = active ? AFFECT_LIVE_AND_CONFIG : AFFECT_CURRENT;
    await this.domainCall(
      name,
      Proc.DOMAIN_SET_METADATA,
      (w) =>
        w
          .int(METADATA_ELEMENT)
          .optionalString(xml)
          .optionalString(prefix)
          .optionalString(namespaceUri)
          .uint(flags),
      'set metadata of',
    );
  }

  async metadata(name: string, namespaceUri: string): Promise<string | undefined> {
    try {
      const r = await this.domainCall(
        name,
        Proc.DOMAIN_GET_METADATA,
        (w) => w.int(METADATA_ELEMENT).optionalString(namespaceUri).uint(AFFECT_CURRENT),
        'get metadata of',
      );
      return r.string();
    } catch (err) {
      // VIR_ERR_NO_DOMAIN_METADATA (80): the domain has no element in that namespace.
      if (err instanceof LibvirtError && err.code === 80) return undefined;
      throw err;
    }
  }

  async stats(name: string): Promise<TypedParams> {
    const dom = await this.lookup(name);
    const w = new XdrWriter().uint(1);
    writeDomain(w, dom).uint(STATS_TYPES).uint(GET_ALL_STATS_ENFORCE);
    const r = await this.rpc.call(Proc.CONNECT_GET_ALL_DOMAIN_STATS, w, { what: `stats of ${name}` });
    const records = r.array(() => ({ dom: readDomain(r), params: readTypedParams(r) }));
    return records[0]?.params ?? {};
  }

  async guestInfo(name: string): Promise<TypedParams> {
    const r = await this.domainCall(
      name,
      Proc.DOMAIN_GET_GUEST_INFO,
      (w) => w.uint(GUEST_INFO_TYPES).uint(0),
      'guest info of',
    );
    return readTypedParams(r);
  }

  private async lookupOrUndefined(name: string): Promise<DomainRef | undefined> {
    try {
      return await this.lookup(name);
    } catch (err) {
      if (err instanceof LibvirtError && err.code === LibvirtErrorCode.NO_DOMAIN) return undefined;
      throw err;
    }
  }

  private async lookup(name: string): Promise<DomainRef> {
    const r = await this.rpc.call(Proc.DOMAIN_LOOKUP_BY_NAME, new XdrWriter().string(name), {
      what: `look up domain ${name}`,
    });
    return readDomain(r);
  }

  private async domainCall(
    name: string,
    procedure: number,
    args: (w: XdrWriter) => XdrWriter,
    verb: string,
    timeoutMs?: number,
  ): Promise<XdrReader> {
    const dom = await this.lookup(name);
    return this.rpc.call(procedure, args(writeDomain(new XdrWriter(), dom)), {
      what: `${verb} domain ${name}`,
      timeoutMs,
    });
  }

  private onMessage(procedure: number, r: XdrReader): void {
    let event: HypervisorEvent | undefined;
    if (procedure === Proc.DOMAIN_EVENT_CALLBACK_LIFECYCLE) {
      r.int(); // callback id
      const dom = readDomain(r);
      event = { kind: 'lifecycle', domain: dom.name, ...lifecycleEventOf(r.int(), r.int()) };
    } else if (procedure === Proc.DOMAIN_EVENT_CALLBACK_REBOOT) {
      r.int();
      event = { kind: 'reboot', domain: readDomain(r).name };
    } else if (procedure === Proc.DOMAIN_EVENT_CALLBACK_AGENT_LIFECYCLE) {
      r.int();
      const dom = readDomain(r);
      event = { kind: 'agent', domain: dom.name, connected: r.int() === 1 };
    }
    if (event) for (const listener of this.listeners) listener(event);
  }
}
