// The unary methods of each contract, by the camelCase name our wrappers use, with the proto RPC they call and the
// deadline class a call gets unless the caller passes its own timeout. The types of requests and responses come
// from the generated service definitions, so a wrapper cannot drift from the .proto file.
import type { Metadata, ServerUnaryCall } from '@grpc/grpc-js';
import type { HandlerDefinition } from './gen/kubevirt_ts/handler/v1/Handler.ts';
import type { InfoDefinition } from './gen/kubevirt_ts/info/v1/Info.ts';
import type { LauncherDefinition } from './gen/kubevirt_ts/launcher/v1/Launcher.ts';
import type { NotifyDefinition } from './gen/kubevirt_ts/notify/v1/Notify.ts';

/** short: liveness and reads; normal: commands; long: commands that may prepare disks and start a domain. */
export type DeadlineClass = 'short' | 'normal' | 'long';

/** Per-class unary deadlines, as KubeVirt's command client uses (5 s / 20 s / 60 s). */
export const DEFAULT_DEADLINES_MS: Readonly<Record<DeadlineClass, number>> = {
  short: 5_000,
  normal: 20_000,
  long: 60_000,
};

/** The method names a generated definition declares (its index signature removed). */
export type RpcName<D> = keyof {
  [K in keyof D as string extends K ? never : number extends K ? never : K]: D[K];
} &
  string;

export interface MethodSpec<D> {
  readonly rpc: RpcName<D>;
  readonly deadline: DeadlineClass;
}

export type MethodTable<D> = Readonly<Record<string, MethodSpec<D>>>;

interface WireMethod {
  requestSerialize(value: never): Buffer;
  requestDeserialize(bytes: Buffer): unknown;
  responseSerialize(value: never): Buffer;
  responseDeserialize(bytes: Buffer): unknown;
}

/** What a caller may send (permissive input type). */
export type RequestIn<M extends WireMethod> = Parameters<M['requestSerialize']>[0];
/** What a server implementation receives (decoded with defaults). */
export type RequestOut<M extends WireMethod> = ReturnType<M['requestDeserialize']>;
/** What a server implementation returns. */
export type ResponseIn<M extends WireMethod> = Parameters<M['responseSerialize']>[0];
/** What a caller receives. */
export type ResponseOut<M extends WireMethod> = ReturnType<M['responseDeserialize']>;

type MethodOf<D, T extends MethodTable<D>, K extends keyof T> = D[T[K]['rpc']] extends infer M extends
  WireMethod
  ? M
  : never;

export interface CallOptions {
  /** Deadline of this call in milliseconds; defaults to its class's deadline on the connection. */
  timeoutMs?: number;
  /** Cancels the call (the promise rejects with CANCELLED). */
  signal?: AbortSignal;
  metadata?: Metadata;
}

/** Promise-returning unary calls, each under a deadline. */
export type UnaryClient<D, T extends MethodTable<D>> = {
  readonly [K in keyof T]: (
    request: RequestIn<MethodOf<D, T, K>>,
    options?: CallOptions,
  ) => Promise<ResponseOut<MethodOf<D, T, K>>>;
};

/**
 * A server's unary methods: return (or resolve to) the response; throw an RpcError to answer with its status code,
 * anything else answers INTERNAL with the error's message.
 */
export type UnaryImplementation<D, T extends MethodTable<D>> = {
  readonly [K in keyof T]: (
    request: RequestOut<MethodOf<D, T, K>>,
    call: ServerUnaryCall<RequestOut<MethodOf<D, T, K>>, ResponseIn<MethodOf<D, T, K>>>,
  ) => ResponseIn<MethodOf<D, T, K>> | Promise<ResponseIn<MethodOf<D, T, K>>>;
};

export const INFO_METHODS = {
  getVersions: { rpc: 'GetVersions', deadline: 'short' },
} as const satisfies MethodTable<InfoDefinition>;

export const LAUNCHER_METHODS = {
  sync: { rpc: 'Sync', deadline: 'long' },
  pause: { rpc: 'Pause', deadline: 'normal' },
  unpause: { rpc: 'Unpause', deadline: 'normal' },
  shutdown: { rpc: 'Shutdown', deadline: 'normal' },
  kill: { rpc: 'Kill', deadline: 'normal' },
  delete: { rpc: 'Delete', deadline: 'normal' },
  softReboot: { rpc: 'SoftReboot', deadline: 'normal' },
  reset: { rpc: 'Reset', deadline: 'normal' },
  getDomain: { rpc: 'GetDomain', deadline: 'short' },
  // libvirt's bulk stats ask QEMU for every group (balloon, block, vCPUs); under TCG on a busy node the first call
  // after boot took ~4.5 s here, too close to the short deadline.
  getStats: { rpc: 'GetStats', deadline: 'normal' },
  getGuestInfo: { rpc: 'GetGuestInfo', deadline: 'short' },
  ping: { rpc: 'Ping', deadline: 'short' },
} as const satisfies MethodTable<LauncherDefinition>;

export const NOTIFY_METHODS = {
  domainEvent: { rpc: 'DomainEvent', deadline: 'normal' },
  k8sEvent: { rpc: 'K8sEvent', deadline: 'normal' },
} as const satisfies MethodTable<NotifyDefinition>;

/** The Handler's unary methods; Console and VNC are streams (see HandlerConnection / HandlerImplementation). */
export const HANDLER_METHODS = {
  pause: { rpc: 'Pause', deadline: 'normal' },
  unpause: { rpc: 'Unpause', deadline: 'normal' },
  softReboot: { rpc: 'SoftReboot', deadline: 'normal' },
  // The handler asks the launcher, which asks the guest agent.
  guestOSInfo: { rpc: 'GuestOSInfo', deadline: 'normal' },
} as const satisfies MethodTable<HandlerDefinition>;

export type InfoClient = UnaryClient<InfoDefinition, typeof INFO_METHODS>;
export type LauncherUnaryClient = UnaryClient<LauncherDefinition, typeof LAUNCHER_METHODS>;
export type NotifyUnaryClient = UnaryClient<NotifyDefinition, typeof NOTIFY_METHODS>;
export type HandlerUnaryClient = UnaryClient<HandlerDefinition, typeof HANDLER_METHODS>;

export type LauncherImplementation = UnaryImplementation<LauncherDefinition, typeof LAUNCHER_METHODS>;
export type NotifyImplementation = UnaryImplementation<NotifyDefinition, typeof NOTIFY_METHODS>;
export type HandlerUnaryImplementation = UnaryImplementation<HandlerDefinition, typeof HANDLER_METHODS>;
