import { mkdtemp, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DevclusterError } from './errors.ts';
import { parseEndpoint, parseRule, startForwarder, type Forwarder } from './forwarder.ts';

const log = pino({ level: 'silent' });

describe('parseEndpoint / parseRule', () => {
  it('reads tcp and unix endpoints', () => {
    expect(parseEndpoint('tcp:127.0.0.1:36443')).toEqual({ kind: 'tcp', host: '127.0.0.1', port: 36443 });
    expect(parseEndpoint('unix:/run/a.sock')).toEqual({ kind: 'unix', path: '/run/a.sock' });
    expect(parseRule('unix:/a=tcp:172.30.0.1:6443')).toEqual({
      listen: { kind: 'unix', path: '/a' },
      target: { kind: 'tcp', host: '172.30.0.1', port: 6443 },
    });
  });

  it('rejects what it cannot use, saying why', () => {
    expect(() => parseEndpoint('unix:relative.sock')).toThrow(/absolute/);
    expect(() => parseEndpoint('tcp:host:99999')).toThrow(/port out of range/);
    expect(() => parseEndpoint('udp:1.2.3.4:5')).toThrow(/expected tcp:HOST:PORT/);
    expect(() => parseRule('tcp:127.0.0.1:1')).toThrow(/LISTEN=TARGET/);
  });
});

describe('startForwarder', () => {
  let dir: string;
  let echo: Server;
  let echoPort: number;
  let inner: Forwarder | undefined;
  let outer: Forwarder | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'devcluster-fwd-'));
    // The target: answers each chunk with its upper-case form, and closes when the client ends.
    echo = createServer((socket) => {
      socket.on('data', (data: Buffer) => socket.write(data.toString().toUpperCase()));
      socket.on('end', () => socket.end());
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    echoPort = (echo.address() as { port: number }).port;
    const sock = join(dir, 'api.sock');
    // The same chain as devcluster's: TCP → unix socket → TCP.
    inner = await startForwarder([parseRule(`unix:${sock}=tcp:127.0.0.1:${echoPort}`)], log);
    outer = await startForwarder([parseRule(`tcp:127.0.0.1:0=unix:${sock}`)], log);
  });

  afterAll(async () => {
    await outer?.close();
    await inner?.close();
    await new Promise((resolve) => echo.close(resolve));
    await rm(dir, { recursive: true, force: true });
  });

  const outerPort = () => {
    const bound = outer?.listening[0];
    if (bound?.kind !== 'tcp') throw new Error('expected a TCP listener');
    return bound.port;
  };

  it('carries bytes both ways through TCP → unix → TCP', async () => {
    const reply = await new Promise<string>((resolve, reject) => {
      const client = connect(outerPort(), '127.0.0.1', () => client.end('hello through the namespace'));
      let text = '';
      client.on('data', (d: Buffer) => (text += d.toString()));
      client.on('close', () => resolve(text));
      client.on('error', reject);
    });
    expect(reply).toBe('HELLO THROUGH THE NAMESPACE');
  });

  it('makes the unix socket owner-only', async () => {
    expect((await stat(join(dir, 'api.sock'))).mode & 0o777).toBe(0o600);
  });

  it('closes the client when the target refuses', async () => {
    const sock = join(dir, 'dead.sock');
    const deadEnd = await startForwarder([parseRule(`unix:${sock}=tcp:127.0.0.1:1`)], log);
    try {
      const closed = await new Promise<boolean>((resolve) => {
        const client = connect(sock);
        client.on('close', () => resolve(true));
        client.on('error', () => undefined);
      });
      expect(closed).toBe(true);
    } finally {
      await deadEnd.close();
    }
  });

  it('names the port and what to do when it is taken', async () => {
    const attempt = startForwarder(
      [parseRule(`tcp:127.0.0.1:${outerPort()}=unix:${join(dir, 'x.sock')}`)],
      log,
    );
    await expect(attempt).rejects.toBeInstanceOf(DevclusterError);
    await expect(attempt).rejects.toThrow(`tcp:127.0.0.1:${outerPort()} is already in use`);
  });
});
