// Where a server listens and a client dials: a unix socket (insecure: the filesystem permissions are the
// authentication, as between handler and launcher) or TCP with mutual TLS (handler ↔ api). There is no plain TCP.
import { resolve } from 'node:path';
import { ChannelCredentials, ServerCredentials, credentials } from '@grpc/grpc-js';
import type { ChannelOptions } from '@grpc/grpc-js';

/** PEM-encoded key, certificate (chain) and the CA that must have signed the peer's certificate. */
export interface TlsPem {
  key: string | Buffer;
  cert: string | Buffer;
  ca: string | Buffer;
}

export interface ClientTlsPem extends TlsPem {
  /** The name the server's certificate must carry, when it differs from `host` (e.g. dialing a pod IP). */
  serverName?: string;
}

/** A unix socket, absolute or relative to the working directory (see UNIX_PATH_MAX). */
export interface UnixAddress {
  unix: string;
}

export interface TcpListenAddress {
  host: string;
  /** 0 picks a free port; RunningServer.port says which. */
  port: number;
  /** PEMs (client certificates are required), or credentials of your own, e.g. a certificate provider that reloads. */
  tls: TlsPem | ServerCredentials;
}

export interface TcpDialAddress {
  host: string;
  port: number;
  tls: ClientTlsPem | ChannelCredentials;
}

export type ListenAddress = UnixAddress | TcpListenAddress;
export type DialAddress = UnixAddress | TcpDialAddress;

/**
 * Longest unix socket path Linux accepts (sun_path is 108 bytes with the terminating NUL). Deep kubelet paths exceed
 * it; DESIGN §4a: reach them through a shorter mount or chdir to the folder and use a relative path.
 */
export const UNIX_PATH_MAX = 107;

export function isUnixAddress(address: ListenAddress | DialAddress): address is UnixAddress {
  return 'unix' in address;
}

/** Checks a socket path and returns the grpc-js target: `unix:///abs/path` or `unix:relative/path`. */
export function unixTarget(path: string): string {
  if (path === '') throw new Error('unix socket path is empty');
  if (path.includes('\0')) throw new Error(`unix socket path ${JSON.stringify(path)} contains a NUL byte`);
  const bytes = Buffer.byteLength(path);
  if (bytes > UNIX_PATH_MAX) {
    throw new Error(
      `unix socket path ${path} is ${bytes} bytes, longer than the ${UNIX_PATH_MAX} Linux allows; ` +
        'chdir to its folder and use a relative path, or reach it through a shorter mount',
    );
  }
  return path.startsWith('/') ? `unix://${path}` : `unix:${path}`;
}

/** `host:port`, with brackets around an IPv6 host. */
export function tcpTarget(host: string, port: number): string {
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new Error(`TCP port ${port} is not in 0..65535`);
  return host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
}

/** The target a client dials or a server binds, for logs and errors too. */
export function targetOf(address: ListenAddress | DialAddress): string {
  return isUnixAddress(address) ? unixTarget(address.unix) : tcpTarget(address.host, address.port);
}

/** Absolute form of a unix socket path (relative to the working directory at call time). */
export function absoluteSocketPath(path: string): string {
  return resolve(path);
}

function pem(value: string | Buffer): Buffer {
  return typeof value === 'string' ? Buffer.from(value) : value;
}

export function serverCredentials(address: ListenAddress): ServerCredentials {
  if (isUnixAddress(address)) return ServerCredentials.createInsecure();
  if (address.tls instanceof ServerCredentials) return address.tls;
  const { key, cert, ca } = address.tls;
  // true: a client without a certificate signed by `ca` is refused during the handshake (mutual TLS).
  return ServerCredentials.createSsl(pem(ca), [{ private_key: pem(key), cert_chain: pem(cert) }], true);
}

export function channelCredentials(address: DialAddress): {
  credentials: ChannelCredentials;
  options: ChannelOptions;
} {
  if (isUnixAddress(address)) return { credentials: credentials.createInsecure(), options: {} };
  if (address.tls instanceof ChannelCredentials) return { credentials: address.tls, options: {} };
  const { key, cert, ca, serverName } = address.tls;
  return {
    credentials: credentials.createSsl(pem(ca), pem(key), pem(cert)),
    options:
      serverName === undefined
        ? {}
        : { 'grpc.ssl_target_name_override': serverName, 'grpc.default_authority': serverName },
  };
}

/** HTTP/2 keepalive pings while calls are open, so a Console/VNC stream to a vanished peer ends instead of hanging. */
export interface KeepaliveOptions {
  /** Ping after this long without activity on a connection with open calls. */
  timeMs: number;
  /** Drop the connection when a ping is not answered within this. */
  timeoutMs: number;
}

export const DEFAULT_KEEPALIVE: Readonly<KeepaliveOptions> = { timeMs: 30_000, timeoutMs: 10_000 };

export function keepaliveOptions(keepalive: Partial<KeepaliveOptions> = {}): ChannelOptions {
  const { timeMs, timeoutMs } = { ...DEFAULT_KEEPALIVE, ...keepalive };
  return {
    'grpc.keepalive_time_ms': timeMs,
    'grpc.keepalive_timeout_ms': timeoutMs,
    // Only while calls are open: an idle unix-socket channel needs no pings.
    'grpc.keepalive_permit_without_calls': 0,
  };
}
