// VMs on the pod network, end to end. Masquerade: the handler prepares the bridge, tap and NAT
// rules in the launcher pod, the launcher's DHCP server gives the guest 10.0.2.2, and then another pod reaches the
// guest's web server on the pod IP through the one port the VMI forwards, but not through a port it does not; the
// guest reaches a server in another pod (it fetches a token and serves it back); status.interfaces shows the pod IP
// and `kubectl get vmi` its IP column; `virtctl expose vm` puts a Service in front of it that a pod reaches by its DNS
// name (kube-proxy and CoreDNS in devcluster). Bridge: the guest takes over the pod's address and MAC (DHCP from the
// launcher), every port reaches it. Bad network specs are refused by the webhook naming the field.
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { TEST_GUEST_IMAGE } from '@kubevirt-ts/devcluster/stack';
import { randomBytes } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
  ensureStack,
  kubectl,
  kubectlOk,
  launcherPods,
  virtctlOk,
  waitRunning,
  type Stack,
} from './support/stack.ts';
import {
  firstInterface,
  reportedInterface,
  patchKubeVirtConfiguration,
  podNetworkVm,
  runClientPod,
  runningPodIP,
  serverDryRun,
  shellPod,
} from './support/network.ts';

const ns = useTestNamespace('e2e-network');
const VM = 'masq-vm';
const TOKEN = `pod-server-token-${randomBytes(4).toString('hex')}`;
let stack: Stack;
let serverIP = '';

beforeAll(async () => {
  stack = await ensureStack();
  await stack.core.createNamespacedPod({
    namespace: ns.name,
    body: shellPod(
      'pod-server',
      `mkdir -p /tmp/www && echo ${TOKEN} > /tmp/www/index.html && exec busybox httpd -f -p 8000 -h /tmp/www`,
    ),
  });
  serverIP = await runningPodIP(stack, ns.name, 'pod-server');
}, E2E_HOOK_TIMEOUT_MS);

/**
 * The guest's user-data: fetch the token from the server pod and serve it back as fetched.txt. busybox nc, not
 * wget: the static busybox's wget crashes in glibc's name-service code without NSS modules.
 */
function fetchTokenScript(): string {
  return [
    '#!/bin/sh',
    'for i in $(seq 1 90); do',
    `  if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc ${serverIP} 8000 > /tmp/reply && grep -q ${TOKEN} /tmp/reply; then`,
    `    echo ${TOKEN} > /run/www/fetched.txt; echo "guest fetched from pod: ${TOKEN}"; exit 0`,
    '  fi',
    '  sleep 2',
    'done',
    'echo "guest could not reach the pod server"',
    '',
  ].join('\n');
}

/** A client pod's script: wait until the guest serves the token on port 80, then try port 8080 once. */
function probeScript(ip: string): string {
  return [
    'ok=',
    'for i in $(seq 1 120); do',
    `  if out=$(curl -fsS -m 3 http://${ip}:80/fetched.txt 2>&1); then ok=1; break; fi`,
    '  sleep 2',
    'done',
    '[ -n "$ok" ] && echo "port 80: $out" || echo "port 80: unreachable: $out"',
    `if out=$(curl -fsS -m 5 http://${ip}:8080/ 2>&1); then echo "port 8080: open: $out"; else echo "port 8080: closed: $out"; fi`,
  ].join('\n');
}

describe('masquerade binding on the pod network', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  let vmPodIP = '';

  it('a VM with a masquerade interface runs, and its status shows the pod IP', async () => {
    await kubectlOk(
      stack,
      ['apply', '-n', ns.name, '-f', '-'],
      stringify(
        podNetworkVm(VM, { masquerade: {}, ports: [{ name: 'http', port: 80 }] }, fetchTokenScript()),
      ),
    );
    const vmi = await waitRunning(stack, ns.name, VM);
    const [pod] = await launcherPods(stack, ns.name, vmi.metadata?.uid ?? '');
    vmPodIP = pod?.status?.podIP ?? '';
    expect(vmPodIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const iface = await reportedInterface(stack, ns.name, VM);
    expect(iface).toMatchObject({
      name: 'default',
      ipAddress: vmPodIP,
      ipAddresses: [vmPodIP],
      podInterfaceName: 'eth0',
    });
    expect(iface.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    const row = await kubectlOk(stack, ['get', 'vmi', VM, '-n', ns.name]);
    expect(row).toMatch(new RegExp(`^${VM}\\s+\\S+\\s+Running\\s+${vmPodIP.replaceAll('.', '\\.')}\\s`, 'm'));
  });

  it('another pod reaches the guest on the forwarded port but not on another, and the guest reached a pod', async () => {
    // The guest boots under software emulation, takes its lease, starts httpd and fetches the token: wait for the
    // token to be served back through the forwarded port, then try the port that is not forwarded once.
    const script = probeScript(vmPodIP);
    const log = await runClientPod(stack, ns.name, 'client', script, 420_000);
    expect(log).toContain(`port 80: ${TOKEN}`);
    expect(log).toContain('port 8080: closed');
    expect(log).not.toContain('port 8080: open');
    // The guest agent reports the guest's own view of the NIC; the status keeps the pod IP (what others reach) and
    // adds the guest's interface name.
    const iface = await eventually(
      async () => {
        const first = await firstInterface(stack, ns.name, VM);
        return first?.infoSource === 'domain, guest-agent' ? first : undefined;
      },
      { timeoutMs: 180_000, intervalMs: 2_000, description: 'the guest agent to report the interface' },
    );
    expect(iface).toMatchObject({ name: 'default', interfaceName: 'eth0', ipAddress: vmPodIP });
  });

  it('virtctl expose vm: a pod reaches the guest’s port 80 through the Service’s port 8000 by its DNS name', async () => {
    const SERVICE = 'masq-http';
    expect(
      await virtctlOk(stack, [
        'expose',
        'vm',
        VM,
        '--port',
        '8000',
        '--target-port',
        '80',
        '--name',
        SERVICE,
        '-n',
        ns.name,
      ]),
    ).toBe(`Service ${SERVICE} successfully created for vm ${VM}\n`);
    const service = await stack.core.readNamespacedService({ name: SERVICE, namespace: ns.name });
    expect(service.spec?.selector).toEqual({ 'vmi.kubevirt.io/id': VM });
    expect(service.metadata?.ownerReferences).toMatchObject([{ kind: 'VirtualMachine', name: VM }]);
    // The guest already serves the token (previous test); wait only for the EndpointSlice to reach kube-proxy. The
    // full name first, then the short one through the pod's search domains.
    const fqdn = `${SERVICE}.${ns.name}.svc.cluster.local`;
    const log = await runClientPod(
      stack,
      ns.name,
      'service-client',
      [
        'for i in $(seq 1 60); do',
        `  if out=$(curl -fsS -m 3 http://${fqdn}:8000/fetched.txt 2>&1); then break; fi`,
        '  sleep 2',
        'done',
        'echo "fqdn: $out"',
        `echo "short: $(curl -fsS -m 5 http://${SERVICE}:8000/fetched.txt 2>&1)"`,
      ].join('\n'),
      240_000,
    );
    expect(log).toContain(`fqdn: ${TOKEN}`);
    expect(log).toContain(`short: ${TOKEN}`);
  });
});

describe('bridge binding on the pod network', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  const BRIDGE_VM = 'bridge-vm';
  let vmPodIP = '';

  it('a VM with a bridge interface runs with the pod IP and the pod MAC', async () => {
    await kubectlOk(
      stack,
      ['apply', '-n', ns.name, '-f', '-'],
      stringify(podNetworkVm(BRIDGE_VM, { bridge: {} }, fetchTokenScript())),
    );
    const vmi = await waitRunning(stack, ns.name, BRIDGE_VM);
    const [pod] = await launcherPods(stack, ns.name, vmi.metadata?.uid ?? '');
    vmPodIP = pod?.status?.podIP ?? '';
    expect(vmPodIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    const iface = await reportedInterface(stack, ns.name, BRIDGE_VM);
    expect(iface).toMatchObject({ name: 'default', ipAddress: vmPodIP, podInterfaceName: 'eth0' });
    // The guest took over the pod interface's MAC (the pod side got a locally administered one).
    expect(iface.mac).toMatch(/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/);
  });

  it('another pod reaches the guest on the pod IP on every port, and the guest reached a pod', async () => {
    const log = await runClientPod(stack, ns.name, 'bridge-client', probeScript(vmPodIP), 420_000);
    expect(log).toContain(`port 80: ${TOKEN}`);
    // No NAT and no port list: the guest's own 8080 answers too.
    expect(log).toMatch(/port 8080: open: kubevirt-ts-guest/);
  });
});

describe('network spec validation', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  function vmi(name: string, interfaces: unknown[], networks: unknown[]): string {
    return stringify({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name },
      spec: {
        domain: {
          resources: { requests: { memory: '128Mi' } },
          devices: { disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }], interfaces },
        },
        networks,
        volumes: [{ name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } }],
      },
    });
  }

  it('refuses a port out of range, two pod interfaces and an unknown network, naming the field', async () => {
    const cases: [string, string, RegExp][] = [
      [
        'bad-port',
        vmi(
          'bad-port',
          [{ name: 'default', masquerade: {}, ports: [{ port: 70000 }] }],
          [{ name: 'default', pod: {} }],
        ),
        /spec\.domain\.devices\.interfaces\[0\]\.ports\[0\]\.port.*1 to 65535/,
      ],
      [
        'two-pod',
        vmi(
          'two-pod',
          [
            { name: 'a', masquerade: {} },
            { name: 'b', masquerade: {} },
          ],
          [
            { name: 'a', pod: {} },
            { name: 'b', pod: {} },
          ],
        ),
        /spec\.domain\.devices\.interfaces\[1\]\.name.*more than one interface is connected to a pod network/,
      ],
      [
        'no-network',
        vmi('no-network', [{ name: 'default', masquerade: {} }], [{ name: 'other', pod: {} }]),
        /spec\.domain\.devices\.interfaces\[0\]\.name.*no network named "default"/,
      ],
    ];
    for (const [name, manifest, message] of cases) {
      const r = await kubectl(stack, ['apply', '-n', ns.name, '-f', '-'], manifest);
      expect(r.code, `${name} was accepted`).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`VirtualMachineInstance "${name}" is invalid`));
      expect(r.stderr).toMatch(message);
    }
  });
  it('refuses the bridge binding where the cluster forbids it, and a VM that would get it by default, naming field and setting', async () => {
    const setPermit = (value: boolean | null) =>
      patchKubeVirtConfiguration(stack, { network: { permitBridgeInterfaceOnPodNetwork: value } });
    const bridgeVmi = vmi(
      'bridge-forbidden',
      [{ name: 'default', bridge: {} }],
      [{ name: 'default', pod: {} }],
    );
    const dryRun = (manifest: string) => serverDryRun(stack, ns.name, manifest);
    await setPermit(false);
    try {
      const refused = await eventually(
        async () => {
          const r = await dryRun(bridgeVmi);
          return r.code !== 0 ? r : undefined;
        },
        { timeoutMs: 60_000, description: 'virt-api to see permitBridgeInterfaceOnPodNetwork: false' },
      );
      expect(refused.stderr).toMatch(/VirtualMachineInstance "bridge-forbidden" is invalid/);
      expect(refused.stderr).toMatch(
        /spec\.domain\.devices\.interfaces\[0\]\.bridge.*not permitted by the cluster \(network\.permitBridgeInterfaceOnPodNetwork/,
      );
      // A VM that declares no interface would get the cluster's default binding, bridge: refused too, saying so.
      const noInterfaces = stringify({
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachine',
        metadata: { name: 'default-bridge' },
        spec: {
          runStrategy: 'Halted',
          template: {
            spec: {
              domain: {
                resources: { requests: { memory: '128Mi' } },
                devices: { disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }] },
              },
              volumes: [{ name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } }],
            },
          },
        },
      });
      const vm = await dryRun(noInterfaces);
      expect(vm.code, 'a VM without interfaces was accepted').not.toBe(0);
      expect(vm.stderr).toMatch(
        /spec\.template\.spec\.domain\.devices\.interfaces\[0\]\.bridge.*network\.defaultNetworkInterface/,
      );
      // Masquerade stays allowed.
      const masq = await dryRun(
        vmi('masq-allowed', [{ name: 'default', masquerade: {} }], [{ name: 'default', pod: {} }]),
      );
      expect(masq.code, masq.stderr).toBe(0);
    } finally {
      await setPermit(null);
      // Later tests get the chart's configuration back before they run.
      await eventually(async () => (await dryRun(bridgeVmi)).code === 0, {
        timeoutMs: 60_000,
        description: 'virt-api to permit the bridge binding again',
      });
    }
  });
});
