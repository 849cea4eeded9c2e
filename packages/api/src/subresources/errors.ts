// Failures of the subresource API as Kubernetes Status objects, worded the way the API server (and KubeVirt's
// virt-api, which uses apimachinery's error constructors) words them, so kubectl, client-go and both virtctls show
// them as they would any API error: `Operation cannot be fulfilled on virtualmachine.kubevirt.io "vm": ...`.

export type StatusReason =
  | 'BadRequest'
  | 'Unauthorized'
  | 'Forbidden'
  | 'NotFound'
  | 'MethodNotAllowed'
  | 'Conflict'
  | 'RequestEntityTooLarge'
  | 'ServiceUnavailable'
  | 'InternalError';

/** The resource named in a message: KubeVirt's `v1.Resource("virtualmachine")`. */
export type SubjectResource = 'virtualmachine' | 'virtualmachineinstance';

export interface StatusBody {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: StatusReason;
  details?: { name?: string; group?: string; kind?: string };
  code: number;
}

/** A request that ends with an error status; thrown inside handlers, written by the server. */
export class SubresourceError extends Error {
  readonly code: number;
  readonly reason: StatusReason;
  readonly details: StatusBody['details'];

  constructor(code: number, reason: StatusReason, message: string, details?: StatusBody['details']) {
    super(message);
    this.name = 'SubresourceError';
    this.code = code;
    this.reason = reason;
    this.details = details;
  }

  toStatus(): StatusBody {
    return {
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: this.message,
      reason: this.reason,
      ...(this.details === undefined ? {} : { details: this.details }),
      code: this.code,
    };
  }
}

const GROUP = 'kubevirt.io';
const qualified = (resource: SubjectResource) => `${resource}.${GROUP}`;

/** 409: the request does not fit the object's current state. */
export function conflict(resource: SubjectResource, name: string, why: string): SubresourceError {
  return new SubresourceError(
    409,
    'Conflict',
    `Operation cannot be fulfilled on ${qualified(resource)} ${JSON.stringify(name)}: ${why}`,
    { name, group: GROUP, kind: resource },
  );
}

export function notFound(resource: SubjectResource, name: string): SubresourceError {
  return new SubresourceError(404, 'NotFound', `${qualified(resource)} ${JSON.stringify(name)} not found`, {
    name,
    group: GROUP,
    kind: resource,
  });
}

export function forbidden(resource: SubjectResource, name: string, why: string): SubresourceError {
  return new SubresourceError(
    403,
    'Forbidden',
    `${qualified(resource)} ${JSON.stringify(name)} is forbidden: ${why}`,
    { name, group: GROUP, kind: resource },
  );
}

export function badRequest(message: string): SubresourceError {
  return new SubresourceError(400, 'BadRequest', message);
}

export function internalError(message: string): SubresourceError {
  return new SubresourceError(500, 'InternalError', `Internal error occurred: ${message}`);
}

export function unavailable(message: string): SubresourceError {
  return new SubresourceError(503, 'ServiceUnavailable', message);
}

/** Anything thrown while handling a request, as the error to answer with (unexpected errors become 500s). */
export function asSubresourceError(err: unknown): SubresourceError {
  if (err instanceof SubresourceError) return err;
  return internalError(err instanceof Error ? err.message : String(err));
}
