// `helm lint --strict` on the chart, and values.schema.json doing its job: a typo or a wrong type in a values file
// fails lint (and install) naming the key, instead of being ignored.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { chartDir, lint, renderError } from './helm.ts';

interface SchemaNode {
  type?: string;
  properties?: Record<string, SchemaNode>;
  additionalProperties?: boolean | SchemaNode;
  $ref?: string;
  items?: SchemaNode;
}

const schema = JSON.parse(readFileSync(join(chartDir, 'values.schema.json'), 'utf8')) as SchemaNode & {
  definitions: Record<string, SchemaNode>;
};
const values = parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')) as Record<string, unknown>;

function resolve(node: SchemaNode): SchemaNode {
  if (node.$ref === undefined) return node;
  const name = node.$ref.replace('#/definitions/', '');
  const target = schema.definitions[name];
  if (target === undefined) throw new Error(`values.schema.json: dangling $ref ${node.$ref}`);
  return resolve(target);
}

/** Every object schema reachable from the root: each must refuse unknown keys or say what its values are. */
function objectSchemas(
  node: SchemaNode,
  path: string,
  out: [string, SchemaNode][] = [],
): [string, SchemaNode][] {
  const n = resolve(node);
  if (n.type === 'object') out.push([path, n]);
  for (const [k, child] of Object.entries(n.properties ?? {})) objectSchemas(child, `${path}.${k}`, out);
  if (n.items !== undefined) objectSchemas(n.items, `${path}[]`, out);
  return out;
}

describe('helm lint --strict', () => {
  it('passes with the default values', () => {
    const r = lint();
    expect(r.status, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('0 chart(s) failed');
  });

  it('passes with every optional part turned on', () => {
    const r = lint({
      useEmulation: true,
      networkPolicy: { enabled: true },
      kubevirt: { featureGates: ['HostDisk'] },
      launcher: { nodeSelector: { a: 'b' }, tolerations: [{ key: 'k', operator: 'Exists' }] },
    });
    expect(r.status, r.stdout + r.stderr).toBe(0);
  });

  it('fails on a misspelt top-level key, naming it', () => {
    const r = lint({ controler: { replicaCount: 3 } });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(/additional properties 'controler' not allowed/);
  });

  it('fails on a misspelt nested key, naming it and where it is', () => {
    const r = lint({ handler: { securityContext: { runAsUsr: 0 } } });
    expect(r.status).not.toBe(0);
    expect(r.stdout + r.stderr).toMatch(
      /handler\/securityContext.*additional properties 'runAsUsr' not allowed/s,
    );
  });

  it('fails on a value of the wrong type or outside its range', () => {
    const wrongType = lint({ controller: { replicaCount: 'two' } });
    expect(wrongType.status).not.toBe(0);
    expect(wrongType.stdout + wrongType.stderr).toMatch(/controller\/replicaCount/);
    const outOfRange = lint({ api: { webhookTimeoutSeconds: 60 } });
    expect(outOfRange.status).not.toBe(0);
    expect(outOfRange.stdout + outOfRange.stderr).toMatch(/api\/webhookTimeoutSeconds/);
  });

  it('refuses the same values at install time (helm template validates against the schema too)', () => {
    expect(renderError({ global: { logLevel: 'verbose' } })).toMatch(/global\/logLevel/);
  });
});

describe('values.schema.json', () => {
  it('refuses unknown keys in every object it defines, except maps whose keys are free by nature', () => {
    const freeMaps = new Set([
      '$.global.commonLabels',
      '$.kubevirt.extraConfiguration',
      '$.controller.nodeSelector',
      '$.api.nodeSelector',
      '$.handler.nodeSelector',
      '$.launcher.nodeSelector',
    ]);
    const open = objectSchemas(schema, '$').filter(
      ([path, n]) => n.additionalProperties !== false && n.properties !== undefined && !freeMaps.has(path),
    );
    expect(open.map(([path]) => path)).toEqual([]);
    expect(schema.additionalProperties).toBe(false);
  });

  it('describes exactly the keys values.yaml has, so no key is undocumented or unusable', () => {
    const schemaKeys = (node: SchemaNode): string[] => Object.keys(resolve(node).properties ?? {}).sort();
    expect(schemaKeys(schema)).toEqual(Object.keys(values).sort());
    for (const [block, content] of Object.entries(values)) {
      if (content === null || typeof content !== 'object' || Array.isArray(content)) continue;
      const node = schema.properties?.[block];
      expect(node, block).toBeDefined();
      expect(schemaKeys(node as SchemaNode), block).toEqual(Object.keys(content).sort());
    }
  });
});
