// Every manifest in examples/ must pass the admission path as the webhooks run it: defaulting, then validation
// (for a VM, with the instancetype and preference it references, looked up in the same file).
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  defaultVirtualMachine,
  defaultVirtualMachineInstance,
  defaultVirtualMachineInstanceSpec,
} from './defaults.ts';
import { expandTemplate } from './instancetype.ts';
import { kindInfo } from './kinds.ts';
import type { InstancetypeSpec, PreferenceSpec } from './types/instancetype.ts';
import type { VirtualMachine } from './types/vm.ts';
import { formatCauses } from './validation/causes.ts';
import { validate, validateVirtualMachine } from './validation/validate.ts';

const dir = new URL('../../../examples/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));

interface Doc {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string };
  spec?: unknown;
}

function load(file: string): Doc[] {
  return parseAllDocuments(readFileSync(new URL(file, dir), 'utf8')).map((d) => {
    if (d.errors.length > 0) throw new Error(`${file}: ${d.errors.map((e) => e.message).join('; ')}`);
    return d.toJS() as Doc;
  });
}

function specOf(docs: Doc[], kind: string, name: string | undefined): unknown {
  return docs.find((d) => d.kind === kind && d.metadata?.name === name)?.spec;
}

function admit(doc: Doc, docs: Doc[]): string {
  if (doc.kind === 'VirtualMachine') {
    const vm = doc as VirtualMachine;
    const instancetype = specOf(docs, vm.spec.instancetype?.kind ?? '', vm.spec.instancetype?.name) as
      InstancetypeSpec | undefined;
    const preference = specOf(docs, vm.spec.preference?.kind ?? '', vm.spec.preference?.name) as
      PreferenceSpec | undefined;
    if (vm.spec.instancetype !== undefined)
      expect(instancetype, 'instancetype in the same file').toBeDefined();
    if (vm.spec.preference !== undefined) expect(preference, 'preference in the same file').toBeDefined();
    const defaulted = defaultVirtualMachine(vm, preference === undefined ? {} : { preference });
    return formatCauses(
      validateVirtualMachine(defaulted, {
        ...(instancetype === undefined ? {} : { instancetype }),
        ...(preference === undefined ? {} : { preference }),
      }),
    );
  }
  if (doc.kind === 'VirtualMachineInstance')
    return formatCauses(validate(defaultVirtualMachineInstance(doc)));
  return formatCauses(validate(doc));
}

describe('examples/', () => {
  it('has the set of manifests examples/README.md lists', () => {
    const readme = readFileSync(new URL('README.md', dir), 'utf8');
    expect(files.length).toBeGreaterThanOrEqual(6);
    for (const file of files) expect(readme, `${file} missing from README`).toContain(`\`${file}\``);
  });

  describe.each(files)('%s', (file) => {
    const docs = load(file);
    it.each(docs.map((d) => [`${d.kind ?? '?'}/${d.metadata?.name ?? '?'}`, d] as const))(
      '%s is a kind of kubevirt-ts and defaults and validates cleanly',
      (_name, doc) => {
        expect(kindInfo(doc.apiVersion, doc.kind)).toBeDefined();
        expect(admit(doc, docs)).toBe('');
      },
    );
  });

  it('expands the instancetype and preference of vm-instancetype-preference.yaml as KubeVirt does', () => {
    const docs = load('vm-instancetype-preference.yaml');
    const vm = docs.find((d) => d.kind === 'VirtualMachine') as VirtualMachine;
    const result = expandTemplate(
      { metadata: vm.spec.template.metadata, spec: vm.spec.template.spec ?? { domain: { devices: {} } } },
      {
        instancetype: specOf(docs, 'VirtualMachineInstancetype', 'test-small') as InstancetypeSpec,
        preference: specOf(docs, 'VirtualMachinePreference', 'test-guest') as PreferenceSpec,
      },
    );
    expect(result.causes).toEqual([]);
    const spec = defaultVirtualMachineInstanceSpec(result.template.spec, { name: 'with-instancetype' });
    expect(spec.domain.cpu).toMatchObject({ sockets: 1, cores: 1, threads: 1 });
    expect(spec.domain.memory?.guest).toBe('256Mi');
    expect(spec.domain.devices.disks?.[0]?.disk?.bus).toBe('virtio');
    expect(spec.terminationGracePeriodSeconds).toBe(15);
    expect(spec.domain.machine?.type).toBe('q35');
  });

  it('uses the one placeholder image name examples/README.md documents', () => {
    for (const file of files) {
      const images = [...readFileSync(new URL(file, dir), 'utf8').matchAll(/image: (\S+)/g)].map((m) => m[1]);
      for (const image of images) expect(image, file).toBe('registry.kubevirt-ts.dev/test-guest:latest');
    }
  });
});
