// Serving a contract: one grpc-js server per listen address, with the contract's service and the Info service for
// version negotiation, keepalives for long streams, and a shutdown that waits for calls to finish for a grace period
// and then cancels them.
import { lstat, unlink } from 'node:fs/promises';
import { connect } from 'node:net';
import { Server, status } from '@grpc/grpc-js';
import type {
  ServerDuplexStream,
  ServerUnaryCall,
  ServiceDefinition,
  UntypedServiceImplementation,
  handleBidiStreamingCall,
  sendUnaryData,
} from '@grpc/grpc-js';
import type { Duplex } from 'node:stream';
import {
  absoluteSocketPath,
  isUnixAddress,
  keepaliveOptions,
  serverCredentials,
  targetOf,
} from './address.ts';
import type { KeepaliveOptions, ListenAddress } from './address.ts';
import { serverByteStream } from './byte-stream.ts';
import { RpcError, toServerError, toStatus } from './errors.ts';
import type { HandlerDefinition } from './gen/kubevirt_ts/handler/v1/Handler.ts';
import type { StreamRequest__Output } from './gen/kubevirt_ts/handler/v1/StreamRequest.ts';
import type { StreamResponse } from './gen/kubevirt_ts/handler/v1/StreamResponse.ts';
import type { VMIRef__Output } from './gen/kubevirt_ts/handler/v1/VMIRef.ts';
import type { InfoDefinition } from './gen/kubevirt_ts/info/v1/Info.ts';
import type { LauncherDefinition } from './gen/kubevirt_ts/launcher/v1/Launcher.ts';
import type { NotifyDefinition } from './gen/kubevirt_ts/notify/v1/Notify.ts';
import { loadContracts } from './loader.ts';
import { silentLogger } from './logger.ts';
import type { Logger } from './logger.ts';
import { HANDLER_METHODS, INFO_METHODS, LAUNCHER_METHODS, NOTIFY_METHODS } from './methods.ts';
import type {
  HandlerUnaryImplementation,
  LauncherImplementation,
  MethodTable,
  NotifyImplementation,
  UnaryImplementation,
} from './methods.ts';
import { CONTRACTS, SUPPORTED_VERSIONS } from './versions.ts';
import type { Contract } from './versions.ts';

export interface ServeOptions {
  /** A pino logger (or anything with the same methods); silent by default. */
  logger?: Logger;
  /** Versions Info advertises for the contract; defaults to SUPPORTED_VERSIONS. */
  versions?: readonly string[];
  /** How long shutdown() waits for open calls before cancelling them; default 10 s. */
  shutdownGraceMs?: number;
  keepalive?: Partial<KeepaliveOptions>;
}

export interface HandlerServeOptions extends ServeOptions {
  /** How long a Console/VNC client has to send its open message; default 10 s. */
  streamOpenTimeoutMs?: number;
}

export interface RunningServer {
  readonly contract: Contract;
  /** The bound target: `unix:///abs/path`, `unix:relative/path`, or `host:port` with the port actually bound. */
  readonly target: string;
  /** The bound TCP port (useful after listening on port 0); undefined on a unix socket. */
  readonly port: number | undefined;
  readonly grpcServer: Server;
  /**
   * Stops taking calls, waits up to `graceMs` (default: shutdownGraceMs) for open ones to finish, then cancels the
   * rest (tryShutdown, then forceShutdown), and removes the socket file it created if it is still at its path.
   * Idempotent.
   */
  shutdown(graceMs?: number): Promise<void>;
}

/**
 * A Console/VNC session on the server: `vmi` is what the open message named, `stream` carries the raw bytes both
 * ways (pipe the guest's socket through it). End or destroy the stream to end the call; it ends by itself when the
 * client closes. A thrown error or rejection ends the call with its status (RpcError) or INTERNAL.
 */
export type StreamImplementation = (
  vmi: VMIRef__Output,
  stream: Duplex,
  call: ServerDuplexStream<StreamRequest__Output, StreamResponse>,
) => void | Promise<void>;

export type HandlerImplementation = HandlerUnaryImplementation & {
  readonly console: StreamImplementation;
  readonly vnc: StreamImplementation;
};

export const DEFAULT_SHUTDOWN_GRACE_MS = 10_000;
export const DEFAULT_STREAM_OPEN_TIMEOUT_MS = 10_000;

/** Serves the Launcher contract (the launcher does, on its unix socket). */
export function serveLauncher(
  listen: ListenAddress,
  implementation: LauncherImplementation,
  options: ServeOptions = {},
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const service = loadContracts().kubevirt_ts.launcher.v1.Launcher.service;
  return startServer(
    CONTRACTS.launcher,
    listen,
    service,
    unaryHandlers<LauncherDefinition, typeof LAUNCHER_METHODS>(
      CONTRACTS.launcher,
      LAUNCHER_METHODS,
      implementation,
      log,
    ),
    options,
  );
}

/** Serves the Notify contract (the handler does, on a unix socket in each launcher pod's sockets dir). */
export function serveNotify(
  listen: ListenAddress,
  implementation: NotifyImplementation,
  options: ServeOptions = {},
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const service = loadContracts().kubevirt_ts.notify.v1.Notify.service;
  return startServer(
    CONTRACTS.notify,
    listen,
    service,
    unaryHandlers<NotifyDefinition, typeof NOTIFY_METHODS>(
      CONTRACTS.notify,
      NOTIFY_METHODS,
      implementation,
      log,
    ),
    options,
  );
}

/** Serves the Handler contract (the handler does, on TCP with mutual TLS, for virt-api). */
export function serveHandler(
  listen: ListenAddress,
  implementation: HandlerImplementation,
  options: HandlerServeOptions = {},
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const service: HandlerDefinition = loadContracts().kubevirt_ts.handler.v1.Handler.service;
  const openTimeoutMs = options.streamOpenTimeoutMs ?? DEFAULT_STREAM_OPEN_TIMEOUT_MS;
  const handlers: UntypedServiceImplementation = {
    ...unaryHandlers<HandlerDefinition, typeof HANDLER_METHODS>(
      CONTRACTS.handler,
      HANDLER_METHODS,
      implementation,
      log,
    ),
    Console: streamHandler(service.Console.path, implementation.console, openTimeoutMs, log),
    VNC: streamHandler(service.VNC.path, implementation.vnc, openTimeoutMs, log),
  };
  return startServer(CONTRACTS.handler, listen, service, handlers, options);
}

type UntypedUnary = (request: unknown, call: ServerUnaryCall<unknown, unknown>) => unknown;

function unaryHandlers<D, T extends MethodTable<D>>(
  contract: Contract,
  table: T,
  implementation: UnaryImplementation<D, T>,
  log: Logger,
): UntypedServiceImplementation {
  const methods = implementation as unknown as Readonly<Record<string, UntypedUnary | undefined>>;
  const handlers: UntypedServiceImplementation = {};
  for (const [name, spec] of Object.entries(table)) {
    const method = methods[name];
    if (typeof method !== 'function') {
      throw new Error(`the ${contract} implementation has no ${name}() method; every unary RPC needs one`);
    }
    handlers[spec.rpc] = (
      call: ServerUnaryCall<unknown, unknown>,
      callback: sendUnaryData<unknown>,
    ): void => {
      Promise.resolve()
        .then(() => method.call(implementation, call.request, call))
        .then(
          (response) => callback(null, response),
          (error: unknown) => {
            logFailure(log, error, { contract, rpc: spec.rpc, peer: call.getPeer() });
            callback(toServerError(error));
          },
        );
    };
  }
  return handlers;
}

/** INTERNAL means the implementation broke: an error. A deliberate status (RpcError) is the client's business. */
function logFailure(log: Logger, error: unknown, context: object): void {
  const { code, details } = toStatus(error);
  if (code === status.INTERNAL) log.error({ ...context, err: error }, 'gRPC call failed');
  else log.debug({ ...context, code, details }, 'gRPC call answered with an error status');
}

function streamHandler(
  path: string,
  implementation: StreamImplementation,
  openTimeoutMs: number,
  log: Logger,
): handleBidiStreamingCall<StreamRequest__Output, StreamResponse> {
  return (call) => {
    const context = { rpc: path, peer: call.getPeer() };
    const run = async (): Promise<void> => {
      let vmi: VMIRef__Output;
      try {
        vmi = await readOpen(call, openTimeoutMs);
      } catch (error) {
        log.debug({ ...context, err: error }, 'stream refused before it opened');
        call.emit('error', toServerError(error));
        return;
      }
      const stream = serverByteStream(call);
      // A client that goes away destroys the stream with CANCELLED; that must not crash the server when the
      // implementation only pipes the stream (pipe adds no error listener).
      stream.on('error', (error) => log.debug({ ...context, err: error }, 'stream ended with an error'));
      try {
        await implementation(vmi, stream, call);
      } catch (error) {
        logFailure(log, error, {
          ...context,
          vmi: { namespace: vmi.namespace, name: vmi.name, uid: vmi.uid },
        });
        stream.destroy(error instanceof Error ? error : new Error(String(error)));
      }
    };
    void run();
  };
}

/** Waits for the first message of a Console/VNC call, which must name the VMI; holds back the ones after it. */
function readOpen(
  call: ServerDuplexStream<StreamRequest__Output, StreamResponse>,
  timeoutMs: number,
): Promise<VMIRef__Output> {
  return new Promise((resolve, reject) => {
    const finish = (error: RpcError | undefined, vmi?: VMIRef__Output): void => {
      clearTimeout(timer);
      call.off('data', onData);
      call.off('end', onEnd);
      call.off('cancelled', onCancelled);
      if (error !== undefined) reject(error);
      else if (vmi !== undefined) resolve(vmi);
    };
    const onData = (message: StreamRequest__Output): void => {
      // Pause before the listener goes, so the data messages after this one wait for the byte stream.
      call.pause();
      const vmi = message.kind === 'open' ? message.open : undefined;
      if (vmi == null) {
        finish(
          new RpcError(
            status.INVALID_ARGUMENT,
            'the first message of a Console/VNC stream must be `open`, naming the VMI',
          ),
        );
      } else if (vmi.namespace === '' || vmi.name === '') {
        finish(
          new RpcError(
            status.INVALID_ARGUMENT,
            'the open message must name the VMI: namespace and name are required',
          ),
        );
      } else {
        finish(undefined, vmi);
      }
    };
    const onEnd = (): void =>
      finish(new RpcError(status.INVALID_ARGUMENT, 'the client closed the stream before naming a VMI'));
    const onCancelled = (): void =>
      finish(new RpcError(status.CANCELLED, 'the client cancelled the stream before naming a VMI'));
    const timer = setTimeout(
      () => finish(new RpcError(status.DEADLINE_EXCEEDED, `no open message within ${timeoutMs} ms`)),
      timeoutMs,
    );
    call.on('data', onData);
    call.on('end', onEnd);
    call.on('cancelled', onCancelled);
  });
}

function infoHandlers(
  contract: Contract,
  versions: readonly string[],
  log: Logger,
): UntypedServiceImplementation {
  const implementation: UnaryImplementation<InfoDefinition, typeof INFO_METHODS> = {
    getVersions: (request) => {
      if (request.contract !== contract) {
        throw new RpcError(
          status.NOT_FOUND,
          `this server serves ${contract}, not ${request.contract === '' ? 'an unnamed contract' : request.contract}`,
        );
      }
      return { versions: [...versions] };
    },
  };
  return unaryHandlers<InfoDefinition, typeof INFO_METHODS>(contract, INFO_METHODS, implementation, log);
}

interface OwnSocket {
  path: string;
  dev: number;
  ino: number;
}

async function startServer(
  contract: Contract,
  listen: ListenAddress,
  service: ServiceDefinition,
  handlers: UntypedServiceImplementation,
  options: ServeOptions,
): Promise<RunningServer> {
  const log = options.logger ?? silentLogger;
  const versions = options.versions ?? SUPPORTED_VERSIONS[contract];
  const graceDefault = options.shutdownGraceMs ?? DEFAULT_SHUTDOWN_GRACE_MS;
  const requestedTarget = targetOf(listen);
  const server = new Server(keepaliveOptions(options.keepalive));
  server.addService(service, handlers);
  server.addService(loadContracts().kubevirt_ts.info.v1.Info.service, infoHandlers(contract, versions, log));

  if (isUnixAddress(listen)) await removeStaleSocket(listen.unix);
  let port: number;
  try {
    port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(requestedTarget, serverCredentials(listen), (error, boundPort) =>
        error === null ? resolve(boundPort) : reject(error),
      );
    });
  } catch (error) {
    server.forceShutdown();
    throw new Error(
      `cannot serve ${contract} on ${requestedTarget}: ${error instanceof Error ? error.message : String(error)}`,
      { cause: error },
    );
  }

  let ownSocket: OwnSocket | undefined;
  let target = requestedTarget;
  if (isUnixAddress(listen)) {
    // Kept absolute: the working directory may change, and unlink has no path length limit.
    const path = absoluteSocketPath(listen.unix);
    const stats = await lstat(path);
    ownSocket = { path, dev: stats.dev, ino: stats.ino };
  } else {
    target = targetOf({ ...listen, port });
  }
  log.info({ contract, target, versions }, 'gRPC server listening');

  let stopping: Promise<void> | undefined;
  const shutdown = (graceMs: number = graceDefault): Promise<void> => {
    stopping ??= (async () => {
      const forced = await new Promise<boolean>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve(true);
        }, graceMs);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve(false);
        });
      });
      if (forced)
        log.warn({ contract, target, graceMs }, 'calls still open after the grace period were cancelled');
      if (ownSocket !== undefined) await removeOwnSocket(ownSocket);
      log.info({ contract, target }, 'gRPC server stopped');
    })();
    return stopping;
  };

  return { contract, target, port: isUnixAddress(listen) ? undefined : port, grpcServer: server, shutdown };
}

/**
 * A socket file left by a process that died cannot be bound again; remove it. Refuse to touch anything that is not
 * a socket, or a socket some process still answers on: that is a second server, not a stale file.
 */
async function removeStaleSocket(path: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw error;
  }
  if (!stats.isSocket()) {
    throw new Error(`${path} exists and is not a unix socket; remove it or choose another socket path`);
  }
  if (await socketAnswers(path)) {
    throw new Error(`another process is serving on ${path}; stop it or choose another socket path`);
  }
  await unlink(path);
}

function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const socket = connect({ path });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', (error: NodeJS.ErrnoException) => {
      socket.destroy();
      if (error.code === 'ECONNREFUSED' || error.code === 'ENOENT') resolve(false);
      else reject(new Error(`cannot tell whether ${path} is in use: ${error.message}`, { cause: error }));
    });
  });
}

/** Removes the socket file this server bound, unless something else now lives at that path (it may have been renamed). */
async function removeOwnSocket(socket: OwnSocket): Promise<void> {
  try {
    const stats = await lstat(socket.path);
    if (stats.dev === socket.dev && stats.ino === socket.ino) await unlink(socket.path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
}
