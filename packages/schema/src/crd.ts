// Renders the CustomResourceDefinitions from the schema definitions. The output is a structural OpenAPI v3 schema
// as the API server requires, with x-kubernetes-preserve-unknown-fields on every object node: nothing a user
// sends is pruned before the validating webhook sees it, so a field we do not support yet is rejected by name
// instead of vanishing silently (DESIGN.md §1).
import type { TSchema } from 'typebox';
import { stringify } from 'yaml';
import { KINDS, type KindInfo } from './kinds.ts';
import {
  PASSTHROUGH,
  QUANTITY,
  QUANTITY_PATTERN,
  SAME_AS,
  UNSUPPORTED,
  UNSUPPORTED_VALUES,
} from './types/builders.ts';

/** The subset of apiextensions.k8s.io/v1 JSONSchemaProps this package emits. */
export interface JSONSchemaProps {
  type?: 'object' | 'array' | 'string' | 'integer' | 'number' | 'boolean';
  description?: string;
  properties?: Record<string, JSONSchemaProps>;
  required?: string[];
  additionalProperties?: JSONSchemaProps;
  items?: JSONSchemaProps;
  enum?: (string | number)[];
  anyOf?: JSONSchemaProps[];
  pattern?: string;
  minimum?: number;
  maximum?: number;
  nullable?: boolean;
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-int-or-string'?: true;
}

export interface CustomResourceColumnDefinition {
  name: string;
  type: string;
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface CustomResourceDefinition {
  apiVersion: 'apiextensions.k8s.io/v1';
  kind: 'CustomResourceDefinition';
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec: {
    group: string;
    names: {
      kind: string;
      listKind: string;
      plural: string;
      singular: string;
      shortNames?: string[];
      categories?: string[];
    };
    scope: 'Namespaced' | 'Cluster';
    versions: {
      name: string;
      served: boolean;
      storage: boolean;
      schema: { openAPIV3Schema: JSONSchemaProps };
      subresources?: {
        status?: Record<string, never>;
        scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
      };
      additionalPrinterColumns?: CustomResourceColumnDefinition[];
    }[];
  };
}

type Node = Record<string, unknown>;

function isIntOrString(node: Node): boolean {
  return node['x-kubernetes-int-or-string'] === true;
}

function copyCommon(node: Node, out: JSONSchemaProps): JSONSchemaProps {
  let description = typeof node.description === 'string' ? node.description : undefined;
  if (typeof node[UNSUPPORTED] === 'string') {
    // kubectl explain shows it; the webhook refuses the field.
    const note = node[UNSUPPORTED] === '' ? '' : ` (${node[UNSUPPORTED]})`;
    description = `${description === undefined ? '' : `${description} `}Not supported by kubevirt-ts yet${note}.`;
  }
  if (description !== undefined) out.description = description;
  if (typeof node.minimum === 'number') out.minimum = node.minimum;
  if (typeof node.maximum === 'number') out.maximum = node.maximum;
  return out;
}

/** Converts one TypeBox node into its structural CRD form. */
export function toStructural(schema: TSchema): JSONSchemaProps {
  const node = schema as Node;

  if (isIntOrString(node)) {
    const out: JSONSchemaProps = {
      anyOf: [{ type: 'integer' }, { type: 'string' }],
      'x-kubernetes-int-or-string': true,
    };
    if (node[QUANTITY] === true) out.pattern = QUANTITY_PATTERN;
    return copyCommon(node, out);
  }

  if (Array.isArray(node.anyOf)) {
    // The only other union we write is `T | null` (timestamps KubeVirt serializes as null): nullable T.
    const branches = node.anyOf as Node[];
    const nonNull = branches.filter((b) => b.type !== 'null');
    if (nonNull.length === 1 && branches.length === 2) {
      return copyCommon(node, { ...toStructural(nonNull[0] as TSchema), nullable: true });
    }
    throw new Error(`unsupported union in a CRD schema: ${JSON.stringify(node)}`);
  }

  if (Array.isArray(node.enum)) {
    const values = node.enum as (string | number)[];
    return copyCommon(node, {
      type: values.every((v) => typeof v === 'number') ? 'integer' : 'string',
      enum: [...values],
    });
  }

  switch (node.type) {
    case 'object': {
      const out: JSONSchemaProps = { type: 'object' };
      const patternProperties = node.patternProperties as Record<string, TSchema> | undefined;
      const properties = node.properties as Record<string, TSchema> | undefined;
      if (patternProperties !== undefined) {
        const [value] = Object.values(patternProperties);
        if (value !== undefined) out.additionalProperties = toStructural(value);
      } else if (properties !== undefined && Object.keys(properties).length > 0) {
        out.properties = Object.fromEntries(
          Object.entries(properties).map(([name, child]) => [name, toStructural(child)]),
        );
        const required = node.required as string[] | undefined;
        if (required !== undefined && required.length > 0) out.required = [...required];
      }
      out['x-kubernetes-preserve-unknown-fields'] = true;
      return copyCommon(node, out);
    }
    case 'array':
      return copyCommon(node, { type: 'array', items: toStructural(node.items as TSchema) });
    case 'string':
    case 'integer':
    case 'number':
    case 'boolean':
      return copyCommon(node, { type: node.type });
    default:
      throw new Error(`schema node without a CRD type: ${JSON.stringify(node)}`);
  }
}

/** The root schema of a kind: metadata stays `{type: object}`, the only form the API server accepts there. */
function rootSchema(info: KindInfo): JSONSchemaProps {
  const root = toStructural(info.schema);
  root.description = info.description;
  if (root.properties !== undefined) {
    root.properties.metadata = { type: 'object' };
    root.properties.apiVersion = { type: 'string', description: 'The API version of this object.' };
    root.properties.kind = { type: 'string', description: 'The kind of this object.' };
  }
  return root;
}

export function crdFor(info: KindInfo): CustomResourceDefinition {
  const version: CustomResourceDefinition['spec']['versions'][number] = {
    name: info.version,
    served: true,
    storage: true,
    schema: { openAPIV3Schema: rootSchema(info) },
  };
  if (info.statusSubresource || info.scale !== undefined) {
    version.subresources = {};
    if (info.statusSubresource) version.subresources.status = {};
    if (info.scale !== undefined) version.subresources.scale = { ...info.scale };
  }
  if (info.printerColumns.length > 0) {
    version.additionalPrinterColumns = info.printerColumns.map((c) => ({ ...c }));
  }
  const names: CustomResourceDefinition['spec']['names'] = {
    kind: info.kind,
    listKind: `${info.kind}List`,
    plural: info.plural,
    singular: info.singular,
  };
  if (info.shortNames.length > 0) names.shortNames = [...info.shortNames];
  if (info.categories.length > 0) names.categories = [...info.categories];
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${info.plural}.${info.group}` },
    spec: { group: info.group, names, scope: info.scope, versions: [version] },
  };
}

/** Every CRD of kubevirt-ts, as plain objects (apply them with any client). */
export function crds(): CustomResourceDefinition[] {
  return KINDS.map(crdFor);
}

/** Every CRD as one multi-document YAML stream. */
export function crdYaml(): string {
  return crds()
    .map((crd) => stringify(crd, { lineWidth: 0 }))
    .join('---\n');
}

// Keywords of ours that must never reach the API server; crd.test.ts checks none survives.
export const INTERNAL_KEYWORDS = [UNSUPPORTED, UNSUPPORTED_VALUES, PASSTHROUGH, QUANTITY, SAME_AS] as const;
