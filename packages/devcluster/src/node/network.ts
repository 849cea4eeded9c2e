// The node and pod networks, made with iproute2 inside namespaces devcluster owns (all named `kvts-dc-…`, so a
// reclaim finds them):
//
//   cluster namespace kvts-dc: bridge kvts0 172.30.0.1/16 ── veth kvnN ─┐        routes 10.244.X.0/24 via 172.30.1.N
//   node namespace kvts-dc-nN: eth0 172.30.1.N/16 (default via 172.30.0.1), bridge cbr0 = the first address of
//                              the node's pod range ── veth kvp<uid> ─┐
//   pod namespace kvts-dc-nN-<uid>: eth0 = a pod address (default via cbr0)
//
// Both the cluster and node namespaces forward, so pods reach the API server, each other across nodes, and the
// test runner (inside kvts-dc) reaches pods; nothing routes to the host, which has no link into these namespaces.
// Service addresses (10.96.0.0/16) are translated by each node's kube-proxy in the node namespace, which every
// packet of its pods crosses; the cluster namespace routes them through the first node.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { NETWORK } from '../layout.ts';
import { POD_BRIDGE, type NodeIdentity } from './layout.ts';

const execFileAsync = promisify(execFile);

async function ip(args: readonly string[]): Promise<string> {
  try {
    return (await execFileAsync('ip', args)).stdout;
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`ip ${args.join(' ')} failed: ${(e.stderr ?? e.message).trim()}`, { cause: err });
  }
}

/** Runs several `ip` commands in one process (`ip -batch`), optionally inside a namespace. */
async function ipBatch(lines: readonly string[], netns?: string): Promise<void> {
  const args = [...(netns ? ['-n', netns] : []), '-batch', '-'];
  await new Promise<void>((resolve, reject) => {
    const child = execFile('ip', args, (err, _stdout, stderr) =>
      err
        ? reject(new Error(`ip ${args.join(' ')} failed: ${stderr.trim() || err.message}`, { cause: err }))
        : resolve(),
    );
    child.stdin?.end(`${lines.join('\n')}\n`);
  });
}

/** Deletes a link if it exists (a namespace still held by a dying process keeps its end of a veth pair alive). */
async function deleteLink(netns: string, link: string): Promise<void> {
  await execFileAsync('ip', ['-n', netns, 'link', 'delete', link]).catch(() => undefined);
}

export async function netnsExists(name: string): Promise<boolean> {
  const list = await ip(['netns', 'list']);
  return list.split('\n').some((line) => line.trim().split(/\s+/)[0] === name);
}

async function enableForwarding(netns: string): Promise<void> {
  await execFileAsync('ip', ['netns', 'exec', netns, 'sysctl', '-qw', 'net.ipv4.ip_forward=1']).catch(
    (err: unknown) => {
      throw new Error(`cannot enable forwarding in namespace ${netns}: ${(err as Error).message}`, {
        cause: err,
      });
    },
  );
}

/**
 * A node's namespace joined to the cluster bridge by a veth pair, with its address and default route. Called by
 * `up` once the cluster namespace exists, before the node agent starts inside it.
 */
export async function createNodeNetwork(node: NodeIdentity): Promise<void> {
  const cluster = NETWORK.namespace;
  if (await netnsExists(node.netns)) await ip(['netns', 'delete', node.netns]);
  await deleteLink(cluster, node.clusterVeth);
  await ip(['netns', 'add', node.netns]);
  await ip([
    'link',
    'add',
    node.clusterVeth,
    'netns',
    cluster,
    'type',
    'veth',
    'peer',
    'name',
    'eth0',
    'netns',
    node.netns,
  ]);
  await ipBatch(
    [`link set ${node.clusterVeth} master ${NETWORK.bridge}`, `link set ${node.clusterVeth} up`],
    cluster,
  );
  await ipBatch(
    [
      'link set lo up',
      `addr add ${node.address}/${NETWORK.prefixLength} dev eth0`,
      'link set eth0 up',
      `route add default via ${NETWORK.controlPlaneAddress}`,
    ],
    node.netns,
  );
  await enableForwarding(cluster);
  await enableForwarding(node.netns);
}

/** The cluster namespace's route to the service range through `node`, whose kube-proxy translates ClusterIPs. */
export async function routeServicesThrough(node: NodeIdentity): Promise<void> {
  await ip(['-n', NETWORK.namespace, 'route', 'replace', NETWORK.serviceCidr, 'via', node.address]);
}

export interface PodRange {
  /** e.g. 10.244.1.0/24 */
  cidr: string;
  /** The bridge's address, the pods' gateway: the range's first address. */
  gateway: string;
  prefixLength: number;
  /** Usable pod addresses, in allocation order. */
  addresses: string[];
}

function ipv4ToInt(addr: string): number {
  return addr.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function intToIpv4(n: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(n / 2 ** shift) % 256).join('.');
}

/** The gateway and pod addresses of a node's IPv4 pod range. */
export function podRange(cidr: string): PodRange {
  const [base, bits] = cidr.split('/');
  const prefixLength = Number(bits);
  if (!base || !Number.isInteger(prefixLength) || prefixLength < 16 || prefixLength > 30) {
    throw new Error(`pod range ${cidr} is not an IPv4 range between /16 and /30`);
  }
  const size = 2 ** (32 - prefixLength);
  const network = ipv4ToInt(base) - (ipv4ToInt(base) % size);
  const addresses: string[] = [];
  for (let i = 2; i < size - 1; i++) addresses.push(intToIpv4(network + i));
  return { cidr, gateway: intToIpv4(network + 1), prefixLength, addresses };
}

/**
 * The node's pod bridge with the range's gateway address, and the cluster namespace's route to the range through
 * the node. Run by the agent (inside the node namespace) once the controller-manager gave the node its range.
 */
export async function ensurePodBridge(node: NodeIdentity, range: PodRange): Promise<void> {
  const links = await ip(['-n', node.netns, '-o', 'link', 'show']);
  if (!links.includes(` ${POD_BRIDGE}:`)) {
    await ipBatch([`link add ${POD_BRIDGE} type bridge`, `link set ${POD_BRIDGE} up`], node.netns);
  }
  const addrs = await ip(['-n', node.netns, '-o', '-4', 'addr', 'show', 'dev', POD_BRIDGE]);
  if (!addrs.includes(` ${range.gateway}/`)) {
    await ip(['-n', node.netns, 'addr', 'flush', 'dev', POD_BRIDGE]);
    await ip(['-n', node.netns, 'addr', 'add', `${range.gateway}/${range.prefixLength}`, 'dev', POD_BRIDGE]);
  }
  await ip(['-n', NETWORK.namespace, 'route', 'replace', range.cidr, 'via', node.address]);
}

/**
 * The MAC of a pod's eth0, derived from its IPv4 address as OVN-Kubernetes does (0a:58 + the four address bytes).
 * Pod addresses are reused as pods come and go; a random MAC per pod would leave the old pod's MAC in the neighbour
 * tables of long-lived pods on the same node (virt-api dialing a VM's pod IP for port-forward), and their next
 * connection to the address would time out until the stale entry is probed away.
 */
export function podMac(address: string): string {
  const bytes = address.split('.').map(Number);
  if (bytes.length !== 4 || bytes.some((b) => !Number.isInteger(b) || b < 0 || b > 255))
    throw new Error(`not an IPv4 address: ${address}`);
  return ['0a', '58', ...bytes.map((b) => b.toString(16).padStart(2, '0'))].join(':');
}

/**
 * A pod's network namespace with one veth to the node's pod bridge, its address (and the MAC podMac derives from
 * it) and a default route. Replaces a namespace of the same name left from an earlier attempt.
 */
export async function createPodNetwork(
  node: NodeIdentity,
  pod: { netns: string; veth: string; address: string },
  range: PodRange,
): Promise<void> {
  if (await netnsExists(pod.netns)) await ip(['netns', 'delete', pod.netns]);
  await deleteLink(node.netns, pod.veth);
  await ip(['netns', 'add', pod.netns]);
  try {
    await ip([
      '-n',
      node.netns,
      'link',
      'add',
      pod.veth,
      'type',
      'veth',
      'peer',
      'name',
      'eth0',
      'address',
      podMac(pod.address),
      'netns',
      pod.netns,
    ]);
    await ipBatch([`link set ${pod.veth} master ${POD_BRIDGE}`, `link set ${pod.veth} up`], node.netns);
    await ipBatch(
      [
        'link set lo up',
        `addr add ${pod.address}/${range.prefixLength} dev eth0`,
        'link set eth0 up',
        `route add default via ${range.gateway}`,
      ],
      pod.netns,
    );
  } catch (err) {
    await deletePodNetwork(pod.netns).catch(() => undefined);
    throw err;
  }
}

/** Deletes a pod's namespace (its veth pair goes with it). */
export async function deletePodNetwork(netns: string): Promise<void> {
  if (await netnsExists(netns)) await ip(['netns', 'delete', netns]);
}

/** The pod's /etc/hosts, as the kubelet writes it. */
export async function writeHostsFile(
  path: string,
  address: string,
  hostname: string,
  domain?: string,
): Promise<void> {
  const fqdn = domain ? `${hostname}.${domain}\t` : '';
  await writeFile(
    path,
    [
      '# Kubernetes-managed hosts file (devcluster).',
      '127.0.0.1\tlocalhost',
      '::1\tlocalhost ip6-localhost ip6-loopback',
      'fe00::0\tip6-localnet',
      'fe00::0\tip6-mcastprefix',
      'fe00::1\tip6-allnodes',
      'fe00::2\tip6-allrouters',
      `${address}\t${fqdn}${hostname}`,
      '',
    ].join('\n'),
  );
}
