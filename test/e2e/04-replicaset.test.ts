// A VirtualMachineInstanceReplicaSet of three test guests on two nodes: three VMIs Running, spread over both
// nodes (a preferred pod anti-affinity in the template, as a KubeVirt user would write it), and a deleted VMI
// replaced.
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  VM_RUNNING_TIMEOUT_MS,
  createObject,
  ensureStack,
  guestSpec,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';

const ns = useTestNamespace('e2e-vmirs');
const NAME = 'spread';
const LABEL = { 'kubevirt-ts.dev/e2e-vmirs': NAME };
let stack: Stack;

beforeAll(async () => {
  stack = await ensureStack();
}, E2E_HOOK_TIMEOUT_MS);

async function runningVmis() {
  const vmis = await stack.vms.vmis(ns.name, `kubevirt-ts.dev/e2e-vmirs=${NAME}`);
  return vmis.filter((v) => v.status?.phase === 'Running' && !v.metadata?.deletionTimestamp);
}

describe('VirtualMachineInstanceReplicaSet', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('keeps 3 VMIs Running, spread over both nodes', async () => {
    await createObject(stack, ns.name, 'virtualmachineinstancereplicasets', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceReplicaSet',
      metadata: { name: NAME },
      spec: {
        replicas: 3,
        selector: { matchLabels: LABEL },
        template: {
          metadata: { labels: LABEL },
          spec: {
            ...guestSpec(),
            affinity: {
              podAntiAffinity: {
                preferredDuringSchedulingIgnoredDuringExecution: [
                  {
                    weight: 100,
                    podAffinityTerm: {
                      labelSelector: { matchLabels: LABEL },
                      topologyKey: 'kubernetes.io/hostname',
                    },
                  },
                ],
              },
            },
          },
        },
      },
    });
    const vmis = await eventually(
      async () => ((await runningVmis()).length === 3 ? runningVmis() : undefined),
      {
        timeoutMs: VM_RUNNING_TIMEOUT_MS * 2,
        intervalMs: 2_000,
        description: '3 Running VMIs of the replica set',
      },
    );
    const nodes = new Set(vmis.map((v) => v.status?.nodeName));
    expect([...nodes].sort()).toEqual([...stack.nodes].sort());
    const rs = (await stack.custom.getNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'virtualmachineinstancereplicasets',
      name: NAME,
    })) as { status?: { replicas?: number; readyReplicas?: number } };
    expect(rs.status?.replicas).toBe(3);
  });

  it('replaces a deleted VMI', async () => {
    const before = await runningVmis();
    const victim = before[0]?.metadata?.name ?? '';
    await stack.custom.deleteNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace: ns.name,
      plural: 'virtualmachineinstances',
      name: victim,
    });
    const after = await eventually(
      async () => {
        const now = await runningVmis();
        return now.length === 3 && !now.some((v) => v.metadata?.name === victim) ? now : undefined;
      },
      {
        timeoutMs: VM_RUNNING_TIMEOUT_MS,
        intervalMs: 2_000,
        description: 'a new third VMI in place of the deleted one',
      },
    );
    expect(after.map((v) => v.metadata?.name)).not.toContain(victim);
  });
});
