import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { crdTemplates } from '../scripts/write-crds.ts';
import {
  INTERNAL_KEYWORDS,
  crdYaml,
  crds,
  type CustomResourceDefinition,
  type JSONSchemaProps,
} from './crd.ts';

function crd(plural: string): CustomResourceDefinition {
  const found = crds().find((c) => c.spec.names.plural === plural);
  if (found === undefined) throw new Error(`no CRD ${plural}`);
  return found;
}

function version(plural: string) {
  const v = crd(plural).spec.versions[0];
  if (v === undefined) throw new Error('no version');
  return v;
}

/** Every schema node with its path, depth first. */
function nodes(schema: JSONSchemaProps, path = ''): [string, JSONSchemaProps][] {
  const out: [string, JSONSchemaProps][] = [[path, schema]];
  for (const [name, child] of Object.entries(schema.properties ?? {}))
    out.push(...nodes(child, `${path}.${name}`));
  if (schema.items !== undefined) out.push(...nodes(schema.items, `${path}[]`));
  if (schema.additionalProperties !== undefined) out.push(...nodes(schema.additionalProperties, `${path}{}`));
  return out;
}

const root = (plural: string) => version(plural).schema.openAPIV3Schema;

describe('crds()', () => {
  it('defines the nine kinds with their groups and scopes', () => {
    expect(crds().map((c) => c.metadata.name)).toEqual([
      'virtualmachines.kubevirt.io',
      'virtualmachineinstances.kubevirt.io',
      'virtualmachineinstancemigrations.kubevirt.io',
      'virtualmachineinstancereplicasets.kubevirt.io',
      'virtualmachineinstancetypes.instancetype.kubevirt.io',
      'virtualmachineclusterinstancetypes.instancetype.kubevirt.io',
      'virtualmachinepreferences.instancetype.kubevirt.io',
      'virtualmachineclusterpreferences.instancetype.kubevirt.io',
      'kubevirts.kubevirt.io',
    ]);
    expect(crd('virtualmachineclusterinstancetypes').spec.scope).toBe('Cluster');
    expect(crd('virtualmachineclusterpreferences').spec.scope).toBe('Cluster');
    expect(crd('virtualmachines').spec.scope).toBe('Namespaced');
    expect(version('virtualmachineinstancetypes').name).toBe('v1beta1');
    expect(version('virtualmachines').name).toBe('v1');
  });

  it("has KubeVirt's short names and categories", () => {
    const names = (plural: string) => crd(plural).spec.names;
    expect(names('virtualmachines').shortNames).toEqual(['vm', 'vms']);
    expect(names('virtualmachineinstances').shortNames).toEqual(['vmi', 'vmis']);
    expect(names('virtualmachineinstancemigrations').shortNames).toEqual(['vmim', 'vmims']);
    expect(names('virtualmachineinstancereplicasets').shortNames).toEqual(['vmirs', 'vmirss']);
    expect(names('virtualmachineinstancetypes').shortNames).toEqual([
      'vminstancetype',
      'vminstancetypes',
      'vmf',
      'vmfs',
    ]);
    expect(names('virtualmachineclusterinstancetypes').shortNames).toContain('vmcf');
    expect(names('virtualmachinepreferences').shortNames).toEqual(['vmpref', 'vmprefs', 'vmp', 'vmps']);
    expect(names('virtualmachineclusterpreferences').shortNames).toEqual(['vmcp', 'vmcps']);
    expect(names('kubevirts').shortNames).toEqual(['kv', 'kvs']);
    expect(names('virtualmachines').categories).toEqual(['all']);
    expect(names('virtualmachineclusterpreferences').categories).toBeUndefined();
    expect(names('virtualmachines').listKind).toBe('VirtualMachineList');
  });

  it('gives VM, VMIM, VMIRS and KubeVirt a status subresource and the VMI none; VMIRS scales', () => {
    expect(version('virtualmachines').subresources).toEqual({ status: {} });
    expect(version('virtualmachineinstancemigrations').subresources).toEqual({ status: {} });
    expect(version('kubevirts').subresources).toEqual({ status: {} });
    expect(version('virtualmachineinstances').subresources).toBeUndefined();
    expect(version('virtualmachineinstancereplicasets').subresources).toEqual({
      status: {},
      scale: {
        specReplicasPath: '.spec.replicas',
        statusReplicasPath: '.status.replicas',
        labelSelectorPath: '.status.labelSelector',
      },
    });
  });

  it("prints KubeVirt's columns", () => {
    const columns = (plural: string) =>
      (version(plural).additionalPrinterColumns ?? []).map((c) => [c.name, c.jsonPath, c.priority ?? 0]);
    expect(columns('virtualmachines')).toEqual([
      ['Age', '.metadata.creationTimestamp', 0],
      ['Status', '.status.printableStatus', 0],
      ['Ready', ".status.conditions[?(@.type=='Ready')].status", 0],
    ]);
    expect(columns('virtualmachineinstances')).toEqual([
      ['Age', '.metadata.creationTimestamp', 0],
      ['Phase', '.status.phase', 0],
      ['IP', '.status.interfaces[0].ipAddress', 0],
      ['NodeName', '.status.nodeName', 0],
      ['Ready', ".status.conditions[?(@.type=='Ready')].status", 0],
      ['Live-Migratable', ".status.conditions[?(@.type=='LiveMigratable')].status", 1],
      ['Paused', ".status.conditions[?(@.type=='Paused')].status", 1],
    ]);
    expect(columns('virtualmachineinstancemigrations').map((c) => c[0])).toEqual(['Phase', 'VMI']);
    expect(columns('virtualmachineinstancereplicasets').map((c) => c[0])).toEqual([
      'Desired',
      'Current',
      'Ready',
      'Age',
    ]);
    expect(columns('kubevirts').map((c) => c[0])).toEqual(['Age', 'Phase']);
  });

  it('preserves unknown fields on every object node except the root metadata', () => {
    for (const c of crds()) {
      const schema = c.spec.versions[0]?.schema.openAPIV3Schema as JSONSchemaProps;
      for (const [path, node] of nodes(schema)) {
        if (path === '.metadata') {
          expect(node, c.metadata.name).toEqual({ type: 'object' });
          continue;
        }
        if (node.type === 'object') {
          expect(node['x-kubernetes-preserve-unknown-fields'], `${c.metadata.name} ${path}`).toBe(true);
        }
      }
    }
  });

  it('is structural: every node has a type, except int-or-string quantities', () => {
    for (const c of crds()) {
      for (const [path, node] of nodes(c.spec.versions[0]?.schema.openAPIV3Schema as JSONSchemaProps)) {
        if (node['x-kubernetes-int-or-string'] === true) {
          expect(node.anyOf, path).toEqual([{ type: 'integer' }, { type: 'string' }]);
          expect(node.type, path).toBeUndefined();
          expect(node['x-kubernetes-preserve-unknown-fields'], path).toBeUndefined();
        } else {
          expect(node.type, `${c.metadata.name} ${path}`).toBeDefined();
          expect(node.anyOf, path).toBeUndefined();
        }
        if (node.properties !== undefined) expect(node.additionalProperties, path).toBeUndefined();
      }
    }
  });

  it('describes fields for kubectl explain, and marks those not supported yet', () => {
    const spec = root('virtualmachines').properties?.spec;
    expect(spec?.properties?.runStrategy?.description).toMatch(/RerunOnFailure/);
    expect(spec?.properties?.runStrategy?.enum).toContain('Halted');
    const cpu = root('virtualmachineinstances').properties?.spec?.properties?.domain?.properties?.cpu;
    expect(cpu?.properties?.numa?.description).toMatch(/Not supported by kubevirt-ts yet/);
    const memory = root('virtualmachineinstances').properties?.spec?.properties?.domain?.properties?.memory;
    expect(memory?.properties?.guest?.pattern).toBeDefined();
  });

  it('requires what KubeVirt requires', () => {
    const vmi = root('virtualmachineinstances');
    expect(vmi.required).toEqual(['spec']);
    expect(vmi.properties?.spec?.required).toEqual(['domain']);
    expect(vmi.properties?.spec?.properties?.domain?.required).toEqual(['devices']);
    expect(root('virtualmachines').properties?.spec?.required).toEqual(['template']);
  });

  it('leaks none of our internal keywords', () => {
    const text = JSON.stringify(crds());
    for (const keyword of INTERNAL_KEYWORDS) expect(text).not.toContain(keyword);
    expect(text).not.toContain('~kind');
    expect(text).not.toContain('patternProperties');
  });

  it('serializes to YAML documents that parse back to the same objects', () => {
    const docs = parseAllDocuments(crdYaml()).map((d) => d.toJS() as unknown);
    expect(docs).toEqual(crds());
  });
});

describe('chart templates', () => {
  it('wrap each CRD in the crds.enabled gate with the chart metadata helper', () => {
    const templates = crdTemplates();
    expect([...templates.keys()]).toContain('crd-virtualmachines.yaml');
    const vm = templates.get('crd-virtualmachines.yaml') ?? '';
    expect(vm).toMatch(/^\{\{- \/\* Generated by packages\/schema\/scripts\/write-crds.ts/);
    expect(vm).toContain('{{- if .Values.crds.enabled }}\napiVersion: apiextensions.k8s.io/v1');
    expect(vm).toContain(
      '  name: virtualmachines.kubevirt.io\n  {{- include "kubevirt-ts.crd.metadata" . | nindent 2 }}\nspec:',
    );
    expect(vm.trimEnd().endsWith('{{- end }}')).toBe(true);
  });

  it('are committed as generated (run `pnpm --filter @kubevirt-ts/schema crds` after changing a schema)', async () => {
    for (const [file, content] of crdTemplates()) {
      const committed = await readFile(
        new URL(`../../../charts/kubevirt-ts/templates/${file}`, import.meta.url),
        'utf8',
      );
      expect(committed, file).toBe(content);
    }
  });
});
