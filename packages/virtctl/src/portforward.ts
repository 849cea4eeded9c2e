// `virtctl port-forward TYPE/NAME[.NAMESPACE] PORT...`: guest ports through the API server. Every local connection
// (or, for UDP, every local client address) opens its own websocket on the VM's or VMI's
// `portforward/PORT/PROTOCOL` subresource, which virt-api joins to one connection to the guest (reference §5.1, §6).
// With --stdio, stdin and stdout are the one connection: `virtctl ssh` uses that as ssh's ProxyCommand, so in that
// mode nothing but the guest's bytes goes to stdout; every message goes to stderr.
import dgram from 'node:dgram';
import net from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { RawData, WebSocket } from 'ws';
import { UpgradeRefused, type ApiClient } from './client.ts';
import { SUBRESOURCE_GROUP, UsageError, VirtctlError, failure, statusOf, type Action } from './errors.ts';

export type PortForwardKind = 'vm' | 'vmi';
export type PortForwardProtocol = 'tcp' | 'udp';

export interface ForwardedPort {
  /** The local port; 0 picks a free one (printed once listening). */
  local: number;
  /** The guest's port. */
  guest: number;
  protocol: PortForwardProtocol;
}

export interface PortForwardTarget {
  kind: PortForwardKind;
  name: string;
  /** From `NAME.NAMESPACE` or `TYPE/NAME/NAMESPACE`; otherwise -n or the context's namespace applies. */
  namespace: string | undefined;
}

const KINDS: Record<string, PortForwardKind> = {
  vm: 'vm',
  vms: 'vm',
  virtualmachine: 'vm',
  virtualmachines: 'vm',
  vmi: 'vmi',
  vmis: 'vmi',
  virtualmachineinstance: 'vmi',
  virtualmachineinstances: 'vmi',
};

/**
 * `TYPE/NAME`, `TYPE/NAME.NAMESPACE` (the form `virtctl ssh` and older KubeVirt releases use) or
 * `TYPE/NAME/NAMESPACE` (KubeVirt's newer form).
 */
export function parseTarget(arg: string): PortForwardTarget {
  const form = 'the target is TYPE/NAME, TYPE/NAME.NAMESPACE or TYPE/NAME/NAMESPACE with TYPE vm or vmi';
  const parts = arg.split('/');
  if (parts.length < 2 || parts.length > 3) {
    throw new UsageError(`${form}, got ${JSON.stringify(arg)}`);
  }
  const [kindWord = '', nameWord = '', namespaceWord] = parts;
  const kind = KINDS[kindWord.toLowerCase()];
  if (kind === undefined) {
    throw new UsageError(`unsupported resource type ${JSON.stringify(kindWord)}: ${form}`);
  }
  let name = nameWord;
  let namespace = namespaceWord;
  if (namespace === undefined && name.includes('.')) {
    const dot = name.indexOf('.');
    namespace = name.slice(dot + 1);
    name = name.slice(0, dot);
  }
  if (name === '') throw new UsageError(`the name in ${JSON.stringify(arg)} is empty: ${form}`);
  if (namespace === '') throw new UsageError(`the namespace in ${JSON.stringify(arg)} is empty: ${form}`);
  return { kind, name, namespace };
}

function portNumber(raw: string, arg: string, what: string, min: number): number {
  const n = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN;
  if (!(n >= min && n <= 65535)) {
    throw new UsageError(
      `${what} in ${JSON.stringify(arg)} must be a number from ${min} to 65535, got ${JSON.stringify(raw)}`,
    );
  }
  return n;
}

/**
 * One port argument: `[PROTOCOL/]LOCAL[:GUEST]` (KubeVirt's virtctl) or `LOCAL[:GUEST][/PROTOCOL]`; the guest port
 * is the local one unless given, the protocol tcp unless given. `:GUEST` or `0:GUEST` listens on a free local port.
 */
export function parsePort(arg: string): ForwardedPort {
  const form = 'a port is [PROTOCOL/]LOCAL[:GUEST] or LOCAL[:GUEST][/PROTOCOL], PROTOCOL tcp or udp';
  const slash = arg.split('/');
  if (slash.length > 2) throw new UsageError(`${form}, got ${JSON.stringify(arg)}`);
  let protocolWord: string | undefined;
  let ports = arg;
  if (slash.length === 2) {
    const [a = '', b = ''] = slash;
    const isProtocol = (s: string) => /^[a-z]+$/i.test(s);
    if (isProtocol(a) && !isProtocol(b)) [protocolWord, ports] = [a, b];
    else if (isProtocol(b) && !isProtocol(a)) [protocolWord, ports] = [b, a];
    else throw new UsageError(`${form}, got ${JSON.stringify(arg)}`);
  }
  const protocol = (protocolWord ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw new UsageError(
      `protocol in ${JSON.stringify(arg)} must be tcp or udp, got ${JSON.stringify(protocolWord)}`,
    );
  }
  const colon = ports.split(':');
  if (colon.length > 2 || ports === '') throw new UsageError(`${form}, got ${JSON.stringify(arg)}`);
  const [localWord = '', guestWord] = colon;
  if (guestWord === undefined) {
    const port = portNumber(localWord, arg, 'the port', 1);
    return { local: port, guest: port, protocol };
  }
  const guest = portNumber(guestWord, arg, 'the guest port', 1);
  const local = localWord === '' ? 0 : portNumber(localWord, arg, 'the local port', 0);
  return { local, guest, protocol };
}

/** The subresource path segment for a forwarded port: `portforward/PORT/PROTOCOL`. */
export function portForwardSubresource(port: Pick<ForwardedPort, 'guest' | 'protocol'>): string {
  return `portforward/${port.guest}/${port.protocol}`;
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** What the stream's subprotocol is called (as console and VNC): raw bytes in binary messages. */
const PLAIN_STREAM_PROTOCOL = 'plain.kubevirt.io';

/** The failure of one tunnel's upgrade in words, with what to do for the usual cases. */
export function tunnelFailure(act: Action, status: number, body: string): VirtctlError {
  const message = statusOf(body).message ?? '';
  if (status === 409 && /VMI is not started$/.test(message)) {
    return new VirtctlError(
      `cannot ${act.what} ${act.kind} ${act.namespace}/${act.name}: VMI is not started (the VM is not running; ` +
        `start it with: virtctl start ${act.name} -n ${act.namespace})`,
    );
  }
  const dial = /^Internal error occurred: (dialing VM: [\s\S]*)$/.exec(message);
  if (status === 500 && dial !== null) {
    return new VirtctlError(`cannot ${act.what} ${act.kind} ${act.namespace}/${act.name}: ${dial[1]}`);
  }
  return failure(act, status, body);
}

/** Opens tunnels to `target` through `client`: the websocket of `portforward/PORT/PROTOCOL` on the VM or VMI. */
export function tunnelOpener(client: ApiClient, target: PortForwardTarget): TunnelOpener {
  const namespace = target.namespace ?? client.namespace;
  const resource = target.kind === 'vm' ? 'virtualmachines' : 'virtualmachineinstances';
  return async (port) => {
    const act: Action = {
      what: `forward ${port.protocol.toUpperCase()} port ${port.guest} of`,
      kind: target.kind === 'vm' ? 'VirtualMachine' : 'VirtualMachineInstance',
      namespace,
      name: target.name,
      verb: 'get',
      resource,
      subresource: 'portforward',
    };
    const e = encodeURIComponent;
    const path =
      `/apis/${SUBRESOURCE_GROUP}/v1/namespaces/${e(namespace)}/${resource}/${e(target.name)}/` +
      portForwardSubresource(port);
    try {
      return await client.websocket(path, [PLAIN_STREAM_PROTOCOL]);
    } catch (err) {
      if (err instanceof UpgradeRefused) throw tunnelFailure(act, err.status, err.body);
      throw err;
    }
  };
}

/** Stop reading the local side when this much waits to go out on the websocket; resume below the low mark. */
const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;

/** Why a tunnel websocket closed, when it is not a normal end. */
export function tunnelProblem(code: number, reason: string): string | undefined {
  if (code === 1000 || code === 1001 || code === 1005) return undefined;
  if (code === 1006) return 'the connection to the API server was lost';
  return `the tunnel closed (code ${code})${reason === '' ? '' : `: ${reason}`}`;
}

/** Opens the websocket of one tunnel to `port` (the caller's client and action); rejects with a VirtctlError. */
export type TunnelOpener = (port: ForwardedPort) => Promise<WebSocket>;

export interface StdioIo {
  stdin: Readable;
  stdout: Writable;
}

/**
 * Joins stdin and stdout to one tunnel until the guest side ends it, or a signal. The end of stdin does not end
 * the tunnel (a websocket has no half-close): the guest's answer to a piped request still arrives.
 */
export function pipeStdio(ws: WebSocket, io: StdioIo): Promise<void> {
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      ws.send(chunk, { binary: true }, () => {
        if (io.stdin.isPaused() && ws.bufferedAmount < LOW_WATER) io.stdin.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER) io.stdin.pause();
    };
    const onSignal = (): void => ws.close(1000, 'interrupted');
    const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
    io.stdin.on('data', onData);
    for (const s of signals) process.on(s, onSignal);
    io.stdin.resume();
    ws.on('message', (data) => {
      if (!io.stdout.write(toBuffer(data))) {
        ws.pause();
        io.stdout.once('drain', () => ws.resume());
      }
    });
    ws.resume();
    ws.on('error', () => {
      // 'close' follows with the code.
    });
    ws.once('close', (code: number, reason: Buffer) => {
      io.stdin.off('data', onData);
      for (const s of signals) process.off(s, onSignal);
      io.stdin.pause();
      // stdin of a process keeps it alive while it is open; the tunnel is over.
      if ('unref' in io.stdin && typeof io.stdin.unref === 'function') (io.stdin.unref as () => void)();
      const problem = tunnelProblem(code, reason.toString('utf8'));
      if (problem === undefined) resolve();
      else reject(new VirtctlError(problem));
    });
  });
}

/** Joins an accepted local TCP connection to its tunnel; `report` gets what went wrong, if anything. */
export function pipeSocket(ws: WebSocket, socket: net.Socket, report: (problem: string) => void): void {
  socket.on('data', (chunk: Buffer) => {
    ws.send(chunk, { binary: true }, () => {
      if (socket.isPaused() && ws.bufferedAmount < LOW_WATER) socket.resume();
    });
    if (ws.bufferedAmount > HIGH_WATER) socket.pause();
  });
  socket.on('end', () => ws.close(1000, 'the local connection ended'));
  socket.on('error', () => ws.close(1000, 'the local connection failed'));
  ws.on('message', (data) => {
    if (!socket.write(toBuffer(data))) {
      ws.pause();
      socket.once('drain', () => ws.resume());
    }
  });
  ws.on('error', () => {
    // 'close' follows.
  });
  ws.once('close', (code: number, reason: Buffer) => {
    const problem = tunnelProblem(code, reason.toString('utf8'));
    if (problem === undefined) socket.end();
    else {
      report(problem);
      socket.destroy();
    }
  });
  socket.resume();
  ws.resume();
}

export interface ForwardOptions {
  address: string;
  ports: readonly ForwardedPort[];
  open: TunnelOpener;
  /** Where the listening lines go (stdout), and the failures of single connections (stderr). */
  stdout: Writable;
  stderr: Writable;
  /** Resolves to stop forwarding; default: SIGINT or SIGTERM. */
  stopped?: Promise<void>;
}

function listenTcp(address: string, port: number): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer({ pauseOnConnect: true });
    server.once('error', (err) =>
      reject(new VirtctlError(`cannot listen on ${address}:${port} (tcp): ${err.message}`)),
    );
    server.listen(port, address, () => resolve(server));
  });
}

function bindUdp(address: string, port: number): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
    socket.once('error', (err) =>
      reject(new VirtctlError(`cannot listen on ${address}:${port} (udp): ${err.message}`)),
    );
    socket.bind(port, address, () => resolve(socket));
  });
}

const hostPort = (address: string, port: number) =>
  net.isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;

/** Listens on every port and forwards each connection through its own tunnel until stopped. */
export async function forwardPorts(opts: ForwardOptions): Promise<void> {
  const closers: (() => void)[] = [];
  const tunnels = new Set<WebSocket>();
  const warn = (line: string): void => {
    opts.stderr.write(`${line}\n`);
  };
  try {
    for (const port of opts.ports) {
      const guest = `${port.guest}${port.protocol === 'udp' ? '/udp' : ''}`;
      if (port.protocol === 'tcp') {
        const server = await listenTcp(opts.address, port.local);
        closers.push(() => server.close());
        const local = (server.address() as net.AddressInfo).port;
        server.on('connection', (socket) => {
          socket.on('error', () => {
            // the tunnel side reports; a reset by the local client needs no words
          });
          opts.open(port).then(
            (ws) => {
              tunnels.add(ws);
              ws.once('close', () => tunnels.delete(ws));
              pipeSocket(ws, socket, (problem) => warn(`port ${local} -> ${guest}: ${problem}`));
            },
            (err: unknown) => {
              warn(`port ${local} -> ${guest}: ${err instanceof Error ? err.message : String(err)}`);
              socket.destroy();
            },
          );
        });
        opts.stdout.write(`Forwarding from ${hostPort(opts.address, local)} -> ${guest}\n`);
      } else {
        const socket = await bindUdp(opts.address, port.local);
        closers.push(() => socket.close());
        const local = socket.address().port;
        // One tunnel per local client address, as KubeVirt's virtctl keeps one connection per UDP client.
        const clients = new Map<string, Promise<WebSocket | undefined>>();
        socket.on('message', (msg, from) => {
          const key = hostPort(from.address, from.port);
          let tunnel = clients.get(key);
          if (tunnel === undefined) {
            tunnel = opts.open(port).then(
              (ws) => {
                tunnels.add(ws);
                ws.on('message', (data) => socket.send(toBuffer(data), from.port, from.address));
                ws.on('error', () => {});
                ws.once('close', (code: number, reason: Buffer) => {
                  tunnels.delete(ws);
                  clients.delete(key);
                  const problem = tunnelProblem(code, reason.toString('utf8'));
                  if (problem !== undefined) warn(`port ${local}/udp -> ${guest}: ${problem}`);
                });
                ws.resume();
                return ws;
              },
              (err: unknown) => {
                clients.delete(key);
                warn(`port ${local}/udp -> ${guest}: ${err instanceof Error ? err.message : String(err)}`);
                return undefined;
              },
            );
            clients.set(key, tunnel);
          }
          void tunnel.then((ws) => ws?.send(msg, { binary: true }));
        });
        opts.stdout.write(`Forwarding from ${hostPort(opts.address, local)}/udp -> ${guest}\n`);
      }
    }
    await (opts.stopped ?? untilSignal());
  } finally {
    for (const close of closers) close();
    for (const ws of tunnels) ws.close(1000, 'virtctl port-forward stopped');
  }
}

function untilSignal(): Promise<void> {
  return new Promise((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
  });
}
