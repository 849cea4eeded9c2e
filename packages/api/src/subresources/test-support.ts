// Test support for the subresource endpoints (unit tests only; excluded from the build): an in-memory ObjectStore
// that applies JSON patches the way kube-apiserver does, `test` ops included, so the endpoint logic and its
// optimistic concurrency run without a cluster. The integration suite checks the same against the real server.
import type { JsonPatchOperation } from '@kubevirt-ts/runtime';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import jsonPatch from 'fast-json-patch';
import { conflict, notFound, SubresourceError } from './errors.ts';
import type { ObjectStore, PatchOptions } from './store.ts';

function exists(doc: unknown, pointer: string): boolean {
  let node: unknown = doc;
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replaceAll('~1', '/').replaceAll('~0', '~');
    if (typeof node !== 'object' || node === null || !(key in node)) return false;
    node = (node as Record<string, unknown>)[key];
  }
  return true;
}

/**
 * Applies ops to a copy of `doc`, or throws when a `test` does not hold. As in the API server's JSON patch library,
 * a test for null passes on a missing member.
 */
export function applyLikeApiServer<T>(doc: T, ops: JsonPatchOperation[]): T {
  const effective = ops.filter((op) => !(op.op === 'test' && op.value === null && !exists(doc, op.path)));
  return jsonPatch.applyPatch(structuredClone(doc), effective as jsonPatch.Operation[], true, false)
    .newDocument;
}

export interface PatchRecord {
  kind: 'vm' | 'vmi';
  ops: JsonPatchOperation[];
  options: PatchOptions;
}

export class MemoryStore implements ObjectStore {
  readonly vms = new Map<string, VirtualMachine>();
  readonly vmis = new Map<string, VirtualMachineInstance>();
  readonly patches: PatchRecord[] = [];
  /** Called before each VM patch is applied: lets a test change the VM "concurrently". */
  beforeVMPatch: (() => void) | undefined;

  getVM(namespace: string, name: string): Promise<VirtualMachine> {
    const vm = this.vms.get(`${namespace}/${name}`);
    return vm === undefined
      ? Promise.reject(notFound('virtualmachine', name))
      : Promise.resolve(structuredClone(vm));
  }

  findVMI(namespace: string, name: string): Promise<VirtualMachineInstance | undefined> {
    const vmi = this.vmis.get(`${namespace}/${name}`);
    return Promise.resolve(vmi === undefined ? undefined : structuredClone(vmi));
  }

  patchVM(
    namespace: string,
    name: string,
    ops: JsonPatchOperation[],
    options: PatchOptions = {},
  ): Promise<void> {
    this.beforeVMPatch?.();
    return this.#patch(this.vms, 'vm', namespace, name, ops, options);
  }

  patchVMI(
    namespace: string,
    name: string,
    ops: JsonPatchOperation[],
    options: PatchOptions = {},
  ): Promise<void> {
    return this.#patch(this.vmis, 'vmi', namespace, name, ops, options);
  }

  #patch<T>(
    map: Map<string, T>,
    kind: 'vm' | 'vmi',
    namespace: string,
    name: string,
    ops: JsonPatchOperation[],
    options: PatchOptions,
  ): Promise<void> {
    const key = `${namespace}/${name}`;
    const resource = kind === 'vm' ? 'virtualmachine' : 'virtualmachineinstance';
    const current = map.get(key);
    if (current === undefined) return Promise.reject(notFound(resource, name));
    this.patches.push({ kind, ops, options });
    let next: T;
    try {
      next = applyLikeApiServer(current, ops);
    } catch (err) {
      return Promise.reject(conflict(resource, name, `the object changed: ${String(err)}`));
    }
    if (options.dryRun !== true) map.set(key, next);
    return Promise.resolve();
  }
}

/** The SubresourceError `fn` throws; fails the test if it throws nothing or something else. */
export function errorOf(fn: () => unknown): SubresourceError {
  try {
    fn();
  } catch (err) {
    if (err instanceof SubresourceError) return err;
    throw err;
  }
  throw new Error('expected a SubresourceError');
}
