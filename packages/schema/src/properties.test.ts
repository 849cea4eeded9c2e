// Property-based tests: defaulting is idempotent and never throws, validation never throws, on arbitrary JSON and
// on VMI-shaped objects built from KubeVirt's vocabulary (which reach the deep code paths random JSON never does);
// and a VMI generated to be valid validates cleanly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { clusterConfigFrom } from './config.ts';
import { defaultVirtualMachine, defaultVirtualMachineInstance } from './defaults.ts';
import { expandTemplate } from './instancetype.ts';
import type { VirtualMachineInstanceSpec } from './types/vmi.ts';
import { checkStructure } from './validation/structural.ts';
import { FieldPath } from './validation/causes.ts';
import {
  validate,
  validateKubeVirt,
  validateVirtualMachine,
  validateVirtualMachineInstance,
  validateVirtualMachineInstanceReplicaSet,
} from './validation/validate.ts';
import { VirtualMachineInstanceSpec as VMISpecSchema } from './types/vmi.ts';

const RUNS = { numRuns: 300 };
const KINDS = [
  ['kubevirt.io/v1', 'VirtualMachine'],
  ['kubevirt.io/v1', 'VirtualMachineInstance'],
  ['kubevirt.io/v1', 'VirtualMachineInstanceReplicaSet'],
  ['kubevirt.io/v1', 'VirtualMachineInstanceMigration'],
  ['kubevirt.io/v1', 'KubeVirt'],
  ['instancetype.kubevirt.io/v1beta1', 'VirtualMachineInstancetype'],
  ['instancetype.kubevirt.io/v1beta1', 'VirtualMachineClusterPreference'],
] as const;

/** Scalars a manifest might hold, right or wrong. */
const scalar = fc.oneof(
  fc.constantFrom(
    '128Mi',
    '1Gi',
    '500m',
    '2',
    '0',
    '-1',
    'abc',
    '',
    'virtio',
    'sata',
    'scsi',
    'q35',
    'Always',
    'x:1',
  ),
  fc.integer({ min: -3, max: 5 }),
  fc.boolean(),
  fc.constant(null),
);

const name = fc.constantFrom('root', 'data', 'ci', 'Bad_Name', 'root');
const quantity = fc.constantFrom('128Mi', '256Mi', '1Gi', '2', '500m', '1 GB', 0, 3);
const maybe = <T>(arb: fc.Arbitrary<T>) => fc.option(arb, { nil: undefined });
const bus = fc.constantFrom('virtio', 'sata', 'scsi', 'ide', '');

const diskArb = fc.record(
  {
    name,
    disk: maybe(fc.record({ bus: maybe(bus), readonly: maybe(fc.boolean()) }, { requiredKeys: [] })),
    cdrom: maybe(
      fc.record({ bus: maybe(bus), tray: maybe(fc.constantFrom('open', 'closed')) }, { requiredKeys: [] }),
    ),
    bootOrder: maybe(fc.integer({ min: -1, max: 3 })),
    serial: maybe(fc.constantFrom('abc', 'a b')),
    extra: maybe(scalar),
  },
  { requiredKeys: ['name'] },
);

const volumeArb = fc.record(
  {
    name,
    containerDisk: maybe(
      fc.record(
        {
          image: fc.constantFrom('x', 'x:1', 'x:latest', ''),
          path: maybe(fc.constantFrom('/disk/a', 'rel')),
        },
        { requiredKeys: ['image'] },
      ),
    ),
    emptyDisk: maybe(fc.record({ capacity: quantity })),
    cloudInitNoCloud: maybe(
      fc.record(
        {
          userData: maybe(fc.string()),
          userDataBase64: maybe(fc.constantFrom('aGk=', '!!')),
          secretRef: maybe(fc.record({ name: fc.string() })),
        },
        { requiredKeys: [] },
      ),
    ),
    hostDisk: maybe(
      fc.record(
        {
          path: fc.constantFrom('/a', 'b'),
          type: fc.constantFrom('Disk', 'DiskOrCreate', 'Other'),
          capacity: maybe(quantity),
        },
        { requiredKeys: ['path', 'type'] },
      ),
    ),
    persistentVolumeClaim: maybe(fc.record({ claimName: fc.constantFrom('', 'pvc') })),
  },
  { requiredKeys: ['name'] },
);

const resources = fc.record(
  {
    requests: maybe(fc.dictionary(fc.constantFrom('cpu', 'memory', 'gpu'), quantity)),
    limits: maybe(fc.dictionary(fc.constantFrom('cpu', 'memory'), quantity)),
  },
  { requiredKeys: [] },
);

/** VMI specs from KubeVirt's vocabulary, often wrong, sometimes with the wrong types. */
const vmiSpecArb = fc.record(
  {
    domain: fc.oneof(
      fc.record(
        {
          devices: fc.oneof(
            fc.record(
              {
                disks: maybe(fc.array(diskArb, { maxLength: 3 })),
                interfaces: maybe(
                  fc.array(
                    fc.record({ name, masquerade: maybe(fc.constant({})) }, { requiredKeys: ['name'] }),
                    { maxLength: 2 },
                  ),
                ),
              },
              { requiredKeys: [] },
            ),
            scalar,
          ),
          resources: maybe(resources),
          memory: maybe(fc.record({ guest: maybe(quantity) }, { requiredKeys: [] })),
          cpu: maybe(
            fc.oneof(
              fc.record(
                {
                  sockets: maybe(fc.integer({ min: -1, max: 3 })),
                  cores: maybe(fc.integer({ min: 0, max: 3 })),
                  threads: maybe(scalar),
                  model: maybe(fc.string()),
                },
                { requiredKeys: [] },
              ),
              scalar,
            ),
          ),
          machine: maybe(
            fc.oneof(
              fc.record({ type: maybe(fc.constantFrom('q35', 'pc', '')) }, { requiredKeys: [] }),
              scalar,
            ),
          ),
          firmware: maybe(
            fc.record(
              {
                uuid: maybe(fc.constantFrom('bad', '5a9fc181-957e-5c32-9e5a-2de5e9673531')),
                kernelBoot: maybe(
                  fc.record(
                    {
                      kernelArgs: maybe(fc.string()),
                      container: maybe(
                        fc.record(
                          { image: fc.string(), kernelPath: maybe(fc.constantFrom('/k', 'k')) },
                          { requiredKeys: ['image'] },
                        ),
                      ),
                    },
                    { requiredKeys: [] },
                  ),
                ),
              },
              { requiredKeys: [] },
            ),
          ),
        },
        { requiredKeys: [] },
      ),
      scalar,
    ),
    volumes: maybe(fc.oneof(fc.array(volumeArb, { maxLength: 3 }), scalar)),
    networks: maybe(
      fc.array(fc.record({ name, pod: maybe(fc.constant({})) }, { requiredKeys: ['name'] }), {
        maxLength: 2,
      }),
    ),
    hostname: maybe(fc.constantFrom('ok', 'Not_OK')),
    terminationGracePeriodSeconds: maybe(fc.integer({ min: -1, max: 60 })),
    dnsPolicy: maybe(fc.constantFrom('None', 'ClusterFirst', 'Wrong')),
    unknownField: maybe(scalar),
  },
  { requiredKeys: [] },
);

const vmiArb = fc.record({
  apiVersion: fc.constant('kubevirt.io/v1'),
  kind: fc.constant('VirtualMachineInstance'),
  metadata: fc.record({ name: fc.constantFrom('a', 'b') }),
  spec: vmiSpecArb,
});

const vmArb = fc.record({
  apiVersion: fc.constant('kubevirt.io/v1'),
  kind: fc.constant('VirtualMachine'),
  metadata: fc.record({ name: fc.constantFrom('a', 'b') }, { requiredKeys: [] }),
  spec: fc.record(
    {
      runStrategy: maybe(fc.constantFrom('Always', 'Halted', 'Nope')),
      running: maybe(fc.boolean()),
      instancetype: maybe(
        fc.record(
          { name: maybe(fc.string()), kind: maybe(fc.constantFrom('VirtualMachineInstancetype', 'Weird')) },
          { requiredKeys: [] },
        ),
      ),
      template: maybe(
        fc.record(
          {
            metadata: maybe(
              fc.record({ labels: maybe(fc.dictionary(fc.string(), fc.string())) }, { requiredKeys: [] }),
            ),
            spec: maybe(vmiSpecArb),
          },
          { requiredKeys: [] },
        ),
      ),
    },
    { requiredKeys: [] },
  ),
});

/** Anything, sometimes dressed as one of our kinds so dispatch reaches the validators. */
const dressed = fc
  .tuple(fc.constantFrom(...KINDS), fc.anything())
  .map(([[apiVersion, kind], spec]) => ({ apiVersion, kind, metadata: { name: 'x' }, spec }));

const config = clusterConfigFrom({
  spec: { configuration: { developerConfiguration: { featureGates: ['HostDisk'] } } },
});

describe('defaulting', () => {
  it('is idempotent and never throws on arbitrary JSON', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue(), dressed), (value) => {
        const vmi = defaultVirtualMachineInstance(value);
        expect(defaultVirtualMachineInstance(vmi)).toEqual(vmi);
        const vm = defaultVirtualMachine(value);
        expect(defaultVirtualMachine(vm)).toEqual(vm);
      }),
      RUNS,
    );
  });

  it('is idempotent on VMI- and VM-shaped objects', () => {
    fc.assert(
      fc.property(vmiArb, (value) => {
        const once = defaultVirtualMachineInstance(value, { config });
        expect(defaultVirtualMachineInstance(once, { config })).toEqual(once);
      }),
      RUNS,
    );
    fc.assert(
      fc.property(vmArb, (value) => {
        const once = defaultVirtualMachine(value, {
          preference: { machine: { preferredMachineType: 'pc-q35-8.2' } },
        });
        expect(defaultVirtualMachine(once)).toEqual(once);
      }),
      RUNS,
    );
  });

  it('never changes its input', () => {
    fc.assert(
      fc.property(vmiArb, (value) => {
        const before = structuredClone(value);
        defaultVirtualMachineInstance(value);
        expect(value).toEqual(before);
      }),
      RUNS,
    );
  });
});

describe('validation', () => {
  it('never throws on arbitrary JSON, and always returns causes with a type, field and message', () => {
    fc.assert(
      fc.property(fc.oneof(fc.anything(), fc.jsonValue(), dressed), (value) => {
        for (const causes of [
          validate(value),
          validateVirtualMachineInstance(value),
          validateVirtualMachine(value, {
            instancetype: { cpu: { guest: 1 }, memory: { guest: '1Gi' } },
            preference: {},
          }),
          validateVirtualMachineInstanceReplicaSet(value),
          validateKubeVirt(value),
        ]) {
          for (const cause of causes) {
            expect([
              'FieldValueInvalid',
              'FieldValueRequired',
              'FieldValueNotSupported',
              'FieldValueDuplicate',
            ]).toContain(cause.type);
            expect(typeof cause.field).toBe('string');
            expect(cause.message.length).toBeGreaterThan(0);
          }
        }
      }),
      RUNS,
    );
  });

  it('never throws on VMI- and VM-shaped objects, defaulted or not', () => {
    fc.assert(
      fc.property(vmiArb, (value) => {
        validateVirtualMachineInstance(value, { config });
        validateVirtualMachineInstance(defaultVirtualMachineInstance(value, { config }), { config });
      }),
      RUNS,
    );
    fc.assert(
      fc.property(vmArb, (value) => {
        validateVirtualMachine(value);
        validateVirtualMachine(defaultVirtualMachine(value), {
          instancetype: { cpu: { guest: 2 }, memory: { guest: '1Gi' } },
          preference: { cpu: { preferredCPUTopology: 'spread' }, requirements: { cpu: { guest: 1 } } },
        });
      }),
      RUNS,
    );
  });

  it('accepts every VMI generated to be valid', () => {
    const sources = [
      { containerDisk: { image: 'registry.kubevirt-ts.dev/test-guest:latest' } },
      { emptyDisk: { capacity: '64Mi' } },
      { cloudInitNoCloud: { userData: '#cloud-config' } },
      { persistentVolumeClaim: { claimName: 'data' } },
      { hostDisk: { path: '/var/lib/disk.img', type: 'DiskOrCreate', capacity: '1Gi' } },
    ];
    const valid = fc
      .record({
        volumes: fc.uniqueArray(
          fc.tuple(
            fc.stringMatching(/^[a-z][a-z0-9-]{0,8}[a-z0-9]$/),
            fc.integer({ min: 0, max: sources.length - 1 }),
            fc.constantFrom('virtio', 'sata', undefined),
          ),
          { minLength: 1, maxLength: 4, selector: ([n]) => n },
        ),
        memory: fc.constantFrom('64Mi', '256Mi', '1Gi'),
        cores: fc.integer({ min: 1, max: 4 }),
        grace: fc.option(fc.integer({ min: 0, max: 600 }), { nil: undefined }),
      })
      .map(({ volumes, memory, cores, grace }) => ({
        apiVersion: 'kubevirt.io/v1',
        kind: 'VirtualMachineInstance',
        metadata: { name: 'generated' },
        spec: {
          domain: {
            memory: { guest: memory },
            cpu: { cores },
            devices: {
              disks: volumes.map(([n, , b]) =>
                b === undefined ? { name: n } : { name: n, disk: { bus: b } },
              ),
            },
          },
          volumes: volumes.map(([n, s]) => ({ name: n, ...sources[s] })),
          ...(grace === undefined ? {} : { terminationGracePeriodSeconds: grace }),
        },
      }));
    fc.assert(
      fc.property(valid, (value) => {
        expect(
          validateVirtualMachineInstance(defaultVirtualMachineInstance(value, { config }), { config }),
        ).toEqual([]);
      }),
      RUNS,
    );
  });

  it('agrees with TypeBox on types: a spec whose structure check passes is of the schema type', () => {
    fc.assert(
      fc.property(vmiSpecArb, (spec) => {
        const result = checkStructure(
          VMISpecSchema,
          JSON.parse(JSON.stringify(spec)) as unknown,
          FieldPath.root('spec'),
        );
        if (!result.typeErrors) {
          // Typed code may now read it: expansion and defaulting of a typed spec must work.
          const typed = spec as unknown as VirtualMachineInstanceSpec;
          expandTemplate({ spec: typed }, { instancetype: { cpu: { guest: 1 }, memory: { guest: '1Gi' } } });
        }
      }),
      RUNS,
    );
  });
});
