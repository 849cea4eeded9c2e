// One connection to a libvirt daemon over its unix socket, speaking libvirt's own RPC protocol (the one virsh and
// every libvirt client library use underneath): length-prefixed packets with a fixed header and an XDR payload.
// Calls are matched to replies by serial; event messages go to the message listener; the daemon's keepalive pings
// are answered. See docs/adr/0006-launcher-libvirt-interface.md for why the launcher talks this protocol directly.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { XdrReader, XdrWriter } from './xdr.ts';

export const REMOTE_PROGRAM = 0x20008086;
export const QEMU_PROGRAM = 0x20008087;
const KEEPALIVE_PROGRAM = 0x6b656570;
const KEEPALIVE_PROC_PING = 1;
const KEEPALIVE_PROC_PONG = 2;
const PROTOCOL_VERSION = 1;

const TYPE_CALL = 0;
const TYPE_REPLY = 1;
const TYPE_MESSAGE = 2;
const STATUS_OK = 0;
const STATUS_ERROR = 1;

const HEADER_BYTES = 28; // length + program, version, procedure, type, serial, status
/** libvirt's own limit for one packet (VIR_NET_MESSAGE_MAX plus header); anything larger is corruption. */
const MAX_PACKET_BYTES = 32 * 1024 * 1024;

/** An error the daemon returned for a call, with libvirt's error code (virErrorNumber) and domain. */
export class LibvirtError extends Error {
  readonly code: number;
  readonly domain: number;

  constructor(code: number, domain: number, message: string) {
    super(message);
    this.name = 'LibvirtError';
    this.code = code;
    this.domain = domain;
  }
}

/** virErrorNumber values the launcher acts on. */
export const LibvirtErrorCode = {
  NO_SUPPORT: 3,
  NO_DOMAIN: 42,
  OPERATION_INVALID: 55,
  OPERATION_TIMEOUT: 68,
  AGENT_UNRESPONSIVE: 86,
  AGENT_UNSYNCED: 97,
} as const;

export class ConnectionClosedError extends Error {
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'ConnectionClosedError';
  }
}

interface Pending {
  resolve: (reply: XdrReader) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  what: string;
}

export type MessageListener = (program: number, procedure: number, body: XdrReader) => void;

export interface RpcConnectOptions {
  /** Give up connecting after this long (the daemon may still be starting). */
  timeoutMs?: number;
}

function decodeError(r: XdrReader): LibvirtError {
  const code = r.int();
  const domain = r.int();
  const message = r.optional(() => r.string()) ?? `libvirt error ${code}`;
  // The rest (level, domain, extra strings, network) carries nothing the message does not already say.
  return new LibvirtError(code, domain, message);
}

export class RpcConnection {
  private readonly socket: Socket;
  private readonly pending = new Map<number, Pending>();
  private readonly messageListeners = new Set<MessageListener>();
  private readonly closeListeners = new Set<(error: Error) => void>();
  private serial = 0;
  private buffered: Buffer = Buffer.alloc(0);
  private closedWith: Error | undefined;

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk) => this.onData(chunk));
    socket.on('error', (err) =>
      this.fail(new ConnectionClosedError(`libvirt connection failed: ${err.message}`, { cause: err })),
    );
    socket.on('close', () => this.fail(new ConnectionClosedError('libvirt daemon closed the connection')));
  }

  static connect(socketPath: string, options: RpcConnectOptions = {}): Promise<RpcConnection> {
    const timeoutMs = options.timeoutMs ?? 10_000;
    return new Promise((resolve, reject) => {
      const socket = connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        reject(
          new Error(`connecting to the libvirt daemon at ${socketPath} took longer than ${timeoutMs} ms`),
        );
      }, timeoutMs);
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new RpcConnection(socket));
      });
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(
          new Error(`cannot connect to the libvirt daemon at ${socketPath}: ${err.message}`, { cause: err }),
        );
      });
    });
  }

  get closed(): boolean {
    return this.closedWith !== undefined;
  }

  onMessage(listener: MessageListener): () => void {
    this.messageListeners.add(listener);
    return () => this.messageListeners.delete(listener);
  }

  /** Called once, when the connection ends for any reason (daemon exit, socket error, close()). */
  onClose(listener: (error: Error) => void): void {
    if (this.closedWith) listener(this.closedWith);
    else this.closeListeners.add(listener);
  }

  /** Calls a procedure and resolves with a reader over the reply's payload; a daemon error rejects as LibvirtError. */
  call(
    procedure: number,
    args?: XdrWriter,
    options: { program?: number; timeoutMs?: number; what?: string } = {},
  ): Promise<XdrReader> {
    if (this.closedWith) return Promise.reject(this.closedWith);
    const serial = (this.serial = (this.serial + 1) >>> 0);
    const payload = args?.toBuffer() ?? Buffer.alloc(0);
    const packet = this.packet(options.program ?? REMOTE_PROGRAM, procedure, TYPE_CALL, serial, payload);
    const what = options.what ?? `procedure ${procedure}`;
    const timeoutMs = options.timeoutMs ?? 60_000;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(serial);
        reject(new Error(`libvirt call ${what} got no reply within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(serial, { resolve, reject, timer, what });
      this.socket.write(packet);
    });
  }

  close(): void {
    this.fail(new ConnectionClosedError('libvirt connection closed by the launcher'));
  }

  private packet(program: number, procedure: number, type: number, serial: number, payload: Buffer): Buffer {
    const header = new XdrWriter()
      .uint(HEADER_BYTES + payload.length)
      .uint(program)
      .uint(PROTOCOL_VERSION)
      .int(procedure)
      .int(type)
      .uint(serial)
      .int(STATUS_OK)
      .toBuffer();
    return Buffer.concat([header, payload]);
  }

  private onData(chunk: Buffer): void {
    this.buffered = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    while (this.buffered.length >= 4) {
      const length = this.buffered.readUInt32BE(0);
      if (length < HEADER_BYTES || length > MAX_PACKET_BYTES) {
        this.fail(new ConnectionClosedError(`libvirt sent a packet of impossible length ${length}`));
        return;
      }
      if (this.buffered.length < length) return;
      const packet = this.buffered.subarray(4, length);
      this.buffered = this.buffered.subarray(length);
      try {
        this.dispatch(new XdrReader(Buffer.from(packet)));
      } catch (err) {
        this.fail(
          new ConnectionClosedError(`cannot decode a libvirt packet: ${(err as Error).message}`, {
            cause: err,
          }),
        );
        return;
      }
    }
  }

  private dispatch(r: XdrReader): void {
    const program = r.uint();
    r.uint(); // version
    const procedure = r.int();
    const type = r.int();
    const serial = r.uint();
    const status = r.int();
    if (program === KEEPALIVE_PROGRAM) {
      if (procedure === KEEPALIVE_PROC_PING) {
        this.socket.write(
          this.packet(KEEPALIVE_PROGRAM, KEEPALIVE_PROC_PONG, TYPE_MESSAGE, 0, Buffer.alloc(0)),
        );
      }
      return;
    }
    if (type === TYPE_REPLY) {
      const pending = this.pending.get(serial);
      if (!pending) return; // the call already timed out
      this.pending.delete(serial);
      clearTimeout(pending.timer);
      if (status === STATUS_ERROR) {
        const error = decodeError(r);
        error.message = `${pending.what}: ${error.message}`;
        pending.reject(error);
      } else pending.resolve(r);
      return;
    }
    if (type === TYPE_MESSAGE) {
      for (const listener of this.messageListeners) listener(program, procedure, r);
    }
  }

  private fail(error: Error): void {
    if (this.closedWith) return;
    this.closedWith = error;
    this.socket.destroy();
    for (const [, pending] of this.pending) {
      clearTimeout(pending.timer);
      pending.reject(
        new ConnectionClosedError(`libvirt call ${pending.what} failed: ${error.message}`, { cause: error }),
      );
    }
    this.pending.clear();
    for (const listener of this.closeListeners) listener(error);
    this.closeListeners.clear();
  }
}
