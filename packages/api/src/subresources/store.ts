// Where the subresource endpoints read and write VMs and VMIs: live reads and JSON patches against the API server
// (never a cache: a state change is computed from, and tested against, the object as it is now). An interface, so
// the endpoint logic runs against an in-memory store in unit tests.
import { CustomObjectsApi, type KubeConfig } from '@kubernetes/client-node';
import {
  apiErrorCode,
  describeApiError,
  jsonPatchOptions,
  type JsonPatchOperation,
} from '@kubevirt-ts/runtime';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import { conflict, internalError, notFound } from './errors.ts';

export interface PatchOptions {
  /** Patch the status subresource instead of the object. */
  status?: boolean;
  /** Server-side dry run: admission runs, nothing is stored. */
  dryRun?: boolean;
}

export interface ObjectStore {
  /** The VM; a 404 SubresourceError when there is none. */
  getVM(namespace: string, name: string): Promise<VirtualMachine>;
  findVMI(namespace: string, name: string): Promise<VirtualMachineInstance | undefined>;
  /** A JSON patch; a failed `test` op is a 409 SubresourceError. */
  patchVM(namespace: string, name: string, ops: JsonPatchOperation[], options?: PatchOptions): Promise<void>;
  patchVMI(namespace: string, name: string, ops: JsonPatchOperation[], options?: PatchOptions): Promise<void>;
}

const VM_REF = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachines' } as const;
const VMI_REF = { group: 'kubevirt.io', version: 'v1', plural: 'virtualmachineinstances' } as const;

/** Whether an API error is a JSON patch `test` op that did not hold (422; some servers answer 409). */
export function isTestFailure(err: unknown): boolean {
  const code = apiErrorCode(err);
  return (
    (code === 422 || code === 409) &&
    /test operation does not apply|testing value|test failed/i.test(describeApiError(err))
  );
}

export class KubernetesObjectStore implements ObjectStore {
  readonly #custom: CustomObjectsApi;

  constructor(kubeConfig: KubeConfig) {
    this.#custom = kubeConfig.makeApiClient(CustomObjectsApi);
  }

  async getVM(namespace: string, name: string): Promise<VirtualMachine> {
    try {
      return (await this.#custom.getNamespacedCustomObject({ ...VM_REF, namespace, name })) as VirtualMachine;
    } catch (err) {
      if (apiErrorCode(err) === 404) throw notFound('virtualmachine', name);
      throw internalError(`unable to retrieve vm [${name}]: ${describeApiError(err)}`);
    }
  }

  async findVMI(namespace: string, name: string): Promise<VirtualMachineInstance | undefined> {
    try {
      return (await this.#custom.getNamespacedCustomObject({
        ...VMI_REF,
        namespace,
        name,
      })) as VirtualMachineInstance;
    } catch (err) {
      if (apiErrorCode(err) === 404) return undefined;
      throw internalError(`unable to retrieve vmi [${name}]: ${describeApiError(err)}`);
    }
  }

  patchVM(namespace: string, name: string, ops: JsonPatchOperation[], options: PatchOptions = {}) {
    return this.#patch('vm', namespace, name, ops, options);
  }

  patchVMI(namespace: string, name: string, ops: JsonPatchOperation[], options: PatchOptions = {}) {
    return this.#patch('vmi', namespace, name, ops, options);
  }

  async #patch(
    kind: 'vm' | 'vmi',
    namespace: string,
    name: string,
    ops: JsonPatchOperation[],
    options: PatchOptions,
  ): Promise<void> {
    const resource = kind === 'vm' ? 'virtualmachine' : 'virtualmachineinstance';
    const request = {
      ...(kind === 'vm' ? VM_REF : VMI_REF),
      namespace,
      name,
      body: ops,
      ...(options.dryRun === true ? { dryRun: 'All' } : {}),
    };
    try {
      if (options.status === true) {
        await this.#custom.patchNamespacedCustomObjectStatus(request, jsonPatchOptions());
      } else {
        await this.#custom.patchNamespacedCustomObject(request, jsonPatchOptions());
      }
    } catch (err) {
      if (isTestFailure(err)) {
        throw conflict(
          resource,
          name,
          `the ${kind === 'vm' ? 'VirtualMachine' : 'VirtualMachineInstance'} changed while this request was ` +
            `handled (${describeApiError(err)}); retry`,
        );
      }
      if (apiErrorCode(err) === 404) throw notFound(resource, name);
      throw internalError(`patching ${resource} ${namespace}/${name}: ${describeApiError(err)}`);
    }
  }
}
