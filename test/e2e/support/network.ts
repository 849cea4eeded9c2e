// What the network end-to-end suites (07-network, 07b-passt, 08-portforward, 08b-ssh) share: a test-guest VM on
// the pod network with a given interface, client pods with the machine's tools, the VMI's status.interfaces, and
// changing the chart's KubeVirt CR for one test and putting it back.
import type { V1Pod } from '@kubernetes/client-node';
import { eventually } from '@kubevirt-ts/devcluster/testing';
import { TEST_GUEST_IMAGE } from '@kubevirt-ts/devcluster/stack';
import { kubectl, kubectlOk, SERVICES_NAMESPACE, type CommandResult, type Stack } from './stack.ts';

/**
 * The test guest as a VM on the pod network (`default`) with one interface: `iface` gives its binding and ports,
 * e.g. `{ masquerade: {}, ports: [{ name: 'http', port: 80 }] }`; `userData` goes to a cloud-init NoCloud disk.
 */
export function podNetworkVm(
  name: string,
  iface: Record<string, unknown>,
  userData: string,
): Record<string, unknown> {
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
              interfaces: [{ name: 'default', ...iface }],
            },
          },
          networks: [{ name: 'default', pod: {} }],
          terminationGracePeriodSeconds: 10,
          volumes: [
            { name: 'rootdisk', containerDisk: { image: TEST_GUEST_IMAGE } },
            { name: 'cloudinitdisk', cloudInitNoCloud: { userData } },
          ],
        },
      },
    },
  };
}

/** A pod that runs `script` with the machine's tools (devcluster runs `node:24` pods on the host's files). */
export function shellPod(name: string, script: string): V1Pod {
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

/** The IP of pod `name` once it runs. */
export async function runningPodIP(stack: Stack, namespace: string, name: string): Promise<string> {
  return eventually(
    async () => {
      const pod = await stack.core.readNamespacedPod({ name, namespace });
      return pod.status?.phase === 'Running' && pod.status.podIP ? pod.status.podIP : undefined;
    },
    { timeoutMs: 120_000, intervalMs: 1_000, description: `pod ${name} running with an IP` },
  );
}

/** Runs a client pod (shellPod) to completion and returns its log. */
export async function runClientPod(
  stack: Stack,
  namespace: string,
  name: string,
  script: string,
  timeoutMs: number,
): Promise<string> {
  await stack.core.createNamespacedPod({ namespace, body: shellPod(name, script) });
  await eventually(
    async () => {
      const pod = await stack.core.readNamespacedPod({ name, namespace });
      return pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed' ? true : undefined;
    },
    { timeoutMs, intervalMs: 2_000, description: `client pod ${name} to finish` },
  );
  return stack.core.readNamespacedPodLog({ name, namespace });
}

/** One entry of a VMI's status.interfaces. */
export interface StatusInterface {
  name?: string;
  mac?: string;
  ipAddress?: string;
  ipAddresses?: string[];
  interfaceName?: string;
  podInterfaceName?: string;
  infoSource?: string;
}

/** The first entry of the VMI's status.interfaces. */
export async function firstInterface(
  stack: Stack,
  namespace: string,
  name: string,
): Promise<StatusInterface | undefined> {
  const vmi = (await stack.custom.getNamespacedCustomObject({
    group: 'kubevirt.io',
    version: 'v1',
    namespace,
    plural: 'virtualmachineinstances',
    name,
  })) as { status?: { interfaces?: StatusInterface[] } };
  return vmi.status?.interfaces?.[0];
}

/** Waits until virt-handler reports an address for the VMI's first interface; returns that entry. */
export async function reportedInterface(
  stack: Stack,
  namespace: string,
  name: string,
): Promise<StatusInterface> {
  return eventually(
    async () => {
      const first = await firstInterface(stack, namespace, name);
      return first?.ipAddress ? first : undefined;
    },
    { timeoutMs: 60_000, intervalMs: 1_000, description: `status.interfaces[0].ipAddress of VMI ${name}` },
  );
}

/** `kubectl apply --dry-run=server`: admission runs (the webhooks included), nothing is stored. */
export function serverDryRun(stack: Stack, namespace: string, manifest: string): Promise<CommandResult> {
  return kubectl(stack, ['apply', '--dry-run=server', '-n', namespace, '-f', '-'], manifest);
}

/**
 * Merges `configuration` into the chart's KubeVirt CR (values kubevirt.name), which every service watches, the
 * webhook included. A key set to null is removed.
 */
export async function patchKubeVirtConfiguration(
  stack: Stack,
  configuration: Record<string, unknown>,
): Promise<void> {
  await kubectlOk(stack, [
    'patch',
    'kubevirt',
    'kubevirt',
    '-n',
    SERVICES_NAMESPACE,
    '--type=merge',
    '-p',
    JSON.stringify({ spec: { configuration } }),
  ]);
}
