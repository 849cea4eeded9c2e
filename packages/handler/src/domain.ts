// The domain as a launcher reports it (GetDomain and every notify DomainEvent): KubeVirt's api.Domain reduced to
// what the handler reads. The launcher's package declares what it sends (packages/launcher/src/domain.ts); a
// service never imports another service, so this is the reading side of the same JSON, parsed defensively: a field
// the launcher does not send yet (interfaces) is optional, and malformed input is refused with a reason.

/** libvirt's domain states, named as KubeVirt's domain status names them. */
export type DomainState =
  | 'NoState'
  | 'Running'
  | 'Blocked'
  | 'Paused'
  | 'ShuttingDown'
  | 'Shutoff'
  | 'Crashed'
  | 'PMSuspended'
  | 'Unknown';

export interface DomainGracePeriod {
  deletionGracePeriodSeconds: number;
  /** When the launcher sent the ACPI shutdown; the guest is killed at this plus the grace period. */
  deletionTimestamp?: string | undefined;
  /** The launcher got SIGTERM (its pod is going away) and is shutting the guest down. */
  markedForGracefulShutdown?: boolean | undefined;
}

/** One NIC as the domain or the guest agent reports it (KubeVirt's shape; the launcher does not send NICs yet). */
export interface DomainInterface {
  name?: string;
  mac?: string;
  ip?: string;
  ips?: string[];
  interfaceName?: string;
  infoSource?: string;
}

export interface Domain {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    /** Set on the final (DELETED) event: the domain is undefined. */
    deletionTimestamp?: string | undefined;
  };
  spec: {
    /** libvirt's name: `<namespace>_<name>`. */
    name: string;
    gracePeriod?: DomainGracePeriod | undefined;
  };
  status: {
    status: DomainState;
    reason: string;
    guestAgentConnected: boolean;
    interfaces?: DomainInterface[] | undefined;
  };
}

const STATES = new Set<string>([
  'NoState',
  'Running',
  'Blocked',
  'Paused',
  'ShuttingDown',
  'Shutoff',
  'Crashed',
  'PMSuspended',
  'Unknown',
]);

/** States in which QEMU runs the guest (a Crashed domain keeps its QEMU until it is destroyed). */
const ACTIVE_STATES = new Set<DomainState>([
  'Running',
  'Blocked',
  'Paused',
  'ShuttingDown',
  'PMSuspended',
  'Crashed',
]);

export function isDomainActive(domain: Domain | undefined): boolean {
  return domain !== undefined && ACTIVE_STATES.has(domain.status.status);
}

/** The domain was defined but QEMU is not running it. */
export function isDomainShutoff(domain: Domain | undefined): boolean {
  return domain !== undefined && domain.status.status === 'Shutoff';
}

export class DomainParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DomainParseError';
  }
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
const optString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

function parseInterfaces(raw: unknown): DomainInterface[] | undefined {
  if (!Array.isArray(raw)) return undefined;
  return raw.filter(isObject).map((i) => {
    const out: DomainInterface = {};
    for (const key of ['name', 'mac', 'ip', 'interfaceName', 'infoSource'] as const) {
      const v = optString(i[key]);
      if (v !== undefined) out[key] = v;
    }
    if (Array.isArray(i.ips)) out.ips = i.ips.filter((x): x is string => typeof x === 'string');
    return out;
  });
}

/** Parses the domain JSON a launcher sent; throws DomainParseError naming what is wrong. */
export function parseDomain(json: Buffer | string): Domain {
  let raw: unknown;
  try {
    raw = JSON.parse(typeof json === 'string' ? json : json.toString('utf8'));
  } catch (err) {
    throw new DomainParseError(`the domain is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(raw)) throw new DomainParseError('the domain JSON is not an object');
  const meta = raw.metadata;
  const spec = raw.spec;
  const status = raw.status;
  if (!isObject(meta) || typeof meta.uid !== 'string' || typeof meta.name !== 'string') {
    throw new DomainParseError('the domain JSON lacks metadata.name and metadata.uid (the VMI it runs)');
  }
  if (!isObject(status) || typeof status.status !== 'string' || !STATES.has(status.status)) {
    throw new DomainParseError(
      `the domain JSON has no known status.status (got ${JSON.stringify(isObject(status) ? status.status : status)})`,
    );
  }
  const domain: Domain = {
    metadata: {
      name: meta.name,
      namespace: optString(meta.namespace) ?? '',
      uid: meta.uid,
      deletionTimestamp: optString(meta.deletionTimestamp),
    },
    spec: { name: isObject(spec) ? (optString(spec.name) ?? '') : '' },
    status: {
      status: status.status as DomainState,
      reason: optString(status.reason) ?? 'Unknown',
      guestAgentConnected: status.guestAgentConnected === true,
      interfaces: parseInterfaces(status.interfaces),
    },
  };
  const grace = isObject(spec) && isObject(spec.metadata) ? spec.metadata.kubevirt : undefined;
  const period = isObject(grace) ? grace.graceperiod : undefined;
  if (isObject(period) && typeof period.deletionGracePeriodSeconds === 'number') {
    domain.spec.gracePeriod = {
      deletionGracePeriodSeconds: period.deletionGracePeriodSeconds,
      deletionTimestamp: optString(period.deletionTimestamp),
      markedForGracefulShutdown:
        typeof period.markedForGracefulShutdown === 'boolean' ? period.markedForGracefulShutdown : undefined,
    };
  }
  return domain;
}

/** The guest-agent info a launcher's GetGuestInfo returns (KubeVirt's VirtualMachineInstanceGuestAgentInfo). */
export interface GuestAgentInfo {
  guestAgentVersion?: string;
  hostname?: string;
  os?: {
    name?: string;
    kernelRelease?: string;
    version?: string;
    prettyName?: string;
    versionId?: string;
    kernelVersion?: string;
    machine?: string;
    id?: string;
  };
  interfaces?: DomainInterface[];
}

export function parseGuestInfo(json: Buffer): GuestAgentInfo | undefined {
  if (json.length === 0) return undefined;
  try {
    const raw = JSON.parse(json.toString('utf8')) as unknown;
    return isObject(raw) ? raw : undefined;
  } catch {
    return undefined;
  }
}
