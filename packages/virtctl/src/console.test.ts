// The console attachment against a real websocket server on the loopback: bytes both ways, the Ctrl+] escape on
// a terminal, the end of piped input, and a server that closes with an error.
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { ESCAPE_BYTE, attachConsole, closeProblem, splitAtEscape, type ConsoleIo } from './console.ts';
import { VirtctlError } from './errors.ts';

let server: WebSocketServer;
let url: string;
const received: Buffer[] = [];
let behaviour: (ws: WebSocket) => void = () => {};

beforeAll(async () => {
  server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await new Promise((resolve) => server.once('listening', resolve));
  url = `ws://127.0.0.1:${(server.address() as AddressInfo).port}`;
  server.on('connection', (ws) => {
    ws.on('message', (data: Buffer) => received.push(Buffer.from(data)));
    behaviour(ws);
  });
});

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function connect(): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    // As ApiClient.websocket hands it over: paused until the console attaches.
    ws.once('open', () => {
      ws.pause();
      resolve(ws);
    });
    ws.once('error', reject);
  });
}

function io(tty: boolean): ConsoleIo & { stdin: PassThrough; out: () => string; raw: boolean[] } {
  const stdin = new PassThrough() as PassThrough & { isTTY?: boolean; setRawMode?: (r: boolean) => void };
  const raw: boolean[] = [];
  if (tty) {
    stdin.isTTY = true;
    stdin.setRawMode = (r) => raw.push(r);
  }
  const stdout = new PassThrough();
  const chunks: Buffer[] = [];
  stdout.on('data', (c: Buffer) => chunks.push(c));
  return { stdin, stdout, stderr: new PassThrough(), out: () => Buffer.concat(chunks).toString(), raw };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
};

describe('splitAtEscape and closeProblem', () => {
  it('cuts at Ctrl+] and drops what follows', () => {
    expect(splitAtEscape(Buffer.from('ls\n'))).toEqual({ send: Buffer.from('ls\n'), escaped: false });
    expect(splitAtEscape(Buffer.from([0x61, ESCAPE_BYTE, 0x62]))).toEqual({
      send: Buffer.from('a'),
      escaped: true,
    });
  });

  it('says nothing for a normal end and why otherwise', () => {
    expect(closeProblem(1000, '')).toBeUndefined();
    expect(closeProblem(1011, 'NOT_FOUND: gone')).toBe('the console closed (code 1011): NOT_FOUND: gone');
    expect(closeProblem(1006, '')).toContain('you were disconnected from the console');
  });
});

describe('attachConsole', () => {
  it('with a pipe: carries bytes both ways and ends when the input ends', async () => {
    received.length = 0;
    behaviour = (ws) => ws.send(Buffer.from('login: '));
    const term = io(false);
    const done = attachConsole(await connect(), term, 'vm1');
    term.stdin.write('root\n');
    await until(() => term.out() === 'login: ' && received.length > 0);
    term.stdin.end();
    await done;
    expect(term.out()).toBe('login: ');
    expect(Buffer.concat(received).toString()).toBe('root\n');
  });

  it('on a terminal: raw mode while attached, Ctrl+] leaves and is not sent', async () => {
    received.length = 0;
    behaviour = () => {};
    const term = io(true);
    const done = attachConsole(await connect(), term, 'vm1');
    term.stdin.write(Buffer.from([0x03]));
    await until(() => received.length === 1);
    term.stdin.write(Buffer.from([0x71, ESCAPE_BYTE, 0x72]));
    await done;
    expect(Buffer.concat(received)).toEqual(Buffer.from([0x03, 0x71]));
    expect(term.raw).toEqual([true, false]);
  });

  it('fails with the server’s reason when the console is closed with an error', async () => {
    behaviour = (ws) => ws.close(1011, 'NOT_FOUND: VMI ns/vm1 is not on this node');
    const term = io(false);
    const err = await attachConsole(await connect(), term, 'vm1').then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(VirtctlError);
    expect((err as Error).message).toBe(
      'the console closed (code 1011): NOT_FOUND: VMI ns/vm1 is not on this node',
    );
  });
});
