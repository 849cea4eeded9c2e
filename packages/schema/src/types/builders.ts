// The vocabulary every schema definition in this package is written in. Each helper returns a plain TypeBox schema,
// so one definition yields the TypeScript type (Static<>), the CRD's OpenAPI schema (crd.ts) and the runtime
// validation (validation/structural.ts). Our own annotations are `x-kubevirt-ts-*` keywords: JSON Schema validators
// ignore unknown keywords, and crd.ts strips them before a schema reaches the API server.
import Type, { type Static, type TSchema, type TSchemaOptions } from 'typebox';

/**
 * On a field KubeVirt has and kubevirt-ts does not implement yet. Its value is a short note (may be empty) saying
 * what is missing. The validating webhook rejects the field naming its path; docs/api-coverage.md lists it.
 */
export const UNSUPPORTED = 'x-kubevirt-ts-unsupported';
/** On an enum: the values KubeVirt knows that kubevirt-ts does not implement yet. */
export const UNSUPPORTED_VALUES = 'x-kubevirt-ts-unsupported-values';
/**
 * On a Kubernetes core type we copy verbatim into the launcher pod (affinity, tolerations, template metadata…):
 * its own fields are typed for TypeScript and `kubectl explain`, but unknown keys below it are not rejected, because
 * the Kubernetes API validates them when the pod is created and newer Kubernetes releases add fields there.
 */
export const PASSTHROUGH = 'x-kubevirt-ts-passthrough';
/** On an int-or-string node that holds a Kubernetes resource quantity ("128Mi", "500m", 2). */
export const QUANTITY = 'x-kubevirt-ts-quantity';

/** On a schema that embeds another kind's spec (a VM's template spec is a VMI spec): docs list it once. */
export const SAME_AS = 'x-kubevirt-ts-same-as';

/** Kubernetes' own grammar for quantities (k8s.io/apimachinery resource.Quantity), also emitted into the CRDs. */
export const QUANTITY_PATTERN =
  '^(\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\\+|-)?(([0-9]+(\\.[0-9]*)?)|(\\.[0-9]+))))?$';

/** Returns a copy of a TypeBox schema with extra keywords; TypeBox keeps its modifiers in non-enumerable keys. */
export function annotate<T extends TSchema>(schema: T, extra: Record<string, unknown>): T {
  const copy = Object.create(
    Object.getPrototypeOf(schema) as object | null,
    Object.getOwnPropertyDescriptors(schema),
  ) as T;
  return Object.assign(copy, extra);
}

/** An optional field. */
export function opt<T extends TSchema>(schema: T) {
  return Type.Optional(schema);
}

/** An optional field that KubeVirt has and we do not implement yet (see UNSUPPORTED). */
export function notYet<T extends TSchema>(schema: T, note = '') {
  return Type.Optional(annotate(schema, { [UNSUPPORTED]: note }));
}

/** An optional Kubernetes core type passed through to the launcher pod (see PASSTHROUGH). */
export function passthrough<T extends TSchema>(schema: T): T {
  return annotate(schema, { [PASSTHROUGH]: true });
}

export function str(description?: string) {
  return Type.String(description === undefined ? {} : { description });
}

export function bool(description?: string) {
  return Type.Boolean(description === undefined ? {} : { description });
}

/** A non-negative integer (KubeVirt's uint32/uint fields and counts). */
export function uint(description?: string) {
  return Type.Integer({ minimum: 0, ...(description === undefined ? {} : { description }) });
}

export function int(description?: string) {
  return Type.Integer(description === undefined ? {} : { description });
}

/** A string enum. `unsupported` lists KubeVirt's values that kubevirt-ts does not implement yet. */
export function enumOf<const V extends string[]>(
  values: readonly [...V],
  options: { description?: string; unsupported?: readonly V[number][] } = {},
) {
  const extra: TSchemaOptions = { type: 'string' };
  if (options.description !== undefined) extra.description = options.description;
  if (options.unsupported !== undefined && options.unsupported.length > 0)
    extra[UNSUPPORTED_VALUES] = [...options.unsupported];
  return Type.Enum([...values] as [...V], extra);
}

/** A Kubernetes resource quantity: an integer or a string such as "128Mi". */
export function quantity(description?: string) {
  return Type.Union([Type.Integer(), Type.String()], {
    'x-kubernetes-int-or-string': true,
    [QUANTITY]: true,
    ...(description === undefined ? {} : { description }),
  });
}

export type Quantity = Static<ReturnType<typeof quantity>>;

/** map[string]string */
export function stringMap(description?: string) {
  return Type.Record(Type.String(), Type.String(), description === undefined ? {} : { description });
}

/** A Kubernetes ResourceList: resource name → quantity. */
export function quantityMap(description?: string) {
  return Type.Record(Type.String(), quantity(), description === undefined ? {} : { description });
}

/** An object whose contents we do not describe (only for fields marked notYet, or opaque blobs). */
export function looseObject(description?: string) {
  return Type.Unsafe<Record<string, unknown>>({
    type: 'object',
    [PASSTHROUGH]: true,
    ...(description === undefined ? {} : { description }),
  });
}

export function arrayOf<T extends TSchema>(items: T, description?: string) {
  return Type.Array(items, description === undefined ? {} : { description });
}

export function obj<P extends Record<string, TSchema>>(properties: P, description?: string) {
  return Type.Object(properties, description === undefined ? {} : { description });
}
