// JSON helpers of the admission webhooks: equality with JSON's semantics, the RFC 6902 patch that turns the
// object the API server sent into the mutated one, and the Kubernetes field paths at which two values differ.
import type { JsonPatchOperation } from '@kubevirt-ts/runtime';

export type JsonObject = Record<string, unknown>;

export function isObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Keys whose value is not undefined: JSON.stringify drops the others, so they do not exist on the wire. */
function definedKeys(o: JsonObject): string[] {
  return Object.keys(o).filter((k) => o[k] !== undefined);
}

/** Deep equality of JSON values (undefined properties count as absent; key order does not matter). */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    return a.every((v, i) => jsonEqual(v, b[i]));
  }
  if (isObject(a)) {
    if (!isObject(b)) return false;
    const ka = definedKeys(a);
    if (ka.length !== definedKeys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** A member's value, never one inherited from Object.prototype (`valueOf`, `constructor` are legal JSON keys). */
const own = (o: JsonObject, key: string): unknown => (Object.hasOwn(o, key) ? o[key] : undefined);

const escape = (segment: string): string => segment.replaceAll('~', '~0').replaceAll('/', '~1');

function diffInto(before: unknown, after: unknown, pointer: string, ops: JsonPatchOperation[]): void {
  if (jsonEqual(before, after)) return;
  if (isObject(before) && isObject(after)) {
    for (const key of definedKeys(before)) {
      if (own(after, key) === undefined) ops.push({ op: 'remove', path: `${pointer}/${escape(key)}` });
    }
    for (const key of definedKeys(after)) {
      const path = `${pointer}/${escape(key)}`;
      if (own(before, key) === undefined) ops.push({ op: 'add', path, value: after[key] });
      else diffInto(before[key], after[key], path, ops);
    }
    return;
  }
  if (Array.isArray(before) && Array.isArray(after)) {
    // Element-wise when only items changed or were appended (finalizers, defaulted disks); a list that shrank or
    // was reordered is replaced whole, which is both correct and easy to read in an audit log.
    if (after.length >= before.length) {
      for (let i = 0; i < before.length; i++) diffInto(before[i], after[i], `${pointer}/${i}`, ops);
      for (let i = before.length; i < after.length; i++)
        ops.push({ op: 'add', path: `${pointer}/-`, value: after[i] });
      return;
    }
  }
  ops.push({ op: 'replace', path: pointer, value: after });
}

/** The JSON patch that turns `before` into `after` (empty when they are equal). */
export function createPatch(before: unknown, after: unknown): JsonPatchOperation[] {
  const ops: JsonPatchOperation[] = [];
  diffInto(before, after, '', ops);
  return ops;
}

/** A Kubernetes field path segment: `.name` for plain keys, `[key]` for keys a dot path cannot carry. */
function childPath(base: string, key: string): string {
  if (/^[A-Za-z_][A-Za-z0-9_-]*$/.test(key)) return base === '' ? key : `${base}.${key}`;
  return `${base}[${key}]`;
}

/**
 * The field paths (`spec.domain.cpu.cores`, `spec.volumes[1]`) where `a` and `b` differ, deepest first found,
 * at most `limit` of them. A changed list length reports the list itself.
 */
export function changedPaths(a: unknown, b: unknown, base: string, limit = 10): string[] {
  const out: string[] = [];
  const walk = (x: unknown, y: unknown, path: string): void => {
    if (out.length >= limit || jsonEqual(x, y)) return;
    if (isObject(x) && isObject(y)) {
      const keys = new Set([...definedKeys(x), ...definedKeys(y)]);
      for (const k of [...keys].sort()) walk(own(x, k), own(y, k), childPath(path, k));
      return;
    }
    if (Array.isArray(x) && Array.isArray(y) && x.length === y.length) {
      x.forEach((v, i) => walk(v, y[i], `${path}[${i}]`));
      return;
    }
    out.push(path);
  };
  walk(a, b, base);
  return out;
}
