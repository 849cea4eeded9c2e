// The passtBinding interface binding, end to end: the launcher runs passt (user-mode networking) and QEMU's NIC
// talks to it; the handler changes nothing in the launcher pod. The guest takes the pod's own address from passt's
// DHCP, another pod reaches the guest's web server on the pod IP through the one port the VMI lists but not through
// another, the launcher pod carries no capability beyond what every launcher has, and the webhook refuses passt
// where KubeVirt does (off the pod network; PasstBinding feature gate disabled), naming the field.
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { TEST_GUEST_IMAGE } from '@kubevirt-ts/devcluster/stack';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
  ensureStack,
  kubectlOk,
  launcherPods,
  waitRunning,
  type Stack,
} from './support/stack.ts';
import {
  reportedInterface,
  patchKubeVirtConfiguration,
  podNetworkVm,
  runClientPod,
  serverDryRun,
} from './support/network.ts';

const ns = useTestNamespace('e2e-passt');
const VM = 'passt-vm';
/** The capabilities every launcher container gets, whatever its binding (controller: KubeVirt's root mode). */
const LAUNCHER_CAPABILITIES = ['NET_BIND_SERVICE', 'SYS_NICE'];
let stack: Stack;

beforeAll(async () => {
  stack = await ensureStack();
}, E2E_HOOK_TIMEOUT_MS);

/** The guest's user-data: serve the address the guest's eth0 got, so a client sees what passt gave it. */
const USER_DATA = [
  '#!/bin/sh',
  "ip -4 -o addr show dev eth0 | awk '{print $4}' > /run/www/addr.txt",
  'echo "guest address: $(cat /run/www/addr.txt)"',
  '',
].join('\n');

describe('passt binding on the pod network', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  let vmPodIP = '';

  it('a VM with a passtBinding interface runs in a launcher pod with no added capability, and its status shows the pod IP', async () => {
    await kubectlOk(
      stack,
      ['apply', '-n', ns.name, '-f', '-'],
      stringify(podNetworkVm(VM, { passtBinding: {}, ports: [{ name: 'http', port: 80 }] }, USER_DATA)),
    );
    const vmi = await waitRunning(stack, ns.name, VM);
    const [pod] = await launcherPods(stack, ns.name, vmi.metadata?.uid ?? '');
    vmPodIP = pod?.status?.podIP ?? '';
    expect(vmPodIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // No privilege, no host network, and no capability beyond the two every launcher has (no NET_ADMIN, NET_RAW).
    expect(pod?.spec?.hostNetwork ?? false).toBe(false);
    for (const container of [...(pod?.spec?.initContainers ?? []), ...(pod?.spec?.containers ?? [])]) {
      const sc = container.securityContext;
      expect(sc?.privileged ?? false, container.name).toBe(false);
      for (const cap of sc?.capabilities?.add ?? [])
        expect(LAUNCHER_CAPABILITIES, container.name).toContain(cap);
    }
    const iface = await reportedInterface(stack, ns.name, VM);
    expect(iface).toMatchObject({
      name: 'default',
      ipAddress: vmPodIP,
      ipAddresses: [vmPodIP],
      podInterfaceName: 'eth0',
    });
    expect(iface.mac).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
  });

  it('the guest has the pod IP, and another pod reaches it on the listed port 80 but not on 8080', async () => {
    // The guest boots under software emulation, takes passt's lease, starts httpd and writes its address: wait for
    // it on port 80 (forwarded by passt), then try port 8080 once (the guest listens there too; passt does not).
    const script = [
      'ok=',
      'for i in $(seq 1 150); do',
      `  if out=$(curl -fsS -m 3 http://${vmPodIP}:80/addr.txt 2>&1); then ok=1; break; fi`,
      '  sleep 2',
      'done',
      '[ -n "$ok" ] && echo "port 80: $out" || echo "port 80: unreachable: $out"',
      `if out=$(curl -fsS -m 5 http://${vmPodIP}:8080/ 2>&1); then echo "port 8080: open: $out"; else echo "port 8080: closed: $out"; fi`,
    ].join('\n');
    const log = await runClientPod(stack, ns.name, 'passt-client', script, 480_000);
    expect(log).toMatch(new RegExp(`port 80: ${vmPodIP.replaceAll('.', '\\.')}/\\d+`));
    expect(log).toContain('port 8080: closed');
    expect(log).not.toContain('port 8080: open');
  });
});

describe('passt binding validation', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  function vmi(name: string, network: Record<string, unknown>): string {
    return stringify({
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name },
      spec: {
        domain: {
          resources: { requests: { memory: '128Mi' } },
          devices: {
            disks: [{ name: 'rootdisk', disk: { bus: 'virtio' } }],
            interfaces: [{ name: 'default', passtBinding: {} }],
          },
        },
        networks: [{ name: 'default', ...network }],
        volumes: [{ name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } }],
      },
    });
  }
  const dryRun = (manifest: string) => serverDryRun(stack, ns.name, manifest);

  it('refuses passt off the pod network, naming the field', async () => {
    const r = await dryRun(vmi('passt-no-pod', {}));
    expect(r.code, 'accepted').not.toBe(0);
    expect(r.stderr).toMatch(/VirtualMachineInstance "passt-no-pod" is invalid/);
    expect(r.stderr).toMatch(
      /spec\.domain\.devices\.interfaces\[0\]\.passtBinding.*works only on the pod network/,
    );
  });

  it('refuses passt while the cluster disables the PasstBinding feature gate, and accepts it again after', async () => {
    const setDisabled = (value: string[] | null) =>
      patchKubeVirtConfiguration(stack, { developerConfiguration: { disabledFeatureGates: value } });
    const manifest = vmi('passt-gated', { pod: {} });
    expect((await dryRun(manifest)).code).toBe(0);
    await setDisabled(['PasstBinding']);
    try {
      const refused = await eventually(
        async () => {
          const r = await dryRun(manifest);
          return r.code !== 0 ? r : undefined;
        },
        { timeoutMs: 60_000, description: 'virt-api to see the PasstBinding gate disabled' },
      );
      expect(refused.stderr).toMatch(/VirtualMachineInstance "passt-gated" is invalid/);
      expect(refused.stderr).toMatch(
        /spec\.domain\.devices\.interfaces\[0\]\.passtBinding.*PasstBinding feature gate is disabled/,
      );
    } finally {
      await setDisabled(null);
      await eventually(async () => (await dryRun(manifest)).code === 0, {
        timeoutMs: 60_000,
        description: 'virt-api to accept the passt binding again',
      });
    }
  });
});
