// The launcher's part of the pod network (KubeVirt's phase 2): the handler, which has the privileges, already made
// the bridge, the tap and the NAT rules in this pod's network namespace; the launcher checks they are there and
// serves the guest its address by DHCP. The domain then uses the tap (converter). The passt binding needs nothing
// from the handler: the launcher runs passt, which serves the guest itself (passt.ts).
import { access, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '@kubevirt-ts/runtime';
import {
  BRIDGE_DHCP_SERVER_ADDRESS,
  formatIpv4,
  interfaceMac,
  masqueradeAddresses,
  parseIpv4,
  POD_NETWORK_CACHE_FILE,
  podInterfaceOf,
  POD_INTERFACE,
  POD_NETWORK_BRIDGE,
  POD_NETWORK_TAP,
  type PodNetworkCache,
} from '@kubevirt-ts/schema/network';
import type { VirtualMachineInstance } from '../vmi.ts';
import { parseResolvConf, type Lease } from './dhcp.ts';
import { DhcpServer } from './dhcp-server.ts';
import { Passt, PasstError } from './passt.ts';

export class PodNetworkError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PodNetworkError';
  }
}

export interface PodNetworkOptions {
  log: Logger;
  /** /sys/class/net of this network namespace. */
  sysClassNet?: string;
  /** The pod's private folder, where the handler leaves the pod network's cache and passt keeps its files. */
  privateDir?: string;
  resolvConf?: string;
}

/** The launcher's --private-dir default (main.ts), as the launcher pod mounts it. */
const DEFAULT_PRIVATE_DIR = '/var/run/kubevirt-private';

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/** The lease a masquerade guest gets: its fixed address, the bridge as gateway, the pod's DNS and MTU. */
export function masqueradeLease(
  vmi: VirtualMachineInstance,
  resolvConf: string,
  mtu: number | undefined,
): Lease | undefined {
  const pod = podInterfaceOf(vmi.spec);
  if (pod?.binding !== 'masquerade') return undefined;
  const addresses = masqueradeAddresses(pod.network);
  const { dns, search } = parseResolvConf(resolvConf);
  return {
    address: addresses.guest,
    netmask: addresses.netmask,
    router: addresses.gateway,
    serverId: addresses.gateway,
    broadcast: addresses.broadcast,
    dns,
    search,
    hostname: vmi.spec.hostname ?? vmi.metadata.name,
    mtu,
  };
}

/** The lease a bridge guest gets: the pod's own address, gateway and MTU, which the handler recorded. */
export function bridgeLease(vmi: VirtualMachineInstance, cache: PodNetworkCache, resolvConf: string): Lease {
  const ip = parseIpv4(cache.podIP);
  if (ip === undefined || cache.prefix < 1 || cache.prefix > 32)
    throw new PodNetworkError(
      `the recorded pod address ${cache.podIP}/${cache.prefix} is not an IPv4 address`,
    );
  const size = 2 ** (32 - cache.prefix);
  const network = ip - (ip % size);
  const { dns, search } = parseResolvConf(resolvConf);
  return {
    address: cache.podIP,
    netmask: formatIpv4(2 ** 32 - size),
    router: cache.gateway,
    serverId: BRIDGE_DHCP_SERVER_ADDRESS,
    broadcast: formatIpv4(network + size - 1),
    dns,
    search,
    hostname: vmi.spec.hostname ?? vmi.metadata.name,
    mtu: cache.mtu,
  };
}

export class PodNetwork {
  readonly #o: PodNetworkOptions;
  #server: DhcpServer | undefined;
  #passt: Passt | undefined;
  #guestMac: string | undefined;

  /** The guest MAC of the pod network interface, once ensure() ran (the bridge binding takes the pod's). */
  get guestMac(): string | undefined {
    return this.#guestMac;
  }

  constructor(options: PodNetworkOptions) {
    this.#o = options;
  }

  /** Makes sure the guest's NIC can come up: the handler's devices exist and the DHCP server runs. */
  async ensure(vmi: VirtualMachineInstance): Promise<void> {
    const pod = podInterfaceOf(vmi.spec);
    if (pod === undefined || this.#server?.listening || this.#passt?.running) return;
    if (pod.binding === 'passtBinding') {
      this.#guestMac = interfaceMac(vmi.metadata.uid, pod.iface);
      this.#passt ??= new Passt({
        log: this.#o.log,
        privateDir: this.#o.privateDir ?? DEFAULT_PRIVATE_DIR,
      });
      try {
        await this.#passt.start(pod.iface);
      } catch (err) {
        if (err instanceof PasstError) throw new PodNetworkError(err.message, { cause: err });
        throw err;
      }
      return;
    }
    if (pod.binding !== 'masquerade' && pod.binding !== 'bridge')
      throw new PodNetworkError(
        `spec.domain.devices.interfaces[${pod.index}]: only the masquerade, bridge and passtBinding bindings are supported on the pod network`,
      );
    const net = this.#o.sysClassNet ?? '/sys/class/net';
    for (const dev of [POD_NETWORK_BRIDGE, POD_NETWORK_TAP]) {
      if (!(await exists(join(net, dev))))
        throw new PodNetworkError(
          `the pod network is not prepared: no ${dev} in the launcher pod (virt-handler creates it before the first sync)`,
        );
    }
    const mtuText = await readFile(join(net, POD_INTERFACE, 'mtu'), 'utf8').catch(() => undefined);
    const mtu = mtuText === undefined ? undefined : Number(mtuText.trim()) || undefined;
    const resolv = await readFile(this.#o.resolvConf ?? '/etc/resolv.conf', 'utf8').catch(() => '');
    let lease: Lease | undefined;
    let mac = interfaceMac(vmi.metadata.uid, pod.iface);
    if (pod.binding === 'bridge') {
      const file = join(this.#o.privateDir ?? DEFAULT_PRIVATE_DIR, POD_NETWORK_CACHE_FILE);
      const cache = await readFile(file, 'utf8')
        .then((t) => JSON.parse(t) as PodNetworkCache)
        .catch(() => undefined);
      if (cache === undefined)
        throw new PodNetworkError(
          `the pod network is not prepared: ${file} is missing (virt-handler writes it)`,
        );
      lease = bridgeLease(vmi, cache, resolv);
      if (pod.iface.macAddress === undefined || pod.iface.macAddress === '') mac = cache.mac.toLowerCase();
    } else lease = masqueradeLease(vmi, resolv, mtu);
    if (lease === undefined) return;
    this.#guestMac = mac;
    const server = new DhcpServer({
      mac,
      lease,
      log: this.#o.log.child({ component: 'dhcp' }),
      // The bridge's own address is a link-local /32: only the limited broadcast reaches the guest.
      ...(pod.binding === 'bridge' ? { replyTo: '255.255.255.255' } : {}),
    });
    try {
      await server.start();
    } catch (err) {
      throw new PodNetworkError(`cannot start the guest's DHCP server: ${(err as Error).message}`, {
        cause: err,
      });
    }
    this.#server = server;
  }

  async close(): Promise<void> {
    await this.#server?.close();
    this.#server = undefined;
    await this.#passt?.stop();
    this.#passt = undefined;
  }
}
