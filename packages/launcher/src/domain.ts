// What the launcher tells the handler about its domain: the domain JSON of GetDomain and of every notify
// DomainEvent (KubeVirt's api.Domain, reduced to what the handler uses), the guest-agent info of GetGuestInfo in
// the shape of KubeVirt's VirtualMachineInstanceGuestAgentInfo, and the kubevirt.io metadata element the launcher
// keeps in the domain (the grace period, so that a restarted launcher keeps a shutdown's deadline).
import { KUBEVIRT_METADATA_NS } from './converter/convert.ts';
import { el, serialize } from './converter/xml.ts';
import type { DomainReason, DomainState, TypedParams } from './hypervisor.ts';

export interface VMIIdentity {
  name: string;
  namespace: string;
  uid: string;
}

export interface GracePeriodMetadata {
  deletionGracePeriodSeconds: number;
  /** When the graceful shutdown began (ACPI sent); its deadline is this plus the grace period. */
  deletionTimestamp?: string | undefined;
  /** The launcher got SIGTERM and is shutting the guest down. */
  markedForGracefulShutdown?: boolean | undefined;
}

export interface KubevirtMetadata {
  uid: string;
  graceperiod: GracePeriodMetadata;
}

export interface DomainJson {
  kind: 'Domain';
  apiVersion: 'kubevirt.io/v1';
  /** The VMI this domain runs; deletionTimestamp is set on the final (DELETED) event. */
  metadata: VMIIdentity & { deletionTimestamp?: string };
  spec: {
    /** libvirt's name of the domain: <namespace>_<name>. */
    name: string;
    uuid?: string | undefined;
    metadata: { kubevirt: KubevirtMetadata };
  };
  status: {
    status: DomainState;
    reason: DomainReason;
    /** The guest agent is connected on its channel. */
    guestAgentConnected: boolean;
  };
}

export function metadataXml(meta: KubevirtMetadata): string {
  const g = meta.graceperiod;
  return serialize(
    el(
      'kubevirt',
      {},
      el('uid', {}, meta.uid),
      el(
        'graceperiod',
        {},
        el('deletionGracePeriodSeconds', {}, g.deletionGracePeriodSeconds),
        g.deletionTimestamp !== undefined && el('deletionTimestamp', {}, g.deletionTimestamp),
        g.markedForGracefulShutdown !== undefined &&
          el('markedForGracefulShutdown', {}, String(g.markedForGracefulShutdown)),
      ),
    ),
  );
}

function tag(xml: string, name: string): string | undefined {
  return new RegExp(`<(?:\\w+:)?${name}>([^<]*)</(?:\\w+:)?${name}>`).exec(xml)?.[1];
}

/** Reads the element metadataXml wrote (libvirt may add a namespace prefix to every tag). */
export function parseMetadataXml(xml: string): KubevirtMetadata | undefined {
  const uid = tag(xml, 'uid');
  const seconds = tag(xml, 'deletionGracePeriodSeconds');
  if (uid === undefined || seconds === undefined) return undefined;
  const marked = tag(xml, 'markedForGracefulShutdown');
  return {
    uid,
    graceperiod: {
      deletionGracePeriodSeconds: Number(seconds),
      deletionTimestamp: tag(xml, 'deletionTimestamp'),
      markedForGracefulShutdown: marked === undefined ? undefined : marked === 'true',
    },
  };
}

export { KUBEVIRT_METADATA_NS };

/** KubeVirt's guest-agent info (the guestosinfo subresource) from libvirt's guest info parameters. */
export interface GuestAgentInfo {
  hostname?: string;
  os: {
    name?: string;
    kernelRelease?: string;
    version?: string;
    prettyName?: string;
    versionId?: string;
    kernelVersion?: string;
    machine?: string;
    id?: string;
  };
  timezone?: string;
  userList: { userName: string; domain?: string; loginTime?: number }[];
  fsInfo: {
    disks: {
      diskName?: string;
      mountPoint?: string;
      fileSystemType?: string;
      totalBytes?: number;
      usedBytes?: number;
    }[];
  };
  /** The guest's NICs as its agent sees them (loopback left out); the handler matches them to the VMI's by MAC. */
  interfaces: { interfaceName?: string; mac?: string; ip?: string; ips?: string[] }[];
}

function str(params: TypedParams, key: string): string | undefined {
  const v = params[key];
  return v === undefined ? undefined : String(v);
}

function num(params: TypedParams, key: string): number | undefined {
  const v = params[key];
  return typeof v === 'number' ? v : undefined;
}

export function guestAgentInfo(params: TypedParams): GuestAgentInfo {
  const users: GuestAgentInfo['userList'] = [];
  for (let i = 0; i < (num(params, 'user.count') ?? 0); i++) {
    const userName = str(params, `user.${i}.name`);
    if (userName === undefined) continue;
    users.push({
      userName,
      domain: str(params, `user.${i}.domain`),
      loginTime: num(params, `user.${i}.login-time`),
    });
  }
  const disks: GuestAgentInfo['fsInfo']['disks'] = [];
  for (let i = 0; i < (num(params, 'fs.count') ?? 0); i++) {
    disks.push({
      diskName: str(params, `fs.${i}.name`),
      mountPoint: str(params, `fs.${i}.mountpoint`),
      fileSystemType: str(params, `fs.${i}.fstype`),
      totalBytes: num(params, `fs.${i}.total-bytes`),
      usedBytes: num(params, `fs.${i}.used-bytes`),
    });
  }
  const interfaces: GuestAgentInfo['interfaces'] = [];
  for (let i = 0; i < (num(params, 'if.count') ?? 0); i++) {
    const interfaceName = str(params, `if.${i}.name`);
    if (interfaceName === 'lo') continue;
    const ips: string[] = [];
    for (let j = 0; j < (num(params, `if.${i}.addr.count`) ?? 0); j++) {
      const addr = str(params, `if.${i}.addr.${j}.addr`);
      if (addr !== undefined) ips.push(addr);
    }
    interfaces.push({
      interfaceName,
      mac: str(params, `if.${i}.hwaddr`),
      ...(ips.length > 0 ? { ip: ips[0], ips } : {}),
    });
  }
  const tzName = str(params, 'timezone.name');
  const tzOffset = num(params, 'timezone.offset');
  return {
    hostname: str(params, 'hostname'),
    os: {
      name: str(params, 'os.name'),
      kernelRelease: str(params, 'os.kernel-release'),
      version: str(params, 'os.version'),
      prettyName: str(params, 'os.pretty-name'),
      versionId: str(params, 'os.version-id'),
      kernelVersion: str(params, 'os.kernel-version'),
      machine: str(params, 'os.machine'),
      id: str(params, 'os.id'),
    },
    // KubeVirt's form: "<name>, <offset in seconds>".
    timezone: tzName === undefined ? undefined : `${tzName}, ${tzOffset ?? 0}`,
    userList: users,
    fsInfo: { disks },
    interfaces,
  };
}
