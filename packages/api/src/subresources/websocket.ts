// The websocket side of `console` and `vnc`: the client (virtctl, KubeVirt's virtctl, a browser) speaks the
// `plain.kubevirt.io` subprotocol, in which every binary (or text) message carries raw bytes of the stream, and
// receives the guest's bytes as binary messages. bridge() joins such a websocket to the handler's byte stream with
// backpressure both ways and ends each side when the other ends; an error closes the websocket with code 1011
// and the reason, which virtctl shows.
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer, type RawData } from 'ws';
import type { StatusBody } from './errors.ts';

export const PLAIN_STREAM_PROTOCOL = 'plain.kubevirt.io';

/** Stop reading the handler when this much is queued towards the client, resume below the low mark. */
const HIGH_WATER = 1 << 20;
const LOW_WATER = 1 << 18;
/** A client that answers no ping for two intervals is gone (a laptop closed mid-session). */
const PING_INTERVAL_MS = 30_000;
/** After the client leaves, the handler stream gets this long to end cleanly before it is cancelled. */
const END_GRACE_MS = 5_000;

/** Accepts upgrades for plain.kubevirt.io; a client that asks for no subprotocol is served too (as KubeVirt does). */
export function createWebSocketServer(): WebSocketServer {
  return new WebSocketServer({
    noServer: true,
    perMessageDeflate: false,
    handleProtocols: (protocols) => (protocols.has(PLAIN_STREAM_PROTOCOL) ? PLAIN_STREAM_PROTOCOL : false),
  });
}

const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  409: 'Conflict',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** Answers an upgrade request with an error status instead of switching protocols, then closes the socket. */
export function rejectUpgrade(socket: Duplex, status: StatusBody): void {
  const body = JSON.stringify(status);
  socket.end(
    `HTTP/1.1 ${status.code} ${REASONS[status.code] ?? 'Error'}\r\n` +
      'Content-Type: application/json\r\n' +
      `Content-Length: ${Buffer.byteLength(body)}\r\n` +
      'Connection: close\r\n\r\n' +
      body,
  );
}

function toBuffer(data: RawData): Buffer {
  if (Buffer.isBuffer(data)) return data;
  if (Array.isArray(data)) return Buffer.concat(data);
  return Buffer.from(data);
}

/** A websocket close reason is at most 123 bytes. */
export function closeReason(message: string): string {
  let reason = message;
  while (Buffer.byteLength(reason) > 123) reason = `${reason.slice(0, Math.max(0, reason.length - 4))}…`;
  return reason;
}

export interface BridgeResult {
  /** Bytes client → handler and handler → client. */
  bytesIn: number;
  bytesOut: number;
  /** Why it ended, for the log. */
  ended: 'client' | 'handler' | 'error';
  error?: Error;
}

/**
 * Pipes a websocket and a byte stream into each other until either side ends. `describe` words a stream error
 * for the close reason the client sees.
 */
export function bridge(
  ws: WebSocket,
  stream: Duplex,
  describe: (err: Error) => string = (err) => err.message,
): Promise<BridgeResult> {
  return new Promise((resolve) => {
    let bytesIn = 0;
    let bytesOut = 0;
    let ended: BridgeResult['ended'] | undefined;
    let error: Error | undefined;
    let alive = true;
    let waitingForDrain = false;
    let wsClosed = false;
    let streamClosed = false;
    const finish = (): void => {
      if (!wsClosed || !streamClosed) return;
      clearInterval(pinger);
      resolve({ bytesIn, bytesOut, ended: ended ?? 'client', ...(error === undefined ? {} : { error }) });
    };

    const pinger = setInterval(() => {
      if (!alive) {
        ws.terminate();
        return;
      }
      alive = false;
      ws.ping();
    }, PING_INTERVAL_MS);
    pinger.unref();
    ws.on('pong', () => (alive = true));

    ws.on('message', (data) => {
      const bytes = toBuffer(data);
      bytesIn += bytes.length;
      if (!stream.write(bytes) && !waitingForDrain) {
        waitingForDrain = true;
        ws.pause();
        stream.once('drain', () => {
          waitingForDrain = false;
          ws.resume();
        });
      }
    });
    stream.on('data', (chunk: Buffer) => {
      bytesOut += chunk.length;
      if (ws.readyState !== WebSocket.OPEN) return;
      ws.send(chunk, { binary: true }, () => {
        if (stream.isPaused() && ws.bufferedAmount < LOW_WATER) stream.resume();
      });
      if (ws.bufferedAmount > HIGH_WATER) stream.pause();
    });
    stream.on('end', () => {
      ended ??= 'handler';
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'the stream ended');
    });
    stream.on('error', (err: Error) => {
      ended ??= 'error';
      error ??= err;
      if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
        ws.close(1011, closeReason(describe(err)));
      }
    });
    stream.on('close', () => {
      streamClosed = true;
      if (ws.readyState === WebSocket.OPEN) ws.close(1000, 'the stream ended');
      finish();
    });

    ws.on('error', (err) => {
      ended ??= 'error';
      error ??= err;
    });
    ws.on('close', () => {
      wsClosed = true;
      ended ??= 'client';
      if (!stream.destroyed) {
        stream.end();
        setTimeout(() => stream.destroy(), END_GRACE_MS).unref();
      }
      finish();
    });
  });
}

/** Completes a websocket handshake that was checked and authorized already. */
export function acceptUpgrade(
  server: WebSocketServer,
  req: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<WebSocket> {
  return new Promise((resolve) => server.handleUpgrade(req, socket, head, resolve));
}
