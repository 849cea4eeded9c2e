// Console and VNC carry raw bytes in gRPC messages. These adapters turn either end of such a call into a plain
// byte Duplex, so a service pipes a unix socket or a websocket through it (`socket.pipe(s).pipe(socket)`) with
// backpressure both ways. Closing either side ends the call: the Duplex does not stay half open.
import { Duplex } from 'node:stream';
import { status } from '@grpc/grpc-js';
import type { ClientDuplexStream, ServerDuplexStream } from '@grpc/grpc-js';
import { RpcError, isServiceError, toServerError } from './errors.ts';
import type { StreamRequest, StreamRequest__Output } from './gen/kubevirt_ts/handler/v1/StreamRequest.ts';
import type { StreamResponse, StreamResponse__Output } from './gen/kubevirt_ts/handler/v1/StreamResponse.ts';

/** The parts of a grpc-js duplex call the adapter uses. */
interface MessageCall<In, Out> {
  write(message: Out, callback: (error?: Error | null) => void): boolean;
  end(): void;
  pause(): void;
  resume(): void;
  on(event: 'data', listener: (message: In) => void): unknown;
  on(event: 'end', listener: () => void): unknown;
  on(event: 'error', listener: (error: Error) => void): unknown;
}

interface Adapter<In, Out> {
  /** The bytes a received message carries, or an error that ends the stream. */
  decode(message: In): Buffer | RpcError;
  encode(bytes: Buffer): Out;
  /** Ends the call from our side: cleanly (error null) or with an error. */
  abort(error: Error | null): void;
  /** Turns an 'error' the call emitted into the error the Duplex reports. */
  describe(error: Error): Error;
  /** Whether ending our side completes the call (a server sends its status then; a client only half-closes). */
  endCompletesCall: boolean;
}

function adapt<In, Out>(call: MessageCall<In, Out>, adapter: Adapter<In, Out>): Duplex {
  let callDone = false;
  let remoteEnded = false;
  let localEnded = false;
  const stream = new Duplex({
    allowHalfOpen: false,
    read() {
      call.resume();
    },
    write(chunk: Buffer, _encoding, callback) {
      // grpc-js calls back once the message is handed to HTTP/2 flow control: that is our backpressure.
      call.write(adapter.encode(chunk), (error) => callback(error ?? null));
    },
    final(callback) {
      localEnded = true;
      call.end();
      if (adapter.endCompletesCall) {
        callDone = true;
        stream.push(null);
      }
      callback();
    },
    destroy(error, callback) {
      // Both sides ended cleanly: the call is complete, nothing to cancel.
      const clean = error === null && remoteEnded && localEnded;
      const wasDone = callDone;
      callDone = true;
      if (!wasDone && !clean) adapter.abort(error);
      callback(error);
    },
  });
  call.on('data', (message: In) => {
    const bytes = adapter.decode(message);
    if (bytes instanceof RpcError) {
      stream.destroy(bytes);
      return;
    }
    if (!stream.push(bytes)) call.pause();
  });
  call.on('end', () => {
    remoteEnded = true;
    stream.push(null);
  });
  call.on('error', (error: Error) => {
    if (callDone) return;
    callDone = true;
    stream.destroy(adapter.describe(error));
  });
  return stream;
}

/** The client end of a Console/VNC call; the open message must already be written. */
export function clientByteStream(
  call: ClientDuplexStream<StreamRequest, StreamResponse__Output>,
  describe: (error: Error) => Error,
): Duplex {
  return adapt<StreamResponse__Output, StreamRequest>(call, {
    decode: (message) => message.data,
    encode: (data) => ({ data }),
    abort: () => call.cancel(),
    describe,
    endCompletesCall: false,
  });
}

/** The server end of a Console/VNC call, after its open message was read. */
export function serverByteStream(call: ServerDuplexStream<StreamRequest__Output, StreamResponse>): Duplex {
  const stream = adapt<StreamRequest__Output, StreamResponse>(call, {
    decode: (message) =>
      message.kind === 'data' && message.data !== undefined
        ? message.data
        : new RpcError(
            status.INVALID_ARGUMENT,
            'a Console/VNC stream takes one open message, then only data',
          ),
    encode: (data) => ({ data }),
    // grpc-js ends a server stream with the status of an error emitted on it.
    abort: (error) => (error === null ? call.end() : call.emit('error', toServerError(error))),
    describe: (error) =>
      isServiceError(error) ? new RpcError(error.code, error.details, { cause: error }) : error,
    endCompletesCall: true,
  });
  call.on('cancelled', () => {
    stream.destroy(new RpcError(status.CANCELLED, 'the client cancelled the stream or went away'));
  });
  return stream;
}
