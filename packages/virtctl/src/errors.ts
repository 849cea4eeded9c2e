// What virtctl tells a user when a call fails: the API server's Status turned into one sentence that names the
// object, what was refused and why, and what to do (no such VM, not running, forbidden with the verb and
// resource RBAC needs, the subresource API not installed or virt-api down, the cluster unreachable).

/** A wrong command line: exit code 2, as kubectl's. */
export class UsageError extends Error {
  readonly exitCode = 2;
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failed operation: exit code 1. */
export class VirtctlError extends Error {
  readonly exitCode: number = 1;
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'VirtctlError';
  }
}

export type Kind = 'VirtualMachine' | 'VirtualMachineInstance';

/** The call that failed, in the words a message needs. */
export interface Action {
  /** What the user asked, as a verb phrase: `start`, `open the console of`. */
  what: string;
  kind: Kind;
  namespace: string;
  name: string;
  /** The RBAC verb and resource the call needs. */
  verb: 'get' | 'update';
  resource: 'virtualmachines' | 'virtualmachineinstances';
  subresource: string;
}

export interface ApiStatus {
  kind?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; group?: string; kind?: string };
}

/** The Status in a response body, or a Status made from its text. */
export function statusOf(body: string): ApiStatus {
  try {
    const parsed = JSON.parse(body) as unknown;
    if (typeof parsed === 'object' && parsed !== null) return parsed;
  } catch {
    // not JSON: the text is the message
  }
  return { message: body.trim() };
}

export const SUBRESOURCE_GROUP = 'subresources.kubevirt.io';
export const API_SERVICE = `v1.${SUBRESOURCE_GROUP}`;

const object = (a: Action) => `${a.kind} ${a.namespace}/${a.name}`;

/** The inner reason of a Conflict: `Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm": WHY`. */
function conflictReason(message: string): string {
  const match = /^Operation cannot be fulfilled on [^"]*"[^"]*": ([\s\S]*)$/.exec(message);
  return match?.[1] ?? message;
}

/** Whether a 404 came from the API server not knowing the group at all, rather than from virt-api. */
function apiMissing(status: ApiStatus): boolean {
  return (
    status.details?.kind === undefined &&
    /the server could not find the requested resource|404 page not found/i.test(status.message ?? '') &&
    !/kubevirt-ts/.test(status.message ?? '')
  );
}

/** The error for a response with an error status. */
export function failure(action: Action, code: number, body: string): VirtctlError {
  const status = statusOf(body);
  const message = status.message ?? '';
  switch (code) {
    case 401:
      return new VirtctlError(
        `not authenticated: the API server refused the credentials of your kubeconfig (${message}); ` +
          'log in again or pick another --context',
      );
    case 403:
      return new VirtctlError(
        `forbidden: you may not ${action.what} ${object(action)}: this needs verb "${action.verb}" on ` +
          `"${action.resource}/${action.subresource}" in API group "${SUBRESOURCE_GROUP}" in namespace ` +
          `"${action.namespace}" (the kubevirt.io:edit or kubevirt.io:admin role has it; ask your cluster ` +
          `administrator)${message === '' ? '' : `\n  the API server said: ${message}`}`,
      );
    case 404: {
      if (apiMissing(status)) {
        return new VirtctlError(
          `the ${SUBRESOURCE_GROUP} API is not installed on this cluster (no APIService ${API_SERVICE}): ` +
            'install kubevirt-ts (helm install kubevirt-ts charts/kubevirt-ts), or check --context',
        );
      }
      const kind = status.details?.kind;
      const missing: Kind =
        kind === 'virtualmachineinstance' || kind === 'virtualmachineinstances'
          ? 'VirtualMachineInstance'
          : kind === 'virtualmachine' || kind === 'virtualmachines'
            ? 'VirtualMachine'
            : action.kind;
      if (/not found$/.test(message) && status.details?.name !== undefined) {
        const hint =
          missing === 'VirtualMachineInstance' && action.kind === 'VirtualMachineInstance'
            ? ' (is its VM running? start it with: virtctl start ' + action.name + ')'
            : '';
        return new VirtctlError(
          `${missing} "${status.details.name}" not found in namespace "${action.namespace}"${hint}`,
        );
      }
      return new VirtctlError(`cannot ${action.what} ${object(action)}: ${message}`);
    }
    case 409:
    case 400:
      return new VirtctlError(`cannot ${action.what} ${object(action)}: ${conflictReason(message)}`);
    case 503:
      if (/virt-handler|client certificate/.test(message)) {
        return new VirtctlError(`cannot ${action.what} ${object(action)}: ${message}`);
      }
      return new VirtctlError(
        `virt-api is not available (APIService ${API_SERVICE} is not Available): ${message}; ` +
          'check the virt-api pods in the kubevirt-ts namespace',
      );
    default:
      return new VirtctlError(
        `cannot ${action.what} ${object(action)}: HTTP ${code}${status.reason === undefined ? '' : ` ${status.reason}`}: ${message}`,
      );
  }
}

/** A transport failure (connection refused, TLS) in words. */
export function unreachable(server: string, err: unknown): VirtctlError {
  const why = err instanceof Error ? err.message : String(err);
  return new VirtctlError(
    `cannot reach the Kubernetes API server at ${server}: ${why}; check --kubeconfig and --context`,
    { cause: err },
  );
}
