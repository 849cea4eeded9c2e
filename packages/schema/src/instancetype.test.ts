import { describe, expect, it } from 'vitest';
import {
  checkPreferenceRequirements,
  expandTemplate,
  guestTopology,
  instancetypeKind,
  preferenceKind,
  type TemplateLike,
} from './instancetype.ts';
import type { InstancetypeSpec, PreferenceSpec } from './types/instancetype.ts';
import type { VirtualMachineInstanceSpec } from './types/vmi.ts';

const small: InstancetypeSpec = { cpu: { guest: 2 }, memory: { guest: '1Gi' } };

function template(
  spec: Partial<VirtualMachineInstanceSpec['domain']> = {},
  extra: Partial<VirtualMachineInstanceSpec> = {},
): TemplateLike {
  return {
    metadata: { annotations: { mine: 'yes' } },
    spec: {
      ...extra,
      domain: { devices: { disks: [{ name: 'root' }, { name: 'cd', cdrom: {} }] }, ...spec },
      volumes: [
        { name: 'root', containerDisk: { image: 'x:1' } },
        { name: 'cd', cloudInitNoCloud: { userData: 'x' } },
      ],
    },
  };
}

describe('instancetype expansion', () => {
  it('sets vCPUs as sockets and the guest memory', () => {
    const { template: t, causes } = expandTemplate(template(), { instancetype: small });
    expect(causes).toEqual([]);
    expect(t.spec.domain.cpu).toEqual({ sockets: 2, cores: 1, threads: 1 });
    expect(t.spec.domain.memory).toEqual({ guest: '1Gi' });
  });

  it('copies model, node selector, scheduler and annotations', () => {
    const it_: InstancetypeSpec = {
      ...small,
      cpu: { guest: 1, model: 'Haswell' },
      nodeSelector: { zone: 'a' },
      schedulerName: 'vm-scheduler',
      annotations: { from: 'instancetype' },
    };
    const { template: t } = expandTemplate(template(), { instancetype: it_ });
    expect(t.spec.domain.cpu?.model).toBe('Haswell');
    expect(t.spec.nodeSelector).toEqual({ zone: 'a' });
    expect(t.spec.schedulerName).toBe('vm-scheduler');
    expect(t.metadata?.annotations).toEqual({ mine: 'yes', from: 'instancetype' });
  });

  it('requests less pod memory by overcommitPercent', () => {
    const { template: t } = expandTemplate(template(), {
      instancetype: { cpu: { guest: 1 }, memory: { guest: '1Gi', overcommitPercent: 25 } },
    });
    expect(t.spec.domain.resources?.requests?.memory).toBe('768Mi');
  });

  it.each([
    ['cpu sockets', { cpu: { sockets: 2 } }, 'spec.template.spec.domain.cpu.sockets'],
    ['cpu cores', { cpu: { cores: 2 } }, 'spec.template.spec.domain.cpu.cores'],
    ['cpu threads', { cpu: { threads: 2 } }, 'spec.template.spec.domain.cpu.threads'],
    ['memory guest', { memory: { guest: '1Gi' } }, 'spec.template.spec.domain.memory.guest'],
    [
      'cpu request',
      { resources: { requests: { cpu: '1' } } },
      'spec.template.spec.domain.resources.requests[cpu]',
    ],
    ['cpu limit', { resources: { limits: { cpu: '1' } } }, 'spec.template.spec.domain.resources.limits[cpu]'],
    [
      'memory request',
      { resources: { requests: { memory: '1Gi' } } },
      'spec.template.spec.domain.resources.requests[memory]',
    ],
    [
      'memory limit',
      { resources: { limits: { memory: '1Gi' } } },
      'spec.template.spec.domain.resources.limits[memory]',
    ],
  ] as const)('a VM may not set %s itself', (_what, domain, field) => {
    const input = template(domain);
    const result = expandTemplate(input, { instancetype: small });
    expect(result.causes).toEqual([expect.objectContaining({ type: 'FieldValueInvalid', field })]);
    expect(result.template).toBe(input);
  });

  it('conflicts on model, node selector, scheduler and annotations only when both set them', () => {
    const it_: InstancetypeSpec = {
      ...small,
      cpu: { guest: 1, model: 'Haswell' },
      nodeSelector: {},
      schedulerName: 's',
      annotations: { mine: 'no' },
    };
    const input = template(
      { cpu: { model: 'host-model' } },
      { nodeSelector: { a: 'b' }, schedulerName: 'other' },
    );
    expect(expandTemplate(input, { instancetype: it_ }).causes.map((c) => c.field)).toEqual([
      'spec.template.spec.nodeSelector',
      'spec.template.spec.schedulerName',
      'spec.template.spec.domain.cpu.model',
      'spec.template.metadata.annotations[mine]',
    ]);
    expect(
      expandTemplate(template({ cpu: { model: 'host-model' } }), { instancetype: small }).causes,
    ).toEqual([]);
  });

  it('uses the path it is given for the causes', async () => {
    const { FieldPath } = await import('./validation/causes.ts');
    const result = expandTemplate(
      template({ cpu: { cores: 1 } }),
      { instancetype: small },
      FieldPath.root('spec', 'template'),
    );
    expect(result.causes[0]?.field).toBe('spec.template.spec.domain.cpu.cores');
  });

  it('does nothing without an instancetype or a preference', () => {
    const input = template();
    expect(expandTemplate(input, {})).toEqual({ template: input, causes: [] });
  });
});

describe('guestTopology', () => {
  it.each([
    [undefined, 4, { sockets: 4, cores: 1, threads: 1 }],
    ['cores', 4, { sockets: 1, cores: 4, threads: 1 }],
    ['threads', 2, { sockets: 1, cores: 1, threads: 2 }],
    ['preferCores', 3, { sockets: 1, cores: 3, threads: 1 }],
    ['any', 2, { sockets: 2, cores: 1, threads: 1 }],
    ['spread', 4, { sockets: 2, cores: 2, threads: 1 }],
  ] as const)('%s with %i vCPUs', (topology, vcpus, expected) => {
    const preference: PreferenceSpec | undefined =
      topology === undefined ? undefined : { cpu: { preferredCPUTopology: topology } };
    expect(guestTopology(vcpus, preference)).toEqual(expected);
  });

  it('spreads by the given ratio and across', () => {
    expect(
      guestTopology(8, { cpu: { preferredCPUTopology: 'spread', spreadOptions: { ratio: 4 } } }),
    ).toEqual({ sockets: 2, cores: 4, threads: 1 });
    expect(
      guestTopology(8, {
        cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'CoresThreads' } },
      }),
    ).toEqual({ sockets: 1, cores: 4, threads: 2 });
    expect(
      guestTopology(8, {
        cpu: { preferredCPUTopology: 'spread', spreadOptions: { across: 'SocketsCoresThreads' } },
      }),
    ).toEqual({ sockets: 2, cores: 2, threads: 2 });
  });

  it('gives one vCPU as 1×1×1 whatever the preference', () => {
    expect(guestTopology(1, { cpu: { preferredCPUTopology: 'cores' } })).toEqual({
      sockets: 1,
      cores: 1,
      threads: 1,
    });
  });
});

describe('preference application', () => {
  const preference: PreferenceSpec = {
    devices: {
      preferredDiskBus: 'virtio',
      preferredCdromBus: 'sata',
      preferredDiskCache: 'none',
      preferredAutoattachGraphicsDevice: false,
    },
    features: { preferredSmm: { enabled: true } },
    firmware: { preferredUseBios: true, preferredUseBiosSerial: true },
    machine: { preferredMachineType: 'pc-q35-8.2' },
    preferredTerminationGracePeriodSeconds: 15,
    preferredSubdomain: 'vms',
    annotations: { mine: 'theirs', extra: 'x' },
  };

  it('fills what the VM leaves open', () => {
    const { template: t } = expandTemplate(template(), { preference });
    expect(t.spec.domain.devices.disks).toEqual([
      { name: 'root', disk: { bus: 'virtio' }, cache: 'none' },
      { name: 'cd', cdrom: { bus: 'sata' } },
    ]);
    expect(t.spec.domain.devices.autoattachGraphicsDevice).toBe(false);
    expect(t.spec.domain.features?.smm).toEqual({ enabled: true });
    expect(t.spec.domain.firmware?.bootloader).toEqual({ bios: { useSerial: true } });
    expect(t.spec.domain.machine?.type).toBe('pc-q35-8.2');
    expect(t.spec.terminationGracePeriodSeconds).toBe(15);
    expect(t.spec.subdomain).toBe('vms');
    expect(t.metadata?.annotations).toEqual({ mine: 'yes', extra: 'x' });
  });

  it('never overrides what the VM sets', () => {
    const input = template(
      {
        devices: { disks: [{ name: 'root', disk: { bus: 'sata' } }], autoattachGraphicsDevice: true },
        machine: { type: 'q35' },
      },
      { terminationGracePeriodSeconds: 60, subdomain: 'mine' },
    );
    const { template: t } = expandTemplate(input, { preference });
    expect(t.spec.domain.devices.disks?.[0]?.disk?.bus).toBe('sata');
    expect(t.spec.domain.devices.autoattachGraphicsDevice).toBe(true);
    expect(t.spec.domain.machine?.type).toBe('q35');
    expect(t.spec.terminationGracePeriodSeconds).toBe(60);
    expect(t.spec.subdomain).toBe('mine');
  });

  it('lays the instancetype vCPUs out as the preference asks', () => {
    const { template: t } = expandTemplate(template(), {
      instancetype: small,
      preference: { cpu: { preferredCPUTopology: 'cores' } },
    });
    expect(t.spec.domain.cpu).toEqual({ sockets: 1, cores: 2, threads: 1 });
  });

  it('does not modify its input', () => {
    const input = template();
    const before = structuredClone(input);
    expandTemplate(input, { instancetype: small, preference });
    expect(input).toEqual(before);
  });
});

describe('checkPreferenceRequirements', () => {
  const demanding: PreferenceSpec = { requirements: { cpu: { guest: 2 }, memory: { guest: '2Gi' } } };
  const spec = (cpu: number, memory: string): VirtualMachineInstanceSpec => ({
    domain: { devices: {}, cpu: { sockets: cpu, cores: 1, threads: 1 }, memory: { guest: memory } },
  });

  it('checks the instancetype when there is one', () => {
    expect(checkPreferenceRequirements(demanding, small, spec(4, '4Gi')).map((c) => c.field)).toEqual([
      'spec.instancetype',
    ]);
    expect(
      checkPreferenceRequirements(demanding, { cpu: { guest: 2 }, memory: { guest: '2Gi' } }, spec(1, '1Gi')),
    ).toEqual([]);
  });

  it("checks the VM's own topology and memory otherwise", () => {
    expect(checkPreferenceRequirements(demanding, undefined, spec(1, '1Gi')).map((c) => c.field)).toEqual([
      'spec.template.spec.domain.cpu',
      'spec.template.spec.domain.memory.guest',
    ]);
    expect(checkPreferenceRequirements(demanding, undefined, spec(2, '2Gi'))).toEqual([]);
  });
});

describe('kinds of instancetype and preference references', () => {
  it('read kind as KubeVirt does', () => {
    expect(instancetypeKind({})).toBe('VirtualMachineClusterInstancetype');
    expect(instancetypeKind({ kind: 'VirtualMachineInstancetype' })).toBe('VirtualMachineInstancetype');
    expect(instancetypeKind({ kind: 'virtualmachineinstancetypes' })).toBe('VirtualMachineInstancetype');
    expect(instancetypeKind({ kind: 'Flavor' })).toBeUndefined();
    expect(preferenceKind({ kind: '' })).toBe('VirtualMachineClusterPreference');
    expect(preferenceKind({ kind: 'VirtualMachinePreference' })).toBe('VirtualMachinePreference');
    expect(preferenceKind({ kind: 'VirtualMachineClusterInstancetype' })).toBeUndefined();
  });
});
