// One error type for gRPC failures on both sides: a client sees a failed call as an RpcError with the gRPC status
// code, and a server implementation throws an RpcError to answer with a specific status (anything else is INTERNAL).
import { status } from '@grpc/grpc-js';
import type { Metadata, ServiceError, StatusObject } from '@grpc/grpc-js';

export interface RpcErrorOptions {
  /** Overrides the default message (`CODE: details`), e.g. to say which call on which target failed. */
  message?: string;
  metadata?: Metadata;
  cause?: unknown;
}

export class RpcError extends Error {
  /** The gRPC status code (`grpc.status.DEADLINE_EXCEEDED`, …). */
  readonly code: status;
  /** The status details as sent on the wire. */
  readonly details: string;
  readonly metadata: Metadata | undefined;

  constructor(code: status, details: string, options: RpcErrorOptions = {}) {
    super(options.message ?? `${statusName(code)}: ${details}`, { cause: options.cause });
    this.name = 'RpcError';
    this.code = code;
    this.details = details;
    this.metadata = options.metadata;
  }
}

/** `4` → `DEADLINE_EXCEEDED`. */
export function statusName(code: number): string {
  return status[code] ?? `status ${code}`;
}

/** Whether a value is the error grpc-js hands to client callbacks and stream 'error' listeners. */
export function isServiceError(error: unknown): error is ServiceError {
  return (
    error instanceof Error &&
    typeof (error as Partial<ServiceError>).code === 'number' &&
    typeof (error as Partial<ServiceError>).details === 'string'
  );
}

/** What a server sends for an error its implementation threw: an RpcError keeps its code, anything else is INTERNAL. */
export function toStatus(error: unknown): Pick<StatusObject, 'code' | 'details'> {
  if (error instanceof RpcError) return { code: error.code, details: error.details };
  if (isServiceError(error)) return { code: error.code, details: error.details };
  return { code: status.INTERNAL, details: error instanceof Error ? error.message : String(error) };
}

/** A status object grpc-js server calls accept as an error ('error' event or unary callback). */
export function toServerError(error: unknown): Error & Pick<StatusObject, 'code' | 'details'> {
  const { code, details } = toStatus(error);
  return Object.assign(new Error(details), { code, details });
}
