// The runtime configuration (issue 8 and DESIGN.md §4b): built-in defaults while there is no KubeVirt CR, the CR's
// settings applied without a restart once it exists (watched), and its problems reported in its status.
import { CustomObjectsApi } from '@kubernetes/client-node';
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { mergePatchOptions } from '@kubevirt-ts/runtime';
import type { KubeVirt, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integration, needsCluster } from './support/cluster.ts';
import {
  Api,
  prepareCluster,
  smallVMISpec,
  startControllers,
  type RunningControllers,
} from './support/harness.ts';

const KV = { group: 'kubevirt.io', version: 'v1', plural: 'kubevirts' };

describe.skipIf(!integration)(`cluster configuration from the KubeVirt CR ${needsCluster}`, () => {
  const ns = useTestNamespace('ctrl-config');
  let api: Api;
  let custom: CustomObjectsApi;
  let running: RunningControllers;

  beforeAll(async () => {
    await prepareCluster(ns);
    api = new Api(ns.kc, ns.name);
    custom = ns.kc.makeApiClient(CustomObjectsApi);
    running = await startControllers(ns.name);
  });

  afterAll(async () => {
    await running?.stop();
  });

  async function podOf(name: string) {
    const vmi = await api.create<VirtualMachineInstance>('virtualmachineinstances', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstance',
      metadata: { name },
      spec: smallVMISpec({ nodeSelector: { 'no-node': 'x' } }),
    });
    return eventually(async () => (await api.podsOf(vmi))[0], { description: `the launcher pod of ${name}` });
  }

  it('renders pods from the defaults, then from the CR as soon as it exists or changes', async () => {
    const defaults = await podOf('defaults');
    expect(defaults.spec?.containers[0]?.resources?.limits).toHaveProperty(['devices.kubevirt.io/kvm']);
    expect(defaults.spec?.containers[0]?.resources?.requests?.cpu).toBe('100m');

    await custom.createNamespacedCustomObject({
      ...KV,
      namespace: ns.name,
      body: {
        apiVersion: 'kubevirt.io/v1',
        kind: 'KubeVirt',
        metadata: { name: 'kubevirt' },
        spec: { configuration: { developerConfiguration: { useEmulation: true, cpuAllocationRatio: 2 } } },
      },
    });
    await eventually(() => running.controllers.config.current().useEmulation, {
      description: 'the controllers to pick up the CR',
    });
    const emulated = await podOf('emulated');
    expect(emulated.spec?.containers[0]?.resources?.limits).not.toHaveProperty(['devices.kubevirt.io/kvm']);
    expect(emulated.spec?.containers[0]?.args).toContain('--use-emulation');
    expect(emulated.spec?.containers[0]?.resources?.requests?.cpu).toBe('500m');

    const cr = await eventually(
      async () => {
        const kv = (await custom.getNamespacedCustomObject({
          ...KV,
          namespace: ns.name,
          name: 'kubevirt',
        })) as KubeVirt;
        return kv.status?.conditions?.find((c) => c.type === 'Degraded') ? kv : undefined;
      },
      { description: 'the CR’s status condition' },
    );
    expect(cr.status?.conditions?.find((c) => c.type === 'Degraded')).toMatchObject({
      status: 'False',
      reason: 'ConfigurationValid',
    });
    expect(cr.status?.observedGeneration).toBe(cr.metadata?.generation);
  });

  it('reports an invalid configuration in the CR’s status, naming the field', async () => {
    await custom.patchNamespacedCustomObject(
      {
        ...KV,
        namespace: ns.name,
        name: 'kubevirt',
        body: { spec: { configuration: { additionalGuestMemoryOverheadRatio: 'lots' } } },
      },
      mergePatchOptions(),
    );
    const degraded = await eventually(
      async () => {
        const kv = (await custom.getNamespacedCustomObject({
          ...KV,
          namespace: ns.name,
          name: 'kubevirt',
        })) as KubeVirt;
        const c = kv.status?.conditions?.find((x) => x.type === 'Degraded');
        return c?.status === 'True' ? c : undefined;
      },
      { description: 'Degraded=True' },
    );
    expect(degraded.reason).toBe('InvalidConfiguration');
    expect(degraded.message).toContain('spec.configuration.additionalGuestMemoryOverheadRatio');
    // The valid parts stay in effect.
    expect(running.controllers.config.current().useEmulation).toBe(true);
  });

  it('returns to the defaults when the CR is deleted', async () => {
    await custom.deleteNamespacedCustomObject({ ...KV, namespace: ns.name, name: 'kubevirt' });
    await eventually(() => !running.controllers.config.current().useEmulation, {
      description: 'the defaults to apply again',
    });
    const pod = await podOf('defaults-again');
    expect(pod.spec?.containers[0]?.resources?.limits).toHaveProperty(['devices.kubevirt.io/kvm']);
  });
});
