// What the handler, the launcher and the webhook agree on about a VMI's pod network: which interface is on it and
// with which binding, the addresses of a masquerade guest (KubeVirt's `vmNetworkCIDR`: the gateway is the first
// host of the range, the guest the second), the device names inside the launcher pod, where the passt binding keeps
// its socket, and the guest's MAC when the spec gives none (derived from the VMI's UID, so every component computes
// the same one without asking libvirt).
import { createHash } from 'node:crypto';
import type { Interface, Network, VirtualMachineInstanceSpec } from './types/vmi.ts';

/** KubeVirt's default `networks[].pod.vmNetworkCIDR`. */
export const DEFAULT_VM_NETWORK_CIDR = '10.0.2.0/24';
/** The pod's own interface, which the pod network gives every pod. */
export const POD_INTERFACE = 'eth0';
/** The bridge the handler creates in the launcher pod for the pod network (KubeVirt's name). */
export const POD_NETWORK_BRIDGE = 'k6t-eth0';
/** The tap device the guest's NIC uses; the handler creates it, QEMU opens it (`managed='no'`). */
export const POD_NETWORK_TAP = 'tap0';
/** The nftables table the handler fills in the launcher pod's network namespace. */
export const POD_NETWORK_NFT_TABLE = 'kubevirt_ts_nat';
/** NIC models KubeVirt accepts (`interfaces[].model`); virtio is the default. */
export const INTERFACE_MODELS = ['e1000', 'e1000e', 'igb', 'ne2k_pci', 'pcnet', 'rtl8139', 'virtio'] as const;
/** Bindings of the pod network that kubevirt-ts implements. */
export const IMPLEMENTED_POD_BINDINGS = ['masquerade', 'bridge', 'passtBinding'] as const;
/** The feature gate KubeVirt puts the passt binding behind (Beta: on unless disabled). */
export const PASST_BINDING_FEATURE_GATE = 'PasstBinding';
/** The passt binding's folder in the launcher pod's private dir: passt's socket (QEMU connects to it) and its log. */
export const PASST_DIR = 'passt';
export const PASST_SOCKET = 'passt.sock';
export const PASST_LOG = 'passt.log';
/**
 * The interface field each value of the cluster's `network.defaultNetworkInterface` gives the default pod interface
 * of a VMI that declares no networks and no interfaces (KubeVirt's SetDefaultNetworkInterface). `passt` names the
 * passtBinding; the discontinued `passt: {}` field is never produced.
 */
export const DEFAULT_INTERFACE_BINDING_FIELD: Readonly<Record<string, string>> = {
  bridge: 'bridge',
  masquerade: 'masquerade',
  passt: 'passtBinding',
};
/** The bridge binding's address on the bridge: the guest's DHCP server answers from it (KubeVirt's). */
export const BRIDGE_DHCP_SERVER_ADDRESS = '169.254.75.10';
/** The file in the launcher pod's private folder where the handler leaves the pod's original addresses. */
export const POD_NETWORK_CACHE_FILE = 'pod-network.json';

/** What the handler records of the pod interface before the bridge binding takes its address away. */
export interface PodNetworkCache {
  binding: 'bridge';
  /** The pod's IPv4 address and prefix length. */
  podIP: string;
  prefix: number;
  /** The pod's default gateway, if it had one. */
  gateway?: string | undefined;
  /** The pod interface's MAC, which the guest takes over. */
  mac: string;
  mtu?: number | undefined;
}

export type PodBinding = (typeof IMPLEMENTED_POD_BINDINGS)[number];

export interface PodInterface {
  /** Index in spec.domain.devices.interfaces. */
  index: number;
  iface: Interface;
  network: Network;
  binding: PodBinding | 'other';
}

/** The interface on the VMI's pod network, if it has one. */
export function podInterfaceOf(
  spec: Pick<VirtualMachineInstanceSpec, 'domain' | 'networks'>,
): PodInterface | undefined {
  const network = (spec.networks ?? []).find((n) => n.pod !== undefined);
  if (network === undefined) return undefined;
  const interfaces = spec.domain.devices.interfaces ?? [];
  const index = interfaces.findIndex((i) => i.name === network.name);
  const iface = interfaces[index];
  if (iface === undefined) return undefined;
  const binding: PodInterface['binding'] =
    iface.masquerade !== undefined
      ? 'masquerade'
      : iface.bridge !== undefined
        ? 'bridge'
        : iface.passtBinding !== undefined
          ? 'passtBinding'
          : 'other';
  return { index, iface, network, binding };
}

export interface Ipv4Cidr {
  /** The network address, as a 32-bit number. */
  network: number;
  prefix: number;
}

const IPV4 = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

export function parseIpv4(text: string): number | undefined {
  const m = IPV4.exec(text);
  if (!m) return undefined;
  const parts = m.slice(1).map(Number);
  if (parts.some((p) => p > 255)) return undefined;
  return parts.reduce((acc, p) => acc * 256 + p, 0);
}

export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

/** Parses `a.b.c.d/n`; undefined when it is not one, or has host bits set. */
export function parseIpv4Cidr(text: string): Ipv4Cidr | undefined {
  const [addr, bits, ...rest] = text.split('/');
  if (addr === undefined || bits === undefined || rest.length > 0 || !/^\d{1,2}$/.test(bits))
    return undefined;
  const prefix = Number(bits);
  const ip = parseIpv4(addr);
  if (ip === undefined || prefix > 32) return undefined;
  const size = 2 ** (32 - prefix);
  if (ip % size !== 0) return undefined;
  return { network: ip, prefix };
}

export interface MasqueradeAddresses {
  /** The range, as written. */
  cidr: string;
  prefix: number;
  /** The bridge's address: the guest's default gateway and DHCP server. */
  gateway: string;
  /** The address the guest gets, and every allowed port is forwarded to. */
  guest: string;
  broadcast: string;
  netmask: string;
}

/** Addresses of a masquerade guest in `vmNetworkCIDR` (checked by validation: /30 or larger). */
export function masqueradeAddresses(network: Network | undefined): MasqueradeAddresses {
  const cidr = network?.pod?.vmNetworkCIDR ?? DEFAULT_VM_NETWORK_CIDR;
  const parsed = parseIpv4Cidr(cidr);
  if (parsed === undefined || parsed.prefix > 30)
    throw new Error(`vmNetworkCIDR ${cidr} is not an IPv4 range of /30 or larger`);
  const size = 2 ** (32 - parsed.prefix);
  return {
    cidr,
    prefix: parsed.prefix,
    gateway: formatIpv4(parsed.network + 1),
    guest: formatIpv4(parsed.network + 2),
    broadcast: formatIpv4(parsed.network + size - 1),
    netmask: formatIpv4(2 ** 32 - size),
  };
}

/**
 * The guest MAC of an interface: the spec's `macAddress`, else one derived from the VMI's UID and the interface's
 * name, in QEMU's locally administered 52:54:00 range, so it stays the same across restarts of the launcher.
 */
export function interfaceMac(uid: string, iface: Pick<Interface, 'name' | 'macAddress'>): string {
  if (iface.macAddress !== undefined && iface.macAddress !== '') return normalizeMac(iface.macAddress);
  const digest = createHash('sha256').update(`${uid}/${iface.name}`).digest();
  const tail = [...digest.subarray(0, 3)].map((b) => b.toString(16).padStart(2, '0'));
  return ['52', '54', '00', ...tail].join(':');
}

const MAC = /^([0-9a-fA-F]{2})([:-][0-9a-fA-F]{2}){5}$/;

export function isMacAddress(text: string): boolean {
  return MAC.test(text);
}

export function normalizeMac(text: string): string {
  return text.replaceAll('-', ':').toLowerCase();
}
