// The passtBinding interface binding, end to end: the launcher runs passt (user-mode networking) and QEMU's NIC
// talks to it; the handler changes nothing in the launcher pod. The guest takes the pod's own address from passt's
// DHCP, another pod reaches the guest's web server on the pod IP through the one port the VMI lists but not through
// another, the launcher pod carries no capability beyond what every launcher has, and the webhook refuses passt
// where KubeVirt does (off the pod network; PasstBinding feature gate disabled), naming the field.
import type { V1Pod } from '@kubernetes/client-node';
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { TEST_GUEST_IMAGE } from '@kubevirt-ts/devcluster/stack';
import { beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
  ensureStack,
  kubectl,
  kubectlOk,
  launcherPods,
  SERVICES_NAMESPACE,
  waitRunning,
  type Stack,
} from './support/stack.ts';

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

function passtVm(name: string): Record<string, unknown> {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name },
    spec: {
      runStrategy: 'Always',
      template: {
        spec: {
          domain: {
            resources: { requests: { memory: '256Mi' } },
            devices: {
              disks: [
                { name: 'rootdisk', disk: { bus: 'virtio' } },
                { name: 'cloudinitdisk', cdrom: { bus: 'sata' } },
              ],
              interfaces: [{ name: 'default', passtBinding: {}, ports: [{ name: 'http', port: 80 }] }],
            },
          },
          networks: [{ name: 'default', pod: {} }],
          terminationGracePeriodSeconds: 10,
          volumes: [
            { name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { userData: USER_DATA } },
          ],
        },
      },
    },
  };
}

/** A pod that runs `script` with the machine's tools (devcluster runs `node:24` pods on the host's files). */
function shellPod(name: string, script: string): V1Pod {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name },
    spec: {
      restartPolicy: 'Never',
      terminationGracePeriodSeconds: 1,
      containers: [{ name: 'main', image: 'node:24', command: ['sh', '-c', script] }],
    },
  };
}

/** Runs a client pod to completion and returns its log. */
async function runClient(name: string, script: string, timeoutMs: number): Promise<string> {
  await stack.core.createNamespacedPod({ namespace: ns.name, body: shellPod(name, script) });
  await eventually(
    async () => {
      const pod = await stack.core.readNamespacedPod({ name, namespace: ns.name });
      return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' ? true : undefined;
    },
    { timeoutMs, intervalMs: 2_000, description: `client pod ${name} to finish` },
  );
  return stack.core.readNamespacedPodLog({ name, namespace: ns.name });
}

interface StatusInterface {
  name?: string;
  mac?: string;
  ipAddress?: string;
  ipAddresses?: string[];
  podInterfaceName?: string;
}

async function firstInterface(name: string): Promise<StatusInterface | undefined> {
  const vmi = (await stack.custom.getNamespacedCustomObject({
    group: 'kubevirt.io',
    version: 'v1',
    namespace: ns.name,
    plural: 'virtualmachineinstances',
    name,
  })) as { status?: { interfaces?: StatusInterface[] } };
  return vmi.status?.interfaces?.[0];
}

describe('passt binding on the pod network', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  let vmPodIP = '';

  it('a VM with a passtBinding interface runs in a launcher pod with no added capability, and its status shows the pod IP', async () => {
    await kubectlOk(stack, ['apply', '-n', ns.name, '-f', '-'], stringify(passtVm(VM)));
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
    const iface = await eventually(
      async () => {
        const first = await firstInterface(VM);
        return first?.ipAddress ? first : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 1_000, description: 'status.interfaces[0].ipAddress' },
    );
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
    const log = await runClient('passt-client', script, 480_000);
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
  const dryRun = (manifest: string) =>
    kubectl(stack, ['apply', '--dry-run=server', '-n', ns.name, '-f', '-'], manifest);

  it('refuses passt off the pod network, naming the field', async () => {
    const r = await dryRun(vmi('passt-no-pod', {}));
    expect(r.code, 'accepted').not.toBe(0);
    expect(r.stderr).toMatch(/VirtualMachineInstance "passt-no-pod" is invalid/);
    expect(r.stderr).toMatch(
      /spec\.domain\.devices\.interfaces\[0\]\.passtBinding.*works only on the pod network/,
    );
  });

  it('refuses passt while the cluster disables the PasstBinding feature gate, and accepts it again after', async () => {
    const cr = ['kubevirt', 'kubevirt', '-n', SERVICES_NAMESPACE];
    const setDisabled = (value: string[] | null) =>
      kubectlOk(stack, [
        'patch',
        ...cr,
        '--type=merge',
        '-p',
        JSON.stringify({
          spec: { configuration: { developerConfiguration: { disabledFeatureGates: value } } },
        }),
      ]);
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
