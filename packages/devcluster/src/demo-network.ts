// What `make demo` shows of the demo VM's network, and the pure parts of checking it: the VM's IP as the VMI's
// status reports it (the IP column of `kubectl get vmi`), the address the guest printed on its console when it got
// its DHCP lease, and a client pod that fetches the guest's web page from that IP. The demo only states what these
// show; demo-network.test.ts covers the parsing and wording.
import type { V1Pod } from '@kubernetes/client-node';
import type { VmiView } from './stack/vms.ts';

/** The port the test guest's web server answers on (packages/devcluster/src/guest/README.md). */
export const GUEST_HTTP_PORT = 80;
/** The image of the client pod: `node:24` has curl, and devcluster runs it with the machine's tools. */
export const CLIENT_IMAGE = 'node:24';
/** The client pod retries this often, 2 s apart: the guest may still be starting its web server. */
const CLIENT_ATTEMPTS = 30;

/**
 * The VM's IP as `kubectl get vmi` shows it: KubeVirt's IP column is `.status.interfaces[0].ipAddress`. Undefined
 * while virt-handler has not reported it.
 */
export function vmiIP(vmi: VmiView | undefined): string | undefined {
  const ip = vmi?.status?.interfaces?.[0]?.ipAddress;
  return ip ? ip : undefined;
}

/** What the test guest printed about its NIC: `kubevirt-ts-guest: eth0 10.0.2.2/24 via 10.0.2.1`, or why not. */
export type GuestNetwork =
  | { kind: 'lease'; address: string; prefix: number; gateway: string | undefined; line: string }
  | { kind: 'no-lease' | 'no-nic'; line: string };

const LEASE = /kubevirt-ts-guest: eth0 (\d{1,3}(?:\.\d{1,3}){3})\/(\d{1,2}) via ?(\S*)/;
const NO_LEASE = /kubevirt-ts-guest: eth0 got no DHCP lease.*/;
const NO_NIC = /kubevirt-ts-guest: no network interface/;

/** The guest's own view of its network, from console lines (the last report wins: a reboot prints it again). */
export function guestNetwork(lines: string[]): GuestNetwork | undefined {
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i] ?? '';
    const lease = LEASE.exec(line);
    if (lease) {
      return {
        kind: 'lease',
        address: lease[1] ?? '',
        prefix: Number(lease[2]),
        gateway: lease[3] ? lease[3] : undefined,
        line: lease[0],
      };
    }
    const noLease = NO_LEASE.exec(line);
    if (noLease) return { kind: 'no-lease', line: noLease[0] };
    const noNic = NO_NIC.exec(line);
    if (noNic) return { kind: 'no-nic', line: noNic[0] };
  }
  return undefined;
}

/** One line on the guest's view for the demo's output. */
export function describeGuestNetwork(network: GuestNetwork | undefined): string {
  if (!network) return 'the console showed no line about the guest network (eth0)';
  switch (network.kind) {
    case 'lease':
      return `eth0 ${network.address}/${network.prefix}${network.gateway ? ` via ${network.gateway}` : ' (no default route)'}: the address the guest took by DHCP`;
    case 'no-lease':
      return `the guest got no DHCP lease: ${network.line}`;
    case 'no-nic':
      return 'the guest has no network interface';
  }
}

/** `http://IP:PORT/`, with brackets around an IPv6 address. */
export function httpUrl(ip: string, port: number): string {
  return `http://${ip.includes(':') ? `[${ip}]` : ip}:${port}/`;
}

/**
 * A pod that fetches `url` with curl, retrying while the guest's server is not up yet, and prints `reply: BODY`
 * or `no reply: ERROR`; it exits 0 only on a reply.
 */
export function clientPod(
  name: string,
  url: string,
  labels: Record<string, string> = {},
  attempts = CLIENT_ATTEMPTS,
): V1Pod {
  const script = [
    'out=',
    `for i in $(seq 1 ${attempts}); do`,
    `  if out=$(curl -fsS -m 3 ${url} 2>&1); then echo "reply: $out"; exit 0; fi`,
    `  [ "$i" -lt ${attempts} ] && sleep 2`,
    'done',
    'echo "no reply: $out"',
    'exit 1',
  ].join('\n');
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, labels },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'curl', image: CLIENT_IMAGE, command: ['sh', '-c', script] }],
    },
  };
}

/** What the client pod's log says: the body it fetched, or the last error. */
export function clientResult(
  log: string,
): { reached: true; body: string } | { reached: false; detail: string } {
  const lines = log.split('\n').map((l) => l.trimEnd());
  const reply = lines.findIndex((l) => l.startsWith('reply: '));
  if (reply >= 0) {
    const body = [lines[reply]?.slice('reply: '.length) ?? '', ...lines.slice(reply + 1)].join('\n').trim();
    return { reached: true, body };
  }
  const failed = lines.find((l) => l.startsWith('no reply: '));
  return {
    reached: false,
    detail: failed ? failed.slice('no reply: '.length) : log.trim() || 'the client pod printed nothing',
  };
}

/** The commands a user types to fetch the guest's page from a pod of their own (no attach needed). */
export function reachCommands(ip: string, podName = 'curl-demo'): string[] {
  return [
    `kubectl run ${podName} --image=${CLIENT_IMAGE} --restart=Never --command -- curl -sS -m 10 ${httpUrl(ip, GUEST_HTTP_PORT)}`,
    `kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod/${podName} --timeout=60s && kubectl logs ${podName}`,
    `kubectl delete pod ${podName}`,
  ];
}
