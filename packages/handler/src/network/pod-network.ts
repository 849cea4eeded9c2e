// The handler's part of a VMI's pod network (KubeVirt's phase 1, done by virt-handler because it needs privileges
// the launcher does not have): inside the launcher pod's network namespace, a bridge with the gateway address of the
// guest range, a tap on it for QEMU, forwarding, and nftables rules that forward the allowed ports of the pod IP to
// the guest (DNAT) and hide the guest behind the pod IP on the way out (masquerade). Done before the first Sync, so
// the launcher finds the tap when it defines the domain; every step is idempotent (a handler restart repeats it).
//
// The namespace is reached through a process of the pod: the handler (hostPID) looks for the process whose root
// holds the same launcher socket file as the one it sees through the kubelet's pod folder, then runs iproute2 and
// nft in that process's network namespace (nsenter --net=/proc/PID/ns/net).
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, readdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '@kubevirt-ts/runtime';
import {
  BRIDGE_DHCP_SERVER_ADDRESS,
  interfaceMac,
  masqueradeAddresses,
  POD_NETWORK_CACHE_FILE,
  podInterfaceOf,
  POD_INTERFACE,
  POD_NETWORK_BRIDGE,
  POD_NETWORK_NFT_TABLE,
  POD_NETWORK_TAP,
  type MasqueradeAddresses,
  type PodNetworkCache,
} from '@kubevirt-ts/schema/network';
import type { VMI } from '../vmi.ts';

const execFileAsync = promisify(execFile);

/** Where the launcher's sockets emptyDir is mounted in its container (DESIGN.md §4a). */
export const LAUNCHER_SOCKETS_MOUNT = '/var/run/kubevirt/sockets';

export interface PodNetworkStatus {
  /** The pod's IPv4 address(es) on eth0: what Services and other pods reach. */
  podIPs: string[];
  /** The guest's MAC when the binding decides it (bridge: the pod interface's own). */
  mac?: string | undefined;
}

export class PodNetworkError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'PodNetworkError';
  }
}

/** The nftables ruleset of a masquerade interface: replaces the table as a whole, so applying it twice is a no-op. */
export function masqueradeRuleset(
  addresses: MasqueradeAddresses,
  ports: readonly { port: number; protocol?: string | undefined }[],
): string {
  const guest = addresses.guest;
  const inbound: string[] = [];
  if (ports.length === 0) {
    inbound.push(`iifname "${POD_INTERFACE}" meta l4proto { tcp, udp } dnat to ${guest}`);
  } else {
    for (const proto of ['tcp', 'udp'] as const) {
      const list = [
        ...new Set(ports.filter((p) => (p.protocol ?? 'TCP').toLowerCase() === proto).map((p) => p.port)),
      ];
      if (list.length > 0)
        inbound.push(`iifname "${POD_INTERFACE}" ${proto} dport { ${list.join(', ')} } dnat to ${guest}`);
    }
  }
  const t = POD_NETWORK_NFT_TABLE;
  return [
    `table ip ${t}`,
    `delete table ip ${t}`,
    `table ip ${t} {`,
    '  chain prerouting {',
    '    type nat hook prerouting priority dstnat; policy accept;',
    ...inbound.map((r) => `    ${r}`),
    '  }',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    `    ip saddr ${guest} oifname "${POD_INTERFACE}" masquerade`,
    '  }',
    '}',
    '',
  ].join('\n');
}

/** The `ip -batch` lines that create what is missing of the bridge and tap, given the links that exist. */
export function linkCommands(
  existing: ReadonlySet<string>,
  addresses: MasqueradeAddresses,
  mtu: number | undefined,
  bridgeHasAddress: boolean,
): string[] {
  const mtuArgs = mtu === undefined ? '' : ` mtu ${mtu}`;
  const lines: string[] = [];
  if (!existing.has(POD_NETWORK_BRIDGE)) lines.push(`link add ${POD_NETWORK_BRIDGE}${mtuArgs} type bridge`);
  if (!existing.has(POD_NETWORK_TAP)) lines.push(`tuntap add dev ${POD_NETWORK_TAP} mode tap`);
  lines.push(`link set ${POD_NETWORK_TAP}${mtuArgs} master ${POD_NETWORK_BRIDGE} up`);
  lines.push(`link set ${POD_NETWORK_BRIDGE} up`);
  if (!bridgeHasAddress)
    lines.push(
      `addr add ${addresses.gateway}/${addresses.prefix} brd ${addresses.broadcast} dev ${POD_NETWORK_BRIDGE}`,
    );
  return lines;
}

export interface IpLink {
  ifname: string;
  address?: string;
  mtu?: number;
  addr_info?: { family: string; local: string; prefixlen: number }[];
}

export interface PodNetworkOptions {
  log: Logger;
  /** The host's /proc (the handler runs with hostPID). */
  procDir?: string;
  /** Runs a command in a network namespace; nsenter by default. */
  run?: (netns: string, argv: readonly string[], input?: string) => Promise<string>;
}

async function nsenter(netns: string, argv: readonly string[], input?: string): Promise<string> {
  const args = [`--net=${netns}`, '--', ...argv];
  if (input === undefined) {
    try {
      return (await execFileAsync('nsenter', args)).stdout;
    } catch (err) {
      const e = err as { stderr?: string; message: string };
      throw new PodNetworkError(`${argv.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`, {
        cause: err,
      });
    }
  }
  return new Promise((resolve, reject) => {
    const child = spawn('nsenter', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) =>
      reject(new PodNetworkError(`${argv.join(' ')} failed: ${err.message}`, { cause: err })),
    );
    child.on('close', (code) =>
      code === 0
        ? resolve(stdout)
        : reject(new PodNetworkError(`${argv.join(' ')} failed (exit ${code}): ${stderr.trim()}`)),
    );
    child.stdin.end(input);
  });
}

/**
 * A process of the pod whose sockets folder the handler sees at `socketsDir`: the one whose root shows the same
 * launcher socket file (same device and inode) at the launcher's mount path.
 */
export async function findPodProcess(
  socketsDir: string,
  socketName: string,
  procDir = '/proc',
): Promise<number | undefined> {
  const target = await stat(join(socketsDir, socketName)).catch(() => undefined);
  if (target === undefined) return undefined;
  const pids = (await readdir(procDir)).filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid);
  // /var/run is usually a symlink to /run, and an absolute symlink met under /proc/PID/root resolves against the
  // handler's own root, not the process's: look at both spellings.
  const inside = [LAUNCHER_SOCKETS_MOUNT, LAUNCHER_SOCKETS_MOUNT.replace(/^\/var\/run\//, '/run/')].map((d) =>
    join(d, socketName),
  );
  const BATCH = 64;
  for (let i = 0; i < pids.length; i += BATCH) {
    const found = await Promise.all(
      pids.slice(i, i + BATCH).map(async (pid) => {
        for (const path of inside) {
          const s = await stat(join(procDir, pid, 'root', path)).catch(() => undefined);
          if (s !== undefined && s.ino === target.ino && s.dev === target.dev) return Number(pid);
        }
        return undefined;
      }),
    );
    const pid = found.find((p) => p !== undefined);
    if (pid !== undefined) return pid;
  }
  return undefined;
}

export class PodNetworkSetup {
  readonly #o: PodNetworkOptions;
  readonly #run: NonNullable<PodNetworkOptions['run']>;

  constructor(options: PodNetworkOptions) {
    this.#o = options;
    this.#run = options.run ?? nsenter;
  }

  /** Whether the VMI has an interface on the pod network the handler must prepare. */
  static needed(vmi: VMI): boolean {
    return vmi.spec !== undefined && podInterfaceOf(vmi.spec) !== undefined;
  }

  /**
   * Prepares the pod network of `vmi` in the launcher pod whose sockets folder is `socketsDir`; returns the pod's
   * addresses for the VMI status.
   */
  async setUp(
    vmi: VMI,
    socketsDir: string,
    socketName: string,
    privateDir: string,
  ): Promise<PodNetworkStatus> {
    const pod = vmi.spec === undefined ? undefined : podInterfaceOf(vmi.spec);
    if (pod === undefined) return { podIPs: [] };
    if (pod.binding === 'other')
      throw new PodNetworkError(
        `the binding of interface ${pod.iface.name} is not supported; use masquerade, bridge or passtBinding`,
      );
    const procDir = this.#o.procDir ?? '/proc';
    const pid = await findPodProcess(socketsDir, socketName, procDir);
    if (pid === undefined)
      throw new PodNetworkError(
        `no process of the launcher pod is visible from the handler (it needs the host's PID namespace: hostPID)`,
      );
    const netns = join(procDir, String(pid), 'ns', 'net');
    const links = JSON.parse(await this.#run(netns, ['ip', '-j', 'addr', 'show'])) as IpLink[];
    const eth0 = links.find((l) => l.ifname === POD_INTERFACE);
    if (eth0 === undefined) throw new PodNetworkError(`the launcher pod has no ${POD_INTERFACE}`);
    // passt (run by the launcher, unprivileged) serves the guest from the pod's own interface: nothing to change
    // here, only the pod's addresses to read for the status.
    if (pod.binding === 'passtBinding') {
      const podIPs = ipv4Addresses(eth0);
      this.#o.log.info({ pid, podIPs }, 'pod network needs no preparation (passt)');
      return { podIPs };
    }
    if (pod.binding === 'bridge') return this.#setUpBridge(vmi, netns, links, eth0, privateDir, pid);
    const addresses = masqueradeAddresses(pod.network);
    const podIPs = ipv4Addresses(eth0);
    const bridge = links.find((l) => l.ifname === POD_NETWORK_BRIDGE);
    const bridgeHasAddress = (bridge?.addr_info ?? []).some((a) => a.local === addresses.gateway);
    const commands = linkCommands(new Set(links.map((l) => l.ifname)), addresses, eth0.mtu, bridgeHasAddress);
    await this.#run(netns, ['ip', '-batch', '-'], `${commands.join('\n')}\n`);
    await this.#run(netns, ['sysctl', '-qw', 'net.ipv4.ip_forward=1']);
    await this.#run(netns, ['nft', '-f', '-'], masqueradeRuleset(addresses, pod.iface.ports ?? []));
    this.#o.log.info(
      { pid, podIPs, guest: addresses.guest, ports: (pod.iface.ports ?? []).map((p) => p.port) },
      'pod network prepared (masquerade)',
    );
    return { podIPs };
  }

  /**
   * The bridge binding: the guest takes over the pod's address and MAC. The pod interface's addresses are recorded
   * first (the launcher's DHCP server hands them out, and a restarted handler reads them back), then the interface
   * gets another MAC, loses its address and joins the bridge with the tap; the bridge holds a link-local address
   * from which the DHCP server broadcasts.
   */
  async #setUpBridge(
    vmi: VMI,
    netns: string,
    links: IpLink[],
    eth0: IpLink,
    privateDir: string,
    pid: number,
  ): Promise<PodNetworkStatus> {
    const cacheFile = join(privateDir, POD_NETWORK_CACHE_FILE);
    let cache = await readFile(cacheFile, 'utf8')
      .then((t) => JSON.parse(t) as PodNetworkCache)
      .catch(() => undefined);
    if (cache === undefined) {
      const inet = (eth0.addr_info ?? []).find((a) => a.family === 'inet');
      if (inet === undefined || eth0.address === undefined)
        throw new PodNetworkError(
          `the launcher pod's ${POD_INTERFACE} has no IPv4 address to hand to the guest`,
        );
      const routes = JSON.parse(await this.#run(netns, ['ip', '-j', '-4', 'route', 'show', 'default'])) as {
        gateway?: string;
      }[];
      cache = {
        binding: 'bridge',
        podIP: inet.local,
        prefix: inet.prefixlen,
        gateway: routes.find((r) => r.gateway !== undefined)?.gateway,
        mac: eth0.address,
        mtu: eth0.mtu,
      };
      await mkdir(privateDir, { recursive: true });
      await writeFile(`${cacheFile}.tmp`, JSON.stringify(cache));
      await rename(`${cacheFile}.tmp`, cacheFile);
    }
    const commands = bridgeCommands(links, cache, podSideMac(vmi.metadata?.uid ?? ''));
    await this.#run(netns, ['ip', '-batch', '-'], `${commands.join('\n')}\n`);
    this.#o.log.info({ pid, podIP: cache.podIP, gateway: cache.gateway }, 'pod network prepared (bridge)');
    return { podIPs: [cache.podIP], mac: cache.mac };
  }
}

function ipv4Addresses(link: IpLink): string[] {
  return (link.addr_info ?? []).filter((a) => a.family === 'inet').map((a) => a.local);
}

/** The MAC the pod interface takes when the guest takes its own over (locally administered, from the VMI UID). */
export function podSideMac(uid: string): string {
  const digest = createHash('sha256').update(`${uid}/pod-interface`).digest();
  return ['02', ...[...digest.subarray(0, 5)].map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/** The `ip -batch` lines of the bridge binding, given the links as they are (repeating it changes nothing). */
export function bridgeCommands(links: readonly IpLink[], cache: PodNetworkCache, podMac: string): string[] {
  const byName = new Map(links.map((l) => [l.ifname, l]));
  const eth0 = byName.get(POD_INTERFACE);
  const bridge = byName.get(POD_NETWORK_BRIDGE);
  const mtu = cache.mtu === undefined ? '' : ` mtu ${cache.mtu}`;
  const lines: string[] = [];
  if ((eth0?.addr_info ?? []).some((a) => a.family === 'inet' && a.local === cache.podIP))
    lines.push(`addr del ${cache.podIP}/${cache.prefix} dev ${POD_INTERFACE}`);
  if (eth0?.address?.toLowerCase() === cache.mac.toLowerCase()) {
    lines.push(`link set ${POD_INTERFACE} down`, `link set ${POD_INTERFACE} address ${podMac}`);
  }
  if (bridge === undefined) lines.push(`link add ${POD_NETWORK_BRIDGE}${mtu} type bridge`);
  lines.push(`link set ${POD_INTERFACE} master ${POD_NETWORK_BRIDGE} up`);
  if (!byName.has(POD_NETWORK_TAP)) lines.push(`tuntap add dev ${POD_NETWORK_TAP} mode tap`);
  lines.push(
    `link set ${POD_NETWORK_TAP}${mtu} master ${POD_NETWORK_BRIDGE} up`,
    `link set ${POD_NETWORK_BRIDGE} up`,
  );
  if (!(bridge?.addr_info ?? []).some((a) => a.local === BRIDGE_DHCP_SERVER_ADDRESS))
    lines.push(`addr add ${BRIDGE_DHCP_SERVER_ADDRESS}/32 dev ${POD_NETWORK_BRIDGE}`);
  // The DHCP server's broadcasts: with the pod's address gone there is no other route they could take.
  lines.push(`route replace 255.255.255.255/32 dev ${POD_NETWORK_BRIDGE} src ${BRIDGE_DHCP_SERVER_ADDRESS}`);
  return lines;
}

/** What the status needs of the pod network interface: its name, the guest MAC and the pod's addresses. */
export interface PodNetworkObservation {
  name: string;
  mac: string;
  podIPs: string[];
}

export function podNetworkObservation(
  vmi: VMI,
  status: PodNetworkStatus | undefined,
): PodNetworkObservation | undefined {
  const pod = vmi.spec === undefined ? undefined : podInterfaceOf(vmi.spec);
  if (pod === undefined || status === undefined) return undefined;
  if (pod.binding === 'other') return undefined;
  return {
    name: pod.iface.name,
    mac:
      pod.binding === 'bridge' && status.mac !== undefined && pod.iface.macAddress === undefined
        ? status.mac.toLowerCase()
        : interfaceMac(vmi.metadata?.uid ?? '', pod.iface),
    podIPs: status.podIPs,
  };
}
