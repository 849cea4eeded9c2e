// Dialing a contract: one grpc-js channel per connection, promise-returning unary calls that each run under a
// deadline, Console/VNC as byte streams (no deadline, kept alive by keepalive pings), and Info for negotiation.
import { Metadata, status } from '@grpc/grpc-js';
import type { ChannelOptions, Client, ServiceError } from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import { channelCredentials, keepaliveOptions, targetOf } from './address.ts';
import type { DialAddress, KeepaliveOptions } from './address.ts';
import { clientByteStream } from './byte-stream.ts';
import { RpcError, isServiceError, statusName } from './errors.ts';
import type { HandlerClient, HandlerDefinition } from './gen/kubevirt_ts/handler/v1/Handler.ts';
import type { StreamRequest } from './gen/kubevirt_ts/handler/v1/StreamRequest.ts';
import type { StreamResponse__Output } from './gen/kubevirt_ts/handler/v1/StreamResponse.ts';
import type { VMIRef } from './gen/kubevirt_ts/handler/v1/VMIRef.ts';
import type { LauncherClient } from './gen/kubevirt_ts/launcher/v1/Launcher.ts';
import type { NotifyClient } from './gen/kubevirt_ts/notify/v1/Notify.ts';
import { loadContracts } from './loader.ts';
import { DEFAULT_DEADLINES_MS, HANDLER_METHODS, LAUNCHER_METHODS, NOTIFY_METHODS } from './methods.ts';
import type {
  CallOptions,
  DeadlineClass,
  HandlerUnaryClient,
  LauncherUnaryClient,
  MethodTable,
  NotifyUnaryClient,
  UnaryClient,
} from './methods.ts';
import { CONTRACTS, SUPPORTED_VERSIONS, VersionNegotiationError, pickVersion } from './versions.ts';
import type { Contract } from './versions.ts';

export interface DialOptions {
  /** Per-class unary deadlines; unset classes keep DEFAULT_DEADLINES_MS. */
  deadlinesMs?: Partial<Record<DeadlineClass, number>>;
  keepalive?: Partial<KeepaliveOptions>;
  /** Extra grpc-js channel options; they win over ours. */
  channelOptions?: ChannelOptions;
}

export interface StreamOptions {
  /** Cancels the stream (it is destroyed with CANCELLED). */
  signal?: AbortSignal;
  metadata?: Metadata;
}

/** What every connection has besides its contract's calls. */
export interface Connection<C extends Contract, Raw extends Client> {
  readonly contract: C;
  /** The dialed target: `unix:///abs/path`, `unix:relative/path` or `host:port`. */
  readonly target: string;
  /** The generated grpc-js client on the same channel, for anything the wrappers do not cover. */
  readonly raw: Raw;
  readonly deadlinesMs: Readonly<Record<DeadlineClass, number>>;
  /** Info: the versions the server speaks for this contract (short deadline). */
  getVersions(options?: CallOptions): Promise<string[]>;
  /** Resolves once the channel is connected; default timeout: the short deadline. */
  waitForReady(timeoutMs?: number): Promise<void>;
  /** Closes the channel; open calls fail with CANCELLED or UNAVAILABLE. */
  close(): void;
}

export type LauncherConnection = Connection<typeof CONTRACTS.launcher, LauncherClient> & LauncherUnaryClient;
export type NotifyConnection = Connection<typeof CONTRACTS.notify, NotifyClient> & NotifyUnaryClient;
export type HandlerConnection = Connection<typeof CONTRACTS.handler, HandlerClient> &
  HandlerUnaryClient & {
    /** Opens the VMI's serial console: raw bytes both ways. Errors (e.g. UNAVAILABLE) arrive as 'error' events. */
    console(vmi: VMIRef, options?: StreamOptions): Duplex;
    /** Opens the VMI's VNC display: raw RFB bytes both ways. */
    vnc(vmi: VMIRef, options?: StreamOptions): Duplex;
  };

/** Dials a launcher's command socket (the handler does). */
export function dialLauncher(address: DialAddress, options: DialOptions = {}): LauncherConnection {
  const constructor = loadContracts().kubevirt_ts.launcher.v1.Launcher;
  const [target, credentials, channelOptions] = clientArguments(address, options);
  const { connection, callUnary } = openConnection(
    CONTRACTS.launcher,
    target,
    new constructor(target, credentials, channelOptions),
    options,
  );
  return { ...connection, ...unaryMethods(connection, callUnary, constructor.service, LAUNCHER_METHODS) };
}

/** Dials the handler's notify socket (a launcher does). */
export function dialNotify(address: DialAddress, options: DialOptions = {}): NotifyConnection {
  const constructor = loadContracts().kubevirt_ts.notify.v1.Notify;
  const [target, credentials, channelOptions] = clientArguments(address, options);
  const { connection, callUnary } = openConnection(
    CONTRACTS.notify,
    target,
    new constructor(target, credentials, channelOptions),
    options,
  );
  return { ...connection, ...unaryMethods(connection, callUnary, constructor.service, NOTIFY_METHODS) };
}

/** Dials a handler over mutual TLS (virt-api does). */
export function dialHandler(address: DialAddress, options: DialOptions = {}): HandlerConnection {
  const constructor = loadContracts().kubevirt_ts.handler.v1.Handler;
  const service = constructor.service;
  const [target, credentials, channelOptions] = clientArguments(address, options);
  const { connection, callUnary } = openConnection(
    CONTRACTS.handler,
    target,
    new constructor(target, credentials, channelOptions),
    options,
  );
  return {
    ...connection,
    ...unaryMethods(connection, callUnary, service, HANDLER_METHODS),
    console: (vmi, streamOptions = {}) => openByteStream(connection, service.Console, vmi, streamOptions),
    vnc: (vmi, streamOptions = {}) => openByteStream(connection, service.VNC, vmi, streamOptions),
  };
}

/**
 * Asks the server which versions of the connection's contract it speaks and returns the highest one `clientVersions`
 * (default: what this package implements) also contains. Call it before any other call on a new connection.
 * Throws VersionNegotiationError when there is none, or when the server does not serve this contract at all;
 * a transport failure (UNAVAILABLE, DEADLINE_EXCEEDED) stays an RpcError, to be retried.
 */
export async function negotiateVersion(
  connection: Pick<Connection<Contract, Client>, 'contract' | 'target' | 'getVersions'>,
  clientVersions: readonly string[] = SUPPORTED_VERSIONS[connection.contract],
  options?: CallOptions,
): Promise<string> {
  const { contract, target } = connection;
  let serverVersions: string[];
  try {
    serverVersions = await connection.getVersions(options);
  } catch (error) {
    if (
      error instanceof RpcError &&
      (error.code === status.NOT_FOUND || error.code === status.UNIMPLEMENTED)
    ) {
      throw new VersionNegotiationError(
        contract,
        target,
        clientVersions,
        [],
        `${target} does not serve ${contract} (${error.details}); check that the address belongs to a ${contract} server`,
        { cause: error },
      );
    }
    throw error;
  }
  const version = pickVersion(clientVersions, serverVersions);
  if (version === undefined) {
    const list = (versions: readonly string[]): string =>
      versions.length === 0 ? 'none' : versions.join(', ');
    throw new VersionNegotiationError(
      contract,
      target,
      clientVersions,
      serverVersions,
      `no ${contract} version in common with ${target}: this side speaks ${list(clientVersions)}, ` +
        `the server speaks ${list(serverVersions)}; upgrade the older side`,
    );
  }
  return version;
}

/** Channel options: keepalives, quick reconnects (local sockets come back fast), TLS name, then the caller's. */
function clientArguments(
  address: DialAddress,
  options: DialOptions,
): [string, ReturnType<typeof channelCredentials>['credentials'], ChannelOptions] {
  const { credentials, options: tlsOptions } = channelCredentials(address);
  return [
    targetOf(address),
    credentials,
    {
      ...keepaliveOptions(options.keepalive),
      'grpc.initial_reconnect_backoff_ms': 500,
      'grpc.max_reconnect_backoff_ms': 5_000,
      ...tlsOptions,
      ...options.channelOptions,
    },
  ];
}

type CallUnary = <Req, Res>(
  definition: WireDefinition<Req, Res>,
  request: Req,
  deadline: DeadlineClass,
  options?: CallOptions,
) => Promise<Res>;

interface WireDefinition<Req, Res> {
  path: string;
  requestSerialize: (value: Req) => Buffer;
  responseDeserialize: (bytes: Buffer) => Res;
}

function openConnection<C extends Contract, Raw extends Client>(
  contract: C,
  target: string,
  raw: Raw,
  options: DialOptions,
): { connection: Connection<C, Raw>; callUnary: CallUnary } {
  const deadlinesMs: Readonly<Record<DeadlineClass, number>> = {
    ...DEFAULT_DEADLINES_MS,
    ...options.deadlinesMs,
  };
  for (const [name, ms] of Object.entries(deadlinesMs)) checkTimeout(ms, `the ${name} deadline`);
  const info = loadContracts().kubevirt_ts.info.v1.Info.service.GetVersions;

  const callUnary: CallUnary = async <Req, Res>(
    definition: WireDefinition<Req, Res>,
    request: Req,
    deadline: DeadlineClass,
    callOptions: CallOptions = {},
  ): Promise<Res> => {
    const timeoutMs = callOptions.timeoutMs ?? deadlinesMs[deadline];
    const where = `${definition.path} on ${target}`;
    checkTimeout(timeoutMs, `the timeout of ${where}`);
    const { signal } = callOptions;
    return await new Promise<Res>((resolve, reject) => {
      if (signal?.aborted === true) {
        reject(
          new RpcError(status.CANCELLED, 'cancelled before it started', {
            message: `${where} was cancelled`,
          }),
        );
        return;
      }
      const onAbort = (): void => call.cancel();
      const call = raw.makeUnaryRequest(
        definition.path,
        definition.requestSerialize,
        definition.responseDeserialize,
        request,
        callOptions.metadata ?? new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (error: ServiceError | null, response?: Res) => {
          signal?.removeEventListener('abort', onAbort);
          if (error !== null) reject(describeFailure(where, error, timeoutMs));
          else if (response === undefined)
            reject(new RpcError(status.INTERNAL, `${where} returned no response`));
          else resolve(response);
        },
      );
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  };

  const connection: Connection<C, Raw> = {
    contract,
    target,
    raw,
    deadlinesMs,
    getVersions: async (callOptions) => {
      const response = await callUnary(info, { contract }, 'short', callOptions);
      return response.versions;
    },
    waitForReady: (timeoutMs = deadlinesMs.short) =>
      new Promise((resolve, reject) => {
        raw.waitForReady(Date.now() + timeoutMs, (error) => {
          if (error === undefined) resolve();
          else
            reject(
              new Error(
                `${contract} server at ${target} not reachable within ${timeoutMs} ms: ${error.message}`,
                { cause: error },
              ),
            );
        });
      }),
    close: () => raw.close(),
  };
  return { connection, callUnary };
}

function checkTimeout(ms: number, what: string): void {
  if (!(Number.isFinite(ms) && ms > 0)) {
    throw new Error(
      `${what} must be a positive, finite number of milliseconds, got ${ms}: every unary call has a deadline`,
    );
  }
}

function describeFailure(where: string, error: ServiceError, timeoutMs?: number): RpcError {
  const deadline =
    error.code === status.DEADLINE_EXCEEDED && timeoutMs !== undefined ? ` after ${timeoutMs} ms` : '';
  return new RpcError(error.code, error.details, {
    message: `${where} failed: ${statusName(error.code)}${deadline}: ${error.details}`,
    metadata: error.metadata,
    cause: error,
  });
}

function unaryMethods<D, T extends MethodTable<D>>(
  connection: Connection<Contract, Client>,
  callUnary: CallUnary,
  service: D,
  table: T,
): UnaryClient<D, T> {
  const definitions = service as unknown as Readonly<
    Record<string, WireDefinition<unknown, unknown> | undefined>
  >;
  const methods: Record<string, (request: unknown, options?: CallOptions) => Promise<unknown>> = {};
  for (const [name, spec] of Object.entries(table)) {
    const definition = definitions[spec.rpc];
    if (definition === undefined) {
      throw new Error(
        `${connection.contract} has no RPC ${spec.rpc}; the loaded .proto files and src/methods.ts disagree`,
      );
    }
    methods[name] = (request, options) => callUnary(definition, request, spec.deadline, options);
  }
  return methods as UnaryClient<D, T>;
}

function openByteStream(
  connection: Connection<Contract, Client>,
  definition: HandlerDefinition['Console'],
  vmi: VMIRef,
  options: StreamOptions,
): Duplex {
  const { path } = definition;
  // No deadline: a console stays open as long as someone uses it; keepalive pings notice a dead peer.
  const call = connection.raw.makeBidiStreamRequest<StreamRequest, StreamResponse__Output>(
    path,
    definition.requestSerialize,
    definition.responseDeserialize,
    options.metadata ?? new Metadata(),
  );
  const where = `${path} on ${connection.target}`;
  const stream = clientByteStream(call, (error) =>
    isServiceError(error) ? describeFailure(where, error) : error,
  );
  call.write({ open: vmi });
  const { signal } = options;
  if (signal !== undefined) {
    const onAbort = (): void => {
      stream.destroy(
        new RpcError(status.CANCELLED, 'cancelled by the caller', { message: `${where} was cancelled` }),
      );
    };
    if (signal.aborted) onAbort();
    else {
      signal.addEventListener('abort', onAbort, { once: true });
      stream.once('close', () => signal.removeEventListener('abort', onAbort));
    }
  }
  return stream;
}
