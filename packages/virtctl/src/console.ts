// `virtctl console`: the terminal attached to a VMI's serial console over the websocket. On a terminal, stdin goes
// raw (every key, Ctrl+C included, reaches the guest) and Ctrl+] ends the session; with a pipe, the bytes go to the
// guest as they are and the session ends when the input does (as KubeVirt's virtctl behaves), so scripts can
// feed the console and read it.
import type { Readable, Writable } from 'node:stream';
import type { WebSocket } from 'ws';
import { VirtctlError } from './errors.ts';

/** Ctrl+] (group separator), the escape of telnet and of KubeVirt's virtctl. */
export const ESCAPE_BYTE = 0x1d;

export interface ConsoleIo {
  stdin: Readable & { isTTY?: boolean; setRawMode?: (raw: boolean) => unknown };
  stdout: Writable;
  stderr: Writable;
}

/** The bytes to send from one read of a terminal, and whether the escape key was pressed in it. */
export function splitAtEscape(chunk: Buffer): { send: Buffer; escaped: boolean } {
  const at = chunk.indexOf(ESCAPE_BYTE);
  return at === -1 ? { send: chunk, escaped: false } : { send: chunk.subarray(0, at), escaped: true };
}

/** Why a console websocket closed, as the user should read it; undefined for a normal end. */
export function closeProblem(code: number, reason: string): string | undefined {
  if (code === 1000 || code === 1001 || code === 1005) return undefined;
  if (code === 1006) {
    return (
      'you were disconnected from the console. This could be caused by one of the following:\n' +
      ' - the target VM was powered off\n' +
      ' - another user connected to the console of the target VM\n' +
      ' - network issues'
    );
  }
  return `the console closed (code ${code})${reason === '' ? '' : `: ${reason}`}`;
}

/** Attaches the terminal (or pipe) to an open console websocket until either side ends. */
export function attachConsole(ws: WebSocket, io: ConsoleIo, name: string): Promise<void> {
  const tty = io.stdin.isTTY === true && typeof io.stdin.setRawMode === 'function';
  return new Promise((resolve, reject) => {
    if (tty) {
      io.stdin.setRawMode?.(true);
      io.stderr.write(`Successfully connected to ${name} console. Press Ctrl+] to exit console.\r\n`);
    }
    const onData = (chunk: Buffer): void => {
      if (!tty) {
        ws.send(chunk, { binary: true });
        return;
      }
      const { send, escaped } = splitAtEscape(chunk);
      if (send.length > 0) ws.send(send, { binary: true });
      if (escaped) ws.close(1000, 'the user left the console');
    };
    const onEnd = (): void => ws.close(1000, 'the input ended');
    const onSignal = (): void => ws.close(1000, 'interrupted');
    io.stdin.on('data', onData);
    io.stdin.on('end', onEnd);
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    io.stdin.resume();

    ws.on('message', (data: Buffer) => io.stdout.write(data));
    ws.resume();
    ws.once('close', (code: number, reason: Buffer) => {
      io.stdin.off('data', onData);
      io.stdin.off('end', onEnd);
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      io.stdin.pause();
      if (tty) {
        io.stdin.setRawMode?.(false);
        io.stderr.write('\r\n');
      }
      const problem = closeProblem(code, reason.toString('utf8'));
      if (problem === undefined) resolve();
      else reject(new VirtctlError(problem));
    });
    ws.on('error', () => {
      // 'close' follows with code 1006 and says it in words.
    });
  });
}
