// A byte pipe between a listener and a target, each a TCP address or a unix socket. Two instances join the host to
// the cluster's network namespace: inside it, unix socket → API server; on the host, 127.0.0.1:PORT → that unix
// socket. Unix sockets live on the file system, which both namespaces share. TLS passes through untouched.
//
// Run as a process: node forwarder.ts --forward unix:/path=tcp:172.30.0.1:6443 [--forward …]
import { chmod, unlink } from 'node:fs/promises';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { parseArgs } from 'node:util';
import type { Logger } from 'pino';
import { DevclusterError } from './errors.ts';
import { createLogger } from './log.ts';

export type Endpoint = { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export interface ForwardRule {
  listen: Endpoint;
  target: Endpoint;
}

export function formatEndpoint(endpoint: Endpoint): string {
  return endpoint.kind === 'tcp' ? `tcp:${endpoint.host}:${endpoint.port}` : `unix:${endpoint.path}`;
}

/** `tcp:HOST:PORT` or `unix:PATH`. */
export function parseEndpoint(text: string): Endpoint {
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (!path.startsWith('/'))
      throw new DevclusterError(`forwarder endpoint ${text}: the unix path must be absolute`);
    return { kind: 'unix', path };
  }
  const tcp = /^tcp:(.+):(\d+)$/.exec(text);
  if (tcp?.[1] && tcp[2]) {
    const port = Number(tcp[2]);
    // Port 0 lets a listener take any free port (the tests use it).
    if (port > 65535) throw new DevclusterError(`forwarder endpoint ${text}: port out of range`);
    return { kind: 'tcp', host: tcp[1], port };
  }
  throw new DevclusterError(
    `forwarder endpoint ${JSON.stringify(text)}: expected tcp:HOST:PORT or unix:/PATH`,
  );
}

/** `LISTEN=TARGET`, each an endpoint. */
export function parseRule(text: string): ForwardRule {
  const at = text.indexOf('=');
  if (at < 0) throw new DevclusterError(`forward rule ${JSON.stringify(text)}: expected LISTEN=TARGET`);
  return { listen: parseEndpoint(text.slice(0, at)), target: parseEndpoint(text.slice(at + 1)) };
}

export interface Forwarder {
  /** Where each rule listens (a TCP port of 0 is resolved to the port the system chose). */
  readonly listening: Endpoint[];
  close(): Promise<void>;
}

function pipe(client: Socket, target: Endpoint, log: Logger): void {
  // Half-open allowed on both sides: a client that ends its writes still gets the rest of the answer; each end
  // travels through the pipe, and a socket is torn down only once closed in both directions or on an error.
  const upstream =
    target.kind === 'tcp'
      ? connect({ port: target.port, host: target.host, allowHalfOpen: true })
      : connect({ path: target.path, allowHalfOpen: true });
  client.pipe(upstream);
  upstream.pipe(client);
  const done = (side: string) => (err?: Error) => {
    // A reset or refused target is routine while a component restarts; debug level keeps logs readable.
    if (err)
      log.debug({ side, err: err.message, target: formatEndpoint(target) }, 'forwarded connection failed');
    client.destroy();
    upstream.destroy();
  };
  client.on('error', done('client'));
  upstream.on('error', done('target'));
  client.on('close', done('client'));
  upstream.on('close', done('target'));
}

async function listen(server: Server, endpoint: Endpoint): Promise<Endpoint> {
  if (endpoint.kind === 'unix') {
    // A socket file left by a killed forwarder would make bind fail with EADDRINUSE.
    await unlink(endpoint.path).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENOENT') throw err;
    });
  }
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    const ready = () => {
      server.off('error', reject);
      resolve();
    };
    if (endpoint.kind === 'unix') server.listen(endpoint.path, ready);
    else server.listen(endpoint.port, endpoint.host, ready);
  }).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'EADDRINUSE') {
      throw new DevclusterError(
        `${formatEndpoint(endpoint)} is already in use by another process`,
        endpoint.kind === 'tcp'
          ? `pick another port (devcluster up --port N, or KUBEVIRT_TS_DEVCLUSTER_PORT), or stop what listens there (ss -ltnp 'sport = :${endpoint.port}')`
          : undefined,
        { cause: err },
      );
    }
    throw err;
  });
  if (endpoint.kind === 'unix') {
    // The socket grants whatever its target grants (etcd has no auth): owner only.
    await chmod(endpoint.path, 0o600);
    return endpoint;
  }
  const address = server.address();
  return typeof address === 'object' && address ? { ...endpoint, port: address.port } : endpoint;
}

export async function startForwarder(rules: readonly ForwardRule[], log: Logger): Promise<Forwarder> {
  const servers: Server[] = [];
  const sockets = new Set<Socket>();
  const listening: Endpoint[] = [];
  try {
    for (const rule of rules) {
      const server = createServer({ allowHalfOpen: true }, (client) => {
        sockets.add(client);
        client.on('close', () => sockets.delete(client));
        pipe(client, rule.target, log);
      });
      servers.push(server);
      const bound = await listen(server, rule.listen);
      listening.push(bound);
      log.info({ listen: formatEndpoint(bound), target: formatEndpoint(rule.target) }, 'forwarding');
    }
  } catch (err) {
    for (const server of servers) server.close();
    throw err;
  }
  return {
    listening,
    async close() {
      for (const socket of sockets) socket.destroy();
      await Promise.all(
        servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))),
      );
    },
  };
}

async function main(): Promise<void> {
  const log = createLogger('forwarder');
  const { values } = parseArgs({ options: { forward: { type: 'string', multiple: true } } });
  const rules = (values.forward ?? []).map(parseRule);
  if (rules.length === 0) throw new DevclusterError('forwarder: give at least one --forward LISTEN=TARGET');
  const forwarder = await startForwarder(rules, log);
  const stop = (signal: string) => {
    log.info({ signal }, 'stopping');
    void forwarder.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    const hint = err instanceof DevclusterError && err.hint ? ` (${err.hint})` : '';
    process.stderr.write(`forwarder: ${err instanceof Error ? err.message : String(err)}${hint}\n`);
    process.exit(1);
  });
}
