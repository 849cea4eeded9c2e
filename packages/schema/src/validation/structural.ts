// Checks a value against its schema definition: types, enums, required fields and bounds through TypeBox's
// compiled JSON Schema validator, then our own walk over the same definition for what JSON Schema cannot say:
// fields we do not support yet, fields nobody has, enum values we do not support yet, and quantity grammar.
import type { TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import { parseQuantity } from '../quantity.ts';
import { PASSTHROUGH, QUANTITY, UNSUPPORTED, UNSUPPORTED_VALUES } from '../types/builders.ts';
import { dedupe, invalid, notSupported, required, show, type FieldPath, type StatusCause } from './causes.ts';

type Node = Record<string, unknown>;

interface TypeBoxError {
  keyword: string;
  schemaPath: string;
  instancePath: string;
  params: Record<string, unknown>;
  message: string;
}

const validators = new WeakMap<TSchema, Validator>();

function validatorFor(schema: TSchema): Validator {
  let validator = validators.get(schema);
  if (validator === undefined) {
    validator = Compile(schema);
    validators.set(schema, validator);
  }
  return validator;
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * A deep copy without null-valued object properties. The API server drops nulls of non-nullable fields before
 * admission (structural-schema pruning), so the webhooks never see them; doing the same here keeps validation
 * identical for callers that hand us raw manifests.
 */
export function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (isPlainObject(value)) {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
    return out;
  }
  return value;
}

function childSchema(node: Node | undefined, segment: string): Node | undefined {
  if (node === undefined) return undefined;
  if (node.type === 'array') return node.items as Node | undefined;
  const patternProperties = node.patternProperties as Record<string, Node> | undefined;
  if (patternProperties !== undefined) return Object.values(patternProperties)[0];
  const properties = node.properties as Record<string, Node> | undefined;
  return properties?.[segment];
}

/** Turns a JSON pointer from TypeBox into a Kubernetes field path, using the schema to tell map keys apart. */
function pointerToPath(base: FieldPath, schema: Node, pointer: string): FieldPath {
  if (pointer === '') return base;
  let path = base;
  let node: Node | undefined = schema;
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (node?.type === 'array' || (node === undefined && /^\d+$/.test(segment)))
      path = path.index(Number(segment));
    else if (node?.patternProperties !== undefined) path = path.key(segment);
    else path = path.child(segment);
    node = childSchema(node, segment);
  }
  return path;
}

const ARTICLE: Record<string, string> = {
  object: 'an object',
  array: 'a list',
  string: 'a string',
  integer: 'an integer',
  number: 'a number',
  boolean: 'a boolean',
  null: 'null',
};

function jsonType(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'list';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function valueAt(root: unknown, pointer: string): unknown {
  let value = root;
  if (pointer === '') return value;
  for (const raw of pointer.slice(1).split('/')) {
    const segment = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (Array.isArray(value)) value = value[Number(segment)];
    else if (isPlainObject(value)) value = value[segment];
    else return undefined;
  }
  return value;
}

function supportedValues(node: Node | undefined): string[] {
  const values = Array.isArray(node?.enum) ? (node.enum as unknown[]) : [];
  const unsupported = Array.isArray(node?.[UNSUPPORTED_VALUES])
    ? (node[UNSUPPORTED_VALUES] as unknown[])
    : [];
  return values.filter((v) => !unsupported.includes(v)).map((v) => show(v));
}

function schemaAt(schema: Node, pointer: string): Node | undefined {
  let node: Node | undefined = schema;
  if (pointer === '') return node;
  for (const raw of pointer.slice(1).split('/')) {
    node = childSchema(node, raw.replaceAll('~1', '/').replaceAll('~0', '~'));
  }
  return node;
}

function mapError(error: TypeBoxError, schema: Node, value: unknown, base: FieldPath): StatusCause[] {
  const path = pointerToPath(base, schema, error.instancePath);
  const actual = valueAt(value, error.instancePath);
  switch (error.keyword) {
    case 'required': {
      const names = (error.params.requiredProperties as string[] | undefined) ?? [];
      return names.map((name) => required(path.child(name), 'Required value'));
    }
    case 'type': {
      const expected = String(error.params.type);
      return [
        invalid(path, `must be ${ARTICLE[expected] ?? expected}, not ${jsonType(actual)} ${show(actual)}`),
      ];
    }
    case 'enum':
      return [
        notSupported(
          path,
          `Unsupported value: ${show(actual)}: supported values: ${supportedValues(schemaAt(schema, error.instancePath)).join(', ')}`,
        ),
      ];
    case 'anyOf':
      // Our only anyOf is int-or-string (quantities); its branches' errors are dropped below.
      return [
        invalid(path, `must be an integer or a quantity string such as "128Mi", not ${jsonType(actual)}`),
      ];
    case 'minimum':
      return [
        invalid(
          path,
          `Invalid value: ${show(actual)}: must be greater than or equal to ${String(error.params.limit)}`,
        ),
      ];
    case 'maximum':
      return [
        invalid(
          path,
          `Invalid value: ${show(actual)}: must be less than or equal to ${String(error.params.limit)}`,
        ),
      ];
    default:
      return [invalid(path, `Invalid value: ${show(actual)}: ${error.message}`)];
  }
}

/**
 * Go's zero values (false, 0, "", []) are what KubeVirt's Go types treat as "not set" (omitempty), and exported
 * manifests carry them; a not-yet-supported field holding one asks for nothing, so it is not refused.
 */
function isUnset(value: unknown): boolean {
  return value === false || value === 0 || value === '' || (Array.isArray(value) && value.length === 0);
}

function unsupportedMessage(note: unknown): string {
  return typeof note === 'string' && note !== ''
    ? `not supported yet by kubevirt-ts (${note})`
    : 'not supported yet by kubevirt-ts';
}

/** `passthrough`: inside a Kubernetes type we pass on to the pod, where unknown keys are the API server's call. */
function walk(node: Node, value: unknown, path: FieldPath, out: StatusCause[], passthrough = false): void {
  if (value === undefined || value === null) return;
  const lenient = passthrough || node[PASSTHROUGH] === true;

  if (typeof value === 'string' && Array.isArray(node.enum)) {
    const unsupported = node[UNSUPPORTED_VALUES];
    if (Array.isArray(unsupported) && unsupported.includes(value)) {
      out.push(
        notSupported(
          path,
          `Unsupported value: ${show(value)}: not supported yet by kubevirt-ts; supported values: ${supportedValues(node).join(', ')}`,
        ),
      );
    }
    return;
  }

  if (node[QUANTITY] === true) {
    if ((typeof value === 'string' || typeof value === 'number') && parseQuantity(value) === undefined) {
      out.push(
        invalid(
          path,
          `Invalid value: ${show(value)}: must be a quantity such as "128Mi", "2Gi", "500m" or 1`,
        ),
      );
    }
    return;
  }

  if (Array.isArray(value)) {
    if (node.type === 'array' && node.items !== undefined) {
      value.forEach((item, i) => walk(node.items as Node, item, path.index(i), out, lenient));
    }
    return;
  }

  if (!isPlainObject(value) || node.type !== 'object') return;

  const patternProperties = node.patternProperties as Record<string, Node> | undefined;
  if (patternProperties !== undefined) {
    const valueSchema = Object.values(patternProperties)[0];
    if (valueSchema !== undefined) {
      for (const [k, v] of Object.entries(value)) walk(valueSchema, v, path.key(k), out, lenient);
    }
    return;
  }

  const properties = (node.properties as Record<string, Node> | undefined) ?? {};
  for (const [k, v] of Object.entries(value)) {
    const child = properties[k];
    if (child === undefined) {
      if (!lenient) out.push(invalid(path.child(k), `unknown field ${show(k)}`));
      continue;
    }
    if (child[UNSUPPORTED] !== undefined) {
      if (!isUnset(v)) out.push(notSupported(path.child(k), unsupportedMessage(child[UNSUPPORTED])));
      continue;
    }
    walk(child, v, path.child(k), out, lenient);
  }
}

export interface StructureResult {
  causes: StatusCause[];
  /** True when the value does not have the schema's types: semantic rules must not run on it. */
  typeErrors: boolean;
}

/**
 * Checks `value` (already without nulls) against `schema`, reporting paths under `base`. Never throws for any
 * JSON value.
 */
export function checkStructure(schema: TSchema, value: unknown, base: FieldPath): StructureResult {
  const node = schema as Node;
  const causes: StatusCause[] = [];
  const validator = validatorFor(schema);
  const typeErrors = !validator.Check(value);
  if (typeErrors) {
    for (const error of validator.Errors(value) as unknown as Iterable<TypeBoxError>) {
      // Errors inside anyOf branches only repeat the anyOf error itself.
      if (error.schemaPath.includes('/anyOf/')) continue;
      causes.push(...mapError(error, node, value, base));
    }
  }
  walk(node, value, base, causes);
  return { causes: dedupe(causes), typeErrors };
}
