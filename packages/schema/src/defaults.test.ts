import { describe, expect, it } from 'vitest';
import { DEFAULT_CLUSTER_CONFIG, clusterConfigFrom } from './config.ts';
import {
  DEFAULT_DISK_BUS,
  defaultVirtualMachine,
  defaultVirtualMachineInstance,
  defaultVirtualMachineInstanceSpec,
} from './defaults.ts';
import type { VirtualMachine } from './types/vm.ts';
import type { VirtualMachineInstance, VirtualMachineInstanceSpec } from './types/vmi.ts';
import { firmwareUUIDFromName } from './uuid.ts';

function vmi(
  spec: Partial<VirtualMachineInstanceSpec> & { domain?: Partial<VirtualMachineInstanceSpec['domain']> } = {},
): VirtualMachineInstance {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstance',
    metadata: { name: 'testvmi' },
    spec: { ...spec, domain: { devices: {}, ...spec.domain } },
  };
}

const defaulted = (v: VirtualMachineInstance, config = DEFAULT_CLUSTER_CONFIG) =>
  defaultVirtualMachineInstance(v, { config }).spec;

describe('defaultVirtualMachineInstance', () => {
  it('sets machine type q35, architecture amd64 and the 30 s grace period', () => {
    const spec = defaulted(vmi());
    expect(spec.domain.machine).toEqual({ type: 'q35' });
    expect(spec.architecture).toBe('amd64');
    expect(spec.terminationGracePeriodSeconds).toBe(30);
  });

  it('keeps what the VMI sets', () => {
    const spec = defaulted(
      vmi({ terminationGracePeriodSeconds: 0, domain: { machine: { type: 'pc-q35-8.2' }, devices: {} } }),
    );
    expect(spec.domain.machine?.type).toBe('pc-q35-8.2');
    expect(spec.terminationGracePeriodSeconds).toBe(0);
  });

  it('takes the machine type, CPU model and eviction strategy from the cluster config', () => {
    const config = clusterConfigFrom({
      spec: { configuration: { machineType: 'pc-q35-9.0', cpuModel: 'Haswell', evictionStrategy: 'None' } },
    });
    const spec = defaulted(vmi(), config);
    expect(spec.domain.machine?.type).toBe('pc-q35-9.0');
    expect(spec.domain.cpu?.model).toBe('Haswell');
    expect(spec.evictionStrategy).toBe('None');
    expect(defaulted(vmi()).evictionStrategy).toBeUndefined();
  });

  it('gives the guest the requested memory, else the limit', () => {
    expect(
      defaulted(vmi({ domain: { devices: {}, resources: { requests: { memory: '256Mi' } } } })).domain.memory,
    ).toEqual({ guest: '256Mi' });
    expect(
      defaulted(vmi({ domain: { devices: {}, resources: { limits: { memory: '1Gi' } } } })).domain.memory
        ?.guest,
    ).toBe('1Gi');
    const both = defaulted(
      vmi({
        domain: { devices: {}, memory: { guest: '128Mi' }, resources: { requests: { memory: '256Mi' } } },
      }),
    );
    expect(both.domain.memory?.guest).toBe('128Mi');
    expect(both.domain.resources?.requests?.memory).toBe('256Mi');
    expect(defaulted(vmi()).domain.memory).toBeUndefined();
  });

  it('does not write a memory request from guest memory (the pod renderer derives it, as in KubeVirt)', () => {
    const spec = defaulted(vmi({ domain: { devices: {}, memory: { guest: '128Mi' } } }));
    expect(spec.domain.resources).toBeUndefined();
  });

  it('lays out 1×1×1 vCPUs, or sockets from the cpu limit, else the request, rounded up', () => {
    expect(defaulted(vmi()).domain.cpu).toMatchObject({
      sockets: 1,
      cores: 1,
      threads: 1,
      model: 'host-model',
    });
    expect(
      defaulted(vmi({ domain: { devices: {}, resources: { limits: { cpu: '3' } } } })).domain.cpu,
    ).toMatchObject({ sockets: 3, cores: 1, threads: 1 });
    expect(
      defaulted(vmi({ domain: { devices: {}, resources: { requests: { cpu: '1500m' } } } })).domain.cpu,
    ).toMatchObject({ sockets: 2 });
    expect(
      defaulted(vmi({ domain: { devices: {}, resources: { requests: { cpu: '100m' } } } })).domain.cpu
        ?.sockets,
    ).toBe(1);
  });

  it('fills a partial topology with 1s and keeps what is set', () => {
    expect(defaulted(vmi({ domain: { devices: {}, cpu: { cores: 4 } } })).domain.cpu).toMatchObject({
      sockets: 1,
      cores: 4,
      threads: 1,
    });
    expect(
      defaulted(vmi({ domain: { devices: {}, cpu: { sockets: 2, threads: 2, cores: 0 } } })).domain.cpu,
    ).toMatchObject({ sockets: 2, cores: 1, threads: 2 });
  });

  it('copies the cpu limit into the request when only a limit is set', () => {
    const spec = defaulted(vmi({ domain: { devices: {}, resources: { limits: { cpu: '2' } } } }));
    expect(spec.domain.resources?.requests?.cpu).toBe('2');
  });

  it('writes a cluster cpuRequest only when it differs from the default 100m', () => {
    expect(defaulted(vmi()).domain.resources).toBeUndefined();
    const config = clusterConfigFrom({ spec: { configuration: { cpuRequest: '250m' } } });
    expect(defaulted(vmi(), config).domain.resources?.requests?.cpu).toBe('250m');
    const own = vmi({ domain: { devices: {}, resources: { requests: { cpu: '1' } } } });
    expect(defaulted(own, config).domain.resources?.requests?.cpu).toBe('1');
  });

  it(`adds a disk (bus ${DEFAULT_DISK_BUS}) for every volume without one`, () => {
    const spec = defaulted(
      vmi({
        volumes: [
          { name: 'root', containerDisk: { image: 'img:1' } },
          { name: 'ci', cloudInitNoCloud: { userData: 'x' } },
        ],
        domain: { devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] } },
      }),
    );
    expect(spec.domain.devices.disks).toEqual([
      { name: 'root', disk: { bus: 'virtio' } },
      { name: 'ci', disk: { bus: 'sata' } },
    ]);
  });

  it('defaults the disk target, the CD-ROM tray and read-only flag, and the bus', () => {
    const spec = defaulted(
      vmi({
        domain: {
          devices: {
            disks: [
              { name: 'a' },
              { name: 'b', cdrom: {} },
              { name: 'c', cdrom: { readonly: false, bus: 'sata' } },
            ],
          },
        },
      }),
    );
    expect(spec.domain.devices.disks).toEqual([
      { name: 'a', disk: { bus: 'sata' } },
      { name: 'b', cdrom: { bus: 'sata', readonly: true, tray: 'closed' } },
      { name: 'c', cdrom: { bus: 'sata', readonly: false, tray: 'closed' } },
    ]);
  });

  it('pulls :latest and untagged containerDisks Always, tagged ones IfNotPresent', () => {
    const spec = defaulted(
      vmi({
        volumes: [
          { name: 'a', containerDisk: { image: 'registry.example:5000/img:latest' } },
          { name: 'b', containerDisk: { image: 'registry.example:5000/img' } },
          { name: 'c', containerDisk: { image: 'img:1.0' } },
          { name: 'd', containerDisk: { image: 'img@sha256:abc' } },
          { name: 'e', containerDisk: { image: 'img', imagePullPolicy: 'Never' } },
        ],
      }),
    );
    expect(spec.volumes?.map((v) => v.containerDisk?.imagePullPolicy)).toEqual([
      'Always',
      'Always',
      'IfNotPresent',
      'IfNotPresent',
      'Never',
    ]);
  });

  it('derives the firmware UUID from the name, and keeps a given one', () => {
    expect(defaulted(vmi()).domain.firmware?.uuid).toBe(firmwareUUIDFromName('testvmi'));
    const given = defaulted(
      vmi({ domain: { devices: {}, firmware: { uuid: '5a9fc181-957e-5c32-9e5a-2de5e9673531' } } }),
    );
    expect(given.domain.firmware?.uuid).toBe('5a9fc181-957e-5c32-9e5a-2de5e9673531');
    const generated = defaultVirtualMachineInstance({ ...vmi(), metadata: { generateName: 'x-' } });
    expect(generated.spec.domain.firmware).toBeUndefined();
  });

  it('enables ACPI, as KubeVirt does', () => {
    expect(defaulted(vmi()).domain.features).toEqual({ acpi: { enabled: true } });
    const off = defaulted(vmi({ domain: { devices: {}, features: { acpi: { enabled: false }, smm: {} } } }));
    expect(off.domain.features).toEqual({ acpi: { enabled: false }, smm: { enabled: true } });
  });

  it("gives a VMI without networks the pod network with KubeVirt's default binding, bridge", () => {
    const spec = defaulted(vmi());
    expect(spec.networks).toEqual([{ name: 'default', pod: {} }]);
    expect(spec.domain.devices.interfaces).toEqual([{ name: 'default', bridge: {} }]);
  });

  it('reports guest memory and CPU topology in the status', () => {
    const result = defaultVirtualMachineInstance(
      vmi({ domain: { devices: {}, memory: { guest: '128Mi' }, cpu: { cores: 2 } } }),
    );
    expect(result.status).toEqual({
      memory: { guestAtBoot: '128Mi', guestCurrent: '128Mi', guestRequested: '128Mi' },
      currentCPUTopology: { sockets: 1, cores: 2, threads: 1 },
    });
  });

  it('does not modify its input', () => {
    const input = vmi({ volumes: [{ name: 'a', emptyDisk: { capacity: '1Gi' } }] });
    const before = structuredClone(input);
    defaultVirtualMachineInstance(input);
    expect(input).toEqual(before);
  });

  it('leaves parts of the wrong type alone for validation to report', () => {
    const weird = { spec: { domain: { devices: 'none', cpu: 3, machine: [] }, volumes: 'x' } };
    const result = defaultVirtualMachineInstance(weird) as unknown as {
      spec: { domain: Record<string, unknown> };
    };
    expect(result.spec.domain.devices).toBe('none');
    expect(result.spec.domain.cpu).toBe(3);
    expect(result.spec.domain.machine).toEqual([]);
  });

  it("adds the default pod network with the cluster's binding, as KubeVirt does", () => {
    const network = (defaultNetworkInterface: 'bridge' | 'masquerade' | 'passt') =>
      clusterConfigFrom({ spec: { configuration: { network: { defaultNetworkInterface } } } });
    const masquerade = network('masquerade');
    const spec = defaulted(vmi(), masquerade);
    expect(spec.networks).toEqual([{ name: 'default', pod: {} }]);
    expect(spec.domain.devices.interfaces).toEqual([{ name: 'default', masquerade: {} }]);
    // `passt` names the passtBinding, never the discontinued `passt` field.
    expect(defaulted(vmi(), network('passt')).domain.devices.interfaces).toEqual([
      { name: 'default', passtBinding: {} },
    ]);
    // Bridge where the cluster forbids it: still added, so validation refuses the VMI naming the setting.
    const noBridge = clusterConfigFrom({
      spec: { configuration: { network: { permitBridgeInterfaceOnPodNetwork: false } } },
    });
    expect(defaulted(vmi(), noBridge).domain.devices.interfaces).toEqual([{ name: 'default', bridge: {} }]);
    // Opted out, or networks of its own: left alone.
    const optedOut = defaulted(vmi({ domain: { devices: { autoattachPodInterface: false } } }), masquerade);
    expect(optedOut.networks).toBeUndefined();
    const own = defaulted(
      vmi({
        networks: [{ name: 'n', pod: {} }],
        domain: { devices: { interfaces: [{ name: 'n', masquerade: {}, ports: [{ port: 22 }] }] } },
      }),
      masquerade,
    );
    expect(own.domain.devices.interfaces).toEqual([{ name: 'n', masquerade: {}, ports: [{ port: 22 }] }]);
  });

  it('is idempotent', () => {
    const once = defaultVirtualMachineInstance(
      vmi({
        volumes: [{ name: 'a', emptyDisk: { capacity: '1Gi' } }],
        domain: { devices: {}, resources: { limits: { cpu: '2', memory: '1Gi' } } },
      }),
    );
    expect(defaultVirtualMachineInstance(once)).toEqual(once);
  });
});

describe('defaultVirtualMachineInstanceSpec', () => {
  it('defaults a bare spec, with the UUID from the given name', () => {
    const spec = defaultVirtualMachineInstanceSpec<VirtualMachineInstanceSpec>(
      { domain: { devices: {} } },
      { name: 'testvm' },
    );
    expect(spec.domain.firmware?.uuid).toBe('5a9fc181-957e-5c32-9e5a-2de5e9673531');
    expect(spec.domain.machine?.type).toBe('q35');
  });
});

describe('defaultVirtualMachine', () => {
  function vm(): VirtualMachine {
    return {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'testvm' },
      spec: { runStrategy: 'Always', template: { spec: { domain: { devices: {} } } } },
    };
  }

  it('sets the template machine type, architecture and name-based firmware UUID', () => {
    const spec = defaultVirtualMachine(vm()).spec.template.spec;
    expect(spec?.domain.machine?.type).toBe('q35');
    expect(spec?.architecture).toBe('amd64');
    expect(spec?.domain.firmware?.uuid).toBe('5a9fc181-957e-5c32-9e5a-2de5e9673531');
  });

  it('leaves the rest to VMI creation, so an instancetype or preference can still provide it', () => {
    const spec = defaultVirtualMachine(vm()).spec.template.spec;
    expect(spec?.domain.cpu).toBeUndefined();
    expect(spec?.domain.memory).toBeUndefined();
    expect(spec?.terminationGracePeriodSeconds).toBeUndefined();
    expect(spec?.domain.features).toBeUndefined();
  });

  it("prefers the preference's machine type and architecture", () => {
    const spec = defaultVirtualMachine(vm(), {
      preference: { machine: { preferredMachineType: 'pc-q35-8.2' }, preferredArchitecture: 'amd64' },
    }).spec.template.spec;
    expect(spec?.domain.machine?.type).toBe('pc-q35-8.2');
  });

  it('gives a template without spec or domain the empty domain Go would', () => {
    const bare: VirtualMachine = { ...vm(), spec: { runStrategy: 'Halted', template: {} } };
    expect(defaultVirtualMachine(bare).spec.template.spec?.domain.devices).toEqual({});
  });

  it('leaves a VM without a template alone', () => {
    const noTemplate = { kind: 'VirtualMachine', spec: { runStrategy: 'Always' } };
    expect(defaultVirtualMachine(noTemplate)).toEqual(noTemplate);
  });

  it('is idempotent', () => {
    const once = defaultVirtualMachine(vm());
    expect(defaultVirtualMachine(once)).toEqual(once);
  });
});
