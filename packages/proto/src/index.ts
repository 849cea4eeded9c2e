// @kubevirt-ts/proto: the gRPC contracts between the services (launcher, notify, handler), their generated types,
// the one loader, and typed helpers to serve and dial them. See DESIGN.md §4.

// Generated message, enum and service types, one namespace per protobuf package: launcherV1.VMIRequest, …
export * as infoV1 from './gen/kubevirt_ts/info/v1/index.ts';
export * as launcherV1 from './gen/kubevirt_ts/launcher/v1/index.ts';
export * as notifyV1 from './gen/kubevirt_ts/notify/v1/index.ts';
export * as handlerV1 from './gen/kubevirt_ts/handler/v1/index.ts';

export { LOADER_OPTIONS, PROTO_FILES } from './options.ts';
export { PROTO_ROOT, loadContracts } from './loader.ts';
export type { Contracts } from './loader.ts';

export { CONTRACTS, SUPPORTED_VERSIONS, VersionNegotiationError, pickVersion } from './versions.ts';
export type { Contract } from './versions.ts';

export { RpcError, isServiceError, statusName } from './errors.ts';
export type { RpcErrorOptions } from './errors.ts';

export { DEFAULT_KEEPALIVE, UNIX_PATH_MAX, targetOf, unixTarget } from './address.ts';
export type {
  ClientTlsPem,
  DialAddress,
  KeepaliveOptions,
  ListenAddress,
  TcpDialAddress,
  TcpListenAddress,
  TlsPem,
  UnixAddress,
} from './address.ts';

export {
  DEFAULT_DEADLINES_MS,
  HANDLER_METHODS,
  INFO_METHODS,
  LAUNCHER_METHODS,
  NOTIFY_METHODS,
} from './methods.ts';
export type {
  CallOptions,
  DeadlineClass,
  HandlerUnaryClient,
  HandlerUnaryImplementation,
  InfoClient,
  LauncherImplementation,
  LauncherUnaryClient,
  MethodSpec,
  MethodTable,
  NotifyImplementation,
  NotifyUnaryClient,
  RequestIn,
  RequestOut,
  ResponseIn,
  ResponseOut,
  RpcName,
  UnaryClient,
  UnaryImplementation,
} from './methods.ts';

export {
  DEFAULT_SHUTDOWN_GRACE_MS,
  DEFAULT_STREAM_OPEN_TIMEOUT_MS,
  serveHandler,
  serveLauncher,
  serveNotify,
} from './server.ts';
export type {
  HandlerImplementation,
  HandlerServeOptions,
  RunningServer,
  ServeOptions,
  StreamImplementation,
} from './server.ts';

export { dialHandler, dialLauncher, dialNotify, negotiateVersion } from './client.ts';
export type {
  Connection,
  DialOptions,
  HandlerConnection,
  LauncherConnection,
  NotifyConnection,
  StreamOptions,
} from './client.ts';

export { silentLogger } from './logger.ts';
export type { Logger } from './logger.ts';
