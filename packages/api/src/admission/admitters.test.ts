// The webhooks' decisions on AdmissionReview requests: patches are applied with an independent RFC 6902
// implementation and the result inspected, refusals are checked for the field paths they name.
import { readFileSync, readdirSync } from 'node:fs';
import jsonPatch from 'fast-json-patch';
import {
  DEFAULT_CLUSTER_CONFIG,
  type InstancetypeKind,
  type InstancetypeSpec,
  type PreferenceKind,
  type PreferenceSpec,
} from '@kubevirt-ts/schema';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  ADMISSION_ROUTES,
  MIGRATION_FINALIZER,
  VMI_FINALIZER,
  mutateVirtualMachine,
  mutateVirtualMachineInstance,
  mutateVirtualMachineInstanceMigration,
  validateVirtualMachineAdmitter,
  validateVirtualMachineInstanceAdmitter,
  validateVirtualMachineInstanceMigrationAdmitter,
  type AdmissionContext,
  type Admitter,
  type Lookup,
} from './admitters.ts';
import { toResponse, type AdmissionRequest, type Operation, type Verdict } from './review.ts';

const CONTROLLER = 'system:serviceaccount:kubevirt:virt-controller';
const USER = 'alice';
const NOW = new Date('2030-01-02T03:04:05.678Z');

type Store = Map<string, unknown>;

function context(objects: Store = new Map(), opts: { unavailable?: boolean } = {}): AdmissionContext {
  const lookup = <S>(kind: string, ns: string | undefined, name: string): Lookup<S> => {
    if (opts.unavailable) return { state: 'unavailable', reason: 'cache not synced' };
    const key = kind.includes('Cluster') ? `${kind}/${name}` : `${kind}/${ns ?? ''}/${name}`;
    const spec = objects.get(key);
    return spec === undefined ? { state: 'missing' } : { state: 'found', spec: spec as S };
  };
  return {
    config: () => DEFAULT_CLUSTER_CONFIG,
    isPrivileged: (u) => u === CONTROLLER,
    instancetype: (kind: InstancetypeKind, ns, name) => lookup<InstancetypeSpec>(kind, ns, name),
    preference: (kind: PreferenceKind, ns, name) => lookup<PreferenceSpec>(kind, ns, name),
    now: () => NOW,
  };
}

const groupOf = (apiVersion: string): string =>
  apiVersion.includes('/') ? (apiVersion.split('/')[0] ?? '') : '';

function review(
  object: Record<string, unknown>,
  opts: { operation?: Operation; oldObject?: unknown; user?: string; namespace?: string } = {},
): AdmissionRequest {
  const apiVersion = String(object.apiVersion);
  const request: AdmissionRequest = {
    uid: 'uid-1',
    kind: {
      group: groupOf(apiVersion),
      version: apiVersion.split('/').at(-1) ?? '',
      kind: String(object.kind),
    },
    resource: { group: groupOf(apiVersion), version: 'v1', resource: 'things' },
    operation: opts.operation ?? 'CREATE',
    userInfo: { username: opts.user ?? USER },
    namespace: opts.namespace ?? 'default',
    object,
  };
  if (opts.oldObject !== undefined) request.oldObject = opts.oldObject;
  return request;
}

function patched(request: AdmissionRequest, verdict: Verdict): Record<string, unknown> {
  expect(verdict.allowed).toBe(true);
  const ops = verdict.allowed ? (verdict.patch ?? []) : [];
  return jsonPatch.applyPatch(structuredClone(request.object), ops as jsonPatch.Operation[], true, false)
    .newDocument as Record<string, unknown>;
}

function causes(verdict: Verdict): { field: string; message: string; type: string }[] {
  expect(verdict.allowed).toBe(false);
  return !verdict.allowed && 'causes' in verdict ? verdict.causes : [];
}

const vmi = (extra: Record<string, unknown> = {}) => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachineInstance',
  metadata: { name: 'guest', namespace: 'default', labels: { app: 'guest' } },
  spec: {
    domain: {
      memory: { guest: '128Mi' },
      cpu: { cores: 1 },
      devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
    },
    volumes: [{ name: 'root', containerDisk: { image: 'example.org/guest:1' } }],
  },
  ...extra,
});

const vm = (spec: Record<string, unknown> = {}) => ({
  apiVersion: 'kubevirt.io/v1',
  kind: 'VirtualMachine',
  metadata: { name: 'small', namespace: 'default' },
  spec: { runStrategy: 'Always', template: { spec: vmi().spec }, ...spec },
});

describe('VirtualMachineInstance mutation', () => {
  it('on create: defaults, phase Pending with its timestamp, the finalizer, and no user-written status', async () => {
    const request = review(vmi({ status: { phase: 'Running', nodeName: 'elsewhere' } }));
    const out = patched(request, await mutateVirtualMachineInstance(request, context()));
    expect(out.metadata).toMatchObject({ finalizers: [VMI_FINALIZER], labels: { app: 'guest' } });
    expect(out.status).toMatchObject({
      phase: 'Pending',
      phaseTransitionTimestamps: [{ phase: 'Pending', phaseTransitionTimestamp: '2030-01-02T03:04:05Z' }],
    });
    expect((out.status as Record<string, unknown>).nodeName).toBeUndefined();
    // Defaults from the schema package, e.g. the machine type.
    expect(out.spec).toMatchObject({ domain: { machine: { type: 'q35' } } });
    // Idempotent: the finalizer is not added twice.
    const again = review(out);
    expect(patched(again, await mutateVirtualMachineInstance(again, context())).metadata).toMatchObject({
      finalizers: [VMI_FINALIZER],
    });
  });

  it('on create by our controller: keeps the status it wrote', async () => {
    const request = review(vmi({ status: { phase: 'Scheduling' } }), { user: CONTROLLER });
    const out = patched(request, await mutateVirtualMachineInstance(request, context()));
    expect(out.status).toMatchObject({ phase: 'Scheduling' });
  });

  it("on update: reverts a user's status change, keeps our controller's", async () => {
    const old = vmi({ status: { phase: 'Running', nodeName: 'n1' } });
    const edited = vmi({ status: { phase: 'Failed', nodeName: 'n1' } });
    const byUser = review(edited, { operation: 'UPDATE', oldObject: old });
    expect(patched(byUser, await mutateVirtualMachineInstance(byUser, context())).status).toEqual(
      (old as Record<string, unknown>).status,
    );

    const added = review(vmi({ status: { phase: 'Failed' } }), { operation: 'UPDATE', oldObject: vmi() });
    expect(patched(added, await mutateVirtualMachineInstance(added, context())).status).toBeUndefined();

    const byController = review(edited, { operation: 'UPDATE', oldObject: old, user: CONTROLLER });
    expect(await mutateVirtualMachineInstance(byController, context())).toEqual({ allowed: true });
  });
});

describe('VirtualMachineInstance validation', () => {
  it('accepts a good VMI and refuses a bad one with every problem', async () => {
    expect(await validateVirtualMachineInstanceAdmitter(review(vmi()), context())).toEqual({ allowed: true });
    const bad = vmi();
    (bad.spec.domain.devices.disks[0] as Record<string, unknown>).name = 'missing';
    (bad.spec.domain as Record<string, unknown>).frobnicate = true;
    const found = causes(await validateVirtualMachineInstanceAdmitter(review(bad), context()));
    expect(found.map((c) => c.field)).toEqual(
      expect.arrayContaining(['spec.domain.frobnicate', 'spec.domain.devices.disks[0].name']),
    );
  });

  it('admits the clock, rng, EFI firmware and scsi disks the launcher converts, keeping every field', async () => {
    const hardware = vmi();
    const domain = hardware.spec.domain as Record<string, unknown>;
    domain.clock = {
      timezone: 'Europe/Paris',
      timer: {
        rtc: { tickPolicy: 'catchup', track: 'guest' },
        pit: { tickPolicy: 'delay' },
        hpet: { present: false },
      },
    };
    domain.firmware = { bootloader: { efi: { secureBoot: false } } };
    hardware.spec.domain.devices = {
      disks: [{ name: 'root', disk: { bus: 'scsi' } }],
      rng: {},
    } as typeof hardware.spec.domain.devices;
    const request = review(hardware);
    const out = patched(request, await mutateVirtualMachineInstance(request, context()));
    expect(out).toMatchObject({
      spec: {
        domain: {
          clock: domain.clock,
          firmware: { bootloader: { efi: { secureBoot: false } } },
          devices: { disks: [{ name: 'root', disk: { bus: 'scsi' } }], rng: {} },
        },
      },
    });
    expect(await validateVirtualMachineInstanceAdmitter(review(out), context())).toEqual({ allowed: true });
  });

  it('refuses spec changes by users, naming each changed field, and allows them to our controller', async () => {
    const old = vmi();
    const changed = vmi();
    changed.spec.domain.cpu.cores = 2;
    changed.spec.volumes[0]!.containerDisk.image = 'example.org/guest:2';
    const request = review(changed, { operation: 'UPDATE', oldObject: old });
    const found = causes(await validateVirtualMachineInstanceAdmitter(request, context()));
    expect(found.map((c) => c.field)).toEqual([
      'spec.domain.cpu.cores',
      'spec.volumes[0].containerDisk.image',
    ]);
    expect(found[0]?.message).toMatch(/cannot be changed after it is created/);
    const byController = review(changed, { operation: 'UPDATE', oldObject: old, user: CONTROLLER });
    expect(await validateVirtualMachineInstanceAdmitter(byController, context())).toEqual({ allowed: true });
  });

  it('allows metadata edits but not kubevirt.io/ labels, nor creating with a node label', async () => {
    const old = vmi();
    const labelled = vmi();
    labelled.metadata.labels = {
      app: 'other',
      'kubevirt.io/nodeName': 'n2',
    } as typeof labelled.metadata.labels;
    const found = causes(
      await validateVirtualMachineInstanceAdmitter(
        review(labelled, { operation: 'UPDATE', oldObject: old }),
        context(),
      ),
    );
    expect(found.map((c) => c.field)).toEqual(['metadata.labels[kubevirt.io/nodeName]']);
    const relabelled = vmi();
    relabelled.metadata.labels = { app: 'other' };
    expect(
      await validateVirtualMachineInstanceAdmitter(
        review(relabelled, { operation: 'UPDATE', oldObject: old }),
        context(),
      ),
    ).toEqual({ allowed: true });
    expect(
      causes(await validateVirtualMachineInstanceAdmitter(review(labelled), context())).map((c) => c.field),
    ).toEqual(['metadata.labels[kubevirt.io/nodeName]']);
  });
});

describe('VirtualMachine admission', () => {
  it('defaults the template and validates', async () => {
    const request = review(vm());
    const out = patched(request, await mutateVirtualMachine(request, context()));
    expect(out).toMatchObject({ spec: { template: { spec: { domain: { machine: { type: 'q35' } } } } } });
    expect(await validateVirtualMachineAdmitter(review(out), context())).toEqual({ allowed: true });
  });

  it('rejects an unsupported field and an unknown field by path, and lists every error of a bad manifest', async () => {
    const unsupported = causes(
      await validateVirtualMachineAdmitter(
        review(vm({ dataVolumeTemplates: [{ metadata: { name: 'dv' } }] })),
        context(),
      ),
    );
    expect(unsupported).toEqual([
      expect.objectContaining({ field: 'spec.dataVolumeTemplates', type: 'FieldValueNotSupported' }),
    ]);
    const unknown = causes(
      await validateVirtualMachineAdmitter(review(vm({ runStrtegy: 'Always' })), context()),
    );
    expect(unknown.map((c) => c.field)).toContain('spec.runStrtegy');

    const bad = vm({ running: true });
    bad.spec.template.spec.domain.devices.disks[0]!.name = 'other';
    const found = causes(await validateVirtualMachineAdmitter(review(bad), context()));
    expect(found.length).toBeGreaterThanOrEqual(2);
    const text = toResponse(review(bad), await validateVirtualMachineAdmitter(review(bad), context()))
      .response.status?.message;
    for (const c of found) expect(text).toContain(`\n* ${c.field}: ${c.message}`);
  });

  it('checks that the instancetype and preference exist, in the right namespace', async () => {
    const refs = {
      instancetype: { kind: 'VirtualMachineInstancetype', name: 'small' },
      preference: { name: 'linux' },
    };
    const spec = vm(refs);
    (spec.spec.template.spec.domain as Record<string, unknown>).memory = undefined;
    delete (spec.spec.template.spec.domain as Record<string, unknown>).memory;
    delete (spec.spec.template.spec.domain as Record<string, unknown>).cpu;
    const missing = causes(await validateVirtualMachineAdmitter(review(spec), context()));
    expect(missing.map((c) => c.field)).toEqual(['spec.instancetype.name', 'spec.preference.name']);
    expect(missing[0]?.message).toContain(
      'VirtualMachineInstancetype "small" not found in namespace "default"',
    );

    const store: Store = new Map<string, unknown>([
      ['VirtualMachineInstancetype/default/small', { cpu: { guest: 1 }, memory: { guest: '128Mi' } }],
      ['VirtualMachineClusterPreference/linux', {}],
    ]);
    expect(await validateVirtualMachineAdmitter(review(spec), context(store))).toEqual({ allowed: true });
    expect(
      causes(await validateVirtualMachineAdmitter(review(spec, { namespace: 'other' }), context(store))),
    ).toHaveLength(1);
    expect(
      await validateVirtualMachineAdmitter(review(spec), context(store, { unavailable: true })),
    ).toMatchObject({
      allowed: false,
      code: 503,
    });
  });

  it('lets updates that leave the spec alone through, so a VM stays deletable', async () => {
    const invalid = vm({ runStrategy: undefined });
    const withFinalizerRemoved = { ...invalid, metadata: { ...invalid.metadata, finalizers: [] } };
    const request = review(withFinalizerRemoved, { operation: 'UPDATE', oldObject: invalid });
    expect(await validateVirtualMachineAdmitter(request, context())).toEqual({ allowed: true });
  });

  it('refuses a request routed to the wrong webhook', async () => {
    expect(await validateVirtualMachineAdmitter(review(vmi()), context())).toMatchObject({
      allowed: false,
      code: 400,
    });
  });
});

describe('VirtualMachineInstanceMigration admission', () => {
  const vmim = (vmiName: string) => ({
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachineInstanceMigration',
    metadata: { name: 'mig', namespace: 'default' },
    spec: { vmiName },
  });

  it('adds the finalizer and the VMI name label on create', async () => {
    const request = review(vmim('guest'));
    const out = patched(request, await mutateVirtualMachineInstanceMigration(request, context()));
    expect(out.metadata).toMatchObject({
      finalizers: [MIGRATION_FINALIZER],
      labels: { 'kubevirt.io/vmi-name': 'guest' },
    });
  });

  it('refuses a changed spec', async () => {
    const request = review(vmim('other'), { operation: 'UPDATE', oldObject: vmim('guest') });
    expect(
      causes(await validateVirtualMachineInstanceMigrationAdmitter(request, context())).map((c) => c.field),
    ).toEqual(['spec.vmiName']);
  });
});

describe('examples/', () => {
  const dir = new URL('../../../../examples/', import.meta.url);
  const docs = readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((file) =>
      parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((d) => ({
        file,
        doc: d.toJS() as Record<string, unknown>,
      })),
    );
  const store: Store = new Map();
  for (const { doc } of docs) {
    const metadata = doc.metadata as { name: string };
    if (String(doc.apiVersion).startsWith('instancetype.kubevirt.io/')) {
      store.set(
        String(doc.kind).includes('Cluster')
          ? `${String(doc.kind)}/${metadata.name}`
          : `${String(doc.kind)}/default/${metadata.name}`,
        doc.spec,
      );
    }
  }
  const pathOf = (doc: Record<string, unknown>, kind: 'mutate' | 'validate'): string | undefined =>
    ({
      VirtualMachine: `/virtualmachines-${kind}`,
      VirtualMachineInstance: `/virtualmachineinstances-${kind}`,
      VirtualMachineInstanceReplicaSet: `/virtualmachinereplicasets-${kind}`,
      VirtualMachineInstancetype: kind === 'validate' ? '/instancetypes-validate' : undefined,
      VirtualMachinePreference: kind === 'validate' ? '/preferences-validate' : undefined,
    })[String(doc.kind)];

  it('has examples to check', () => expect(docs.length).toBeGreaterThanOrEqual(6));

  for (const { file, doc } of docs) {
    it(`admits ${file}: ${String(doc.kind)} ${String((doc.metadata as { name: string }).name)}`, async () => {
      let object = doc;
      const mutatePath = pathOf(doc, 'mutate');
      if (mutatePath !== undefined) {
        const mutate = ADMISSION_ROUTES[mutatePath] as Admitter;
        const request = review(object);
        object = patched(request, await mutate(request, context(store)));
      }
      const validate = ADMISSION_ROUTES[pathOf(doc, 'validate') ?? ''] as Admitter;
      const verdict = await validate(review(object), context(store));
      expect(verdict.allowed ? [] : causes(verdict)).toEqual([]);
    });
  }
});
