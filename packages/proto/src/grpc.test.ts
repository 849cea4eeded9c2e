// Round trips over real unix sockets in a temp dir: each contract, deadlines, the console stream, version
// negotiation, socket housekeeping and shutdown.
import { once } from 'node:events';
import { lstat, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { status } from '@grpc/grpc-js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  RpcError,
  VersionNegotiationError,
  dialHandler,
  dialLauncher,
  dialNotify,
  negotiateVersion,
  serveHandler,
  serveLauncher,
  serveNotify,
  unixTarget,
} from './index.ts';
import type {
  HandlerImplementation,
  LauncherImplementation,
  NotifyImplementation,
  RunningServer,
  handlerV1,
  launcherV1,
  notifyV1,
} from './index.ts';

let dir: string;
const cleanups: (() => unknown)[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'kvts-proto-'));
});

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  await rm(dir, { recursive: true, force: true });
});

function track(server: RunningServer): RunningServer {
  cleanups.push(() => server.shutdown(100));
  return server;
}

function tracked<T extends { close(): void }>(connection: T): T {
  cleanups.push(() => connection.close());
  return connection;
}

const ok = { success: true, message: '' };

function launcher(overrides: Partial<LauncherImplementation> = {}): LauncherImplementation {
  return {
    sync: () => ok,
    pause: () => ok,
    unpause: () => ok,
    shutdown: () => ok,
    kill: () => ok,
    delete: () => ok,
    softReboot: () => ok,
    reset: () => ok,
    getDomain: () => ({ ...ok, domainJson: Buffer.alloc(0) }),
    getStats: () => ({ ...ok, statsJson: Buffer.alloc(0) }),
    getGuestInfo: () => ({ ...ok, guestInfoJson: Buffer.alloc(0) }),
    ping: () => ok,
    ...overrides,
  };
}

/** Console: greets, then answers every chunk upper-cased; VNC: echoes. */
function handler(overrides: Partial<HandlerImplementation> = {}): HandlerImplementation {
  return {
    pause: (vmi) => ({ success: true, message: `paused ${vmi.namespace}/${vmi.name}` }),
    unpause: () => ok,
    softReboot: () => ok,
    guestOSInfo: () => ({ ...ok, guestOsInfoJson: Buffer.from('{}') }),
    console: (vmi, stream) => {
      stream.write(`console of ${vmi.namespace}/${vmi.name}\n`);
      stream.on('data', (chunk: Buffer) => stream.write(chunk.toString().toUpperCase()));
    },
    vnc: (_vmi, stream) => {
      stream.pipe(stream);
    },
    ...overrides,
  };
}

/** Reads from a byte stream until `expected` has arrived, leaving the stream open and paused. */
function readUntil(stream: Duplex, expected: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const done = (error?: Error): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', done);
      stream.pause();
      if (error === undefined) resolve(text);
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (text.includes(expected)) done();
    };
    const onEnd = (): void =>
      done(new Error(`stream ended before ${JSON.stringify(expected)}; got ${JSON.stringify(text)}`));
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', done);
    stream.resume();
  });
}

describe('Launcher over a unix socket', () => {
  it('round-trips commands: the VMI arrives as JSON bytes, the answer carries success and the domain', async () => {
    const received: { vmi?: unknown; grace?: number } = {};
    const socket = join(dir, 'launcher-sock');
    track(
      await serveLauncher(
        { unix: socket },
        launcher({
          sync: (request) => {
            received.vmi = JSON.parse(request.vmiJson.toString()) as unknown;
            return ok;
          },
          shutdown: (request) => {
            received.grace = request.gracePeriodSeconds;
            return { success: false, message: 'domain is not running' };
          },
          getDomain: () => ({ ...ok, domainJson: Buffer.from('{"status":{"status":"Running"}}') }),
        }),
      ),
    );
    const client = tracked(dialLauncher({ unix: socket }));
    expect(await negotiateVersion(client)).toBe('v1');

    const vmi = { metadata: { namespace: 'default', name: 'testvm', uid: 'u-1' } };
    const request: launcherV1.VMIRequest = { vmiJson: Buffer.from(JSON.stringify(vmi)) };
    expect(await client.sync(request)).toEqual(ok);
    expect(received.vmi).toEqual(vmi);

    expect(await client.shutdown({ vmiJson: request.vmiJson, gracePeriodSeconds: 30 })).toEqual({
      success: false,
      message: 'domain is not running',
    });
    expect(received.grace).toBe(30);

    const domain = await client.getDomain({});
    expect(JSON.parse(domain.domainJson.toString())).toEqual({ status: { status: 'Running' } });
    expect(await client.ping({})).toEqual(ok);
  });

  it('answers with the status an implementation throws, and INTERNAL for anything else', async () => {
    const socket = join(dir, 'launcher-sock');
    track(
      await serveLauncher(
        { unix: socket },
        launcher({
          getStats: () => {
            throw new RpcError(status.FAILED_PRECONDITION, 'no domain defined yet');
          },
          getGuestInfo: () => Promise.reject(new Error('agent socket vanished')),
        }),
      ),
    );
    const client = tracked(dialLauncher({ unix: socket }));
    await expect(client.getStats({})).rejects.toMatchObject({
      code: status.FAILED_PRECONDITION,
      details: 'no domain defined yet',
    });
    await expect(client.getGuestInfo({})).rejects.toMatchObject({
      code: status.INTERNAL,
      details: 'agent socket vanished',
    });
  });
});

describe('Notify over a unix socket', () => {
  it('delivers domain events and Kubernetes events', async () => {
    const events: notifyV1.DomainEventRequest__Output[] = [];
    const k8sEvents: notifyV1.K8sEventRequest__Output[] = [];
    const socket = join(dir, 'notify-sock');
    const implementation: NotifyImplementation = {
      domainEvent: (request) => {
        events.push(request);
        return ok;
      },
      k8sEvent: (request) => {
        k8sEvents.push(request);
        return ok;
      },
    };
    track(await serveNotify({ unix: socket }, implementation));
    const client = tracked(dialNotify({ unix: socket }));
    expect(await negotiateVersion(client)).toBe('v1');

    await client.domainEvent({ eventType: 'MODIFIED', domainJson: Buffer.from('{"spec":{}}') });
    await client.k8sEvent({
      type: 'WARNING',
      reason: 'GuestPanicked',
      message: 'the guest kernel panicked',
      vmiNamespace: 'default',
      vmiName: 'testvm',
      vmiUid: 'u-1',
    });

    expect(events).toHaveLength(1);
    expect(events[0]?.eventType).toBe('MODIFIED');
    expect(events[0]?.domainJson.toString()).toBe('{"spec":{}}');
    expect(events[0]?.statusJson).toHaveLength(0);
    expect(k8sEvents).toEqual([
      {
        type: 'WARNING',
        reason: 'GuestPanicked',
        message: 'the guest kernel panicked',
        vmiNamespace: 'default',
        vmiName: 'testvm',
        vmiUid: 'u-1',
      },
    ]);
  });
});

describe('Handler over a unix socket', () => {
  it('round-trips a unary call', async () => {
    const socket = join(dir, 'handler-sock');
    track(await serveHandler({ unix: socket }, handler()));
    const client = tracked(dialHandler({ unix: socket }));
    expect(await negotiateVersion(client)).toBe('v1');
    expect(await client.pause({ namespace: 'default', name: 'testvm' })).toEqual({
      success: true,
      message: 'paused default/testvm',
    });
  });

  it('keeps a console stream open past every unary deadline and carries bytes both ways', async () => {
    const socket = join(dir, 'handler-sock');
    const serverSaw: string[] = [];
    let serverStreamClosed: Promise<unknown> | undefined;
    track(
      await serveHandler(
        { unix: socket },
        handler({
          console: (vmi, stream) => {
            serverStreamClosed = once(stream, 'close');
            stream.write(`console of ${vmi.namespace}/${vmi.name}\n`);
            stream.on('data', (chunk: Buffer) => {
              serverSaw.push(chunk.toString());
              stream.write(chunk.toString().toUpperCase());
            });
          },
        }),
      ),
    );
    const deadlinesMs = { short: 50, normal: 50, long: 50 };
    const client = tracked(dialHandler({ unix: socket }, { deadlinesMs }));
    const stream = client.console({ namespace: 'default', name: 'testvm' });
    expect(await readUntil(stream, '\n')).toBe('console of default/testvm\n');

    // Idle for several times the longest unary deadline: a stream has none.
    await sleep(6 * deadlinesMs.long);
    stream.write('hello guest');
    expect(await readUntil(stream, 'HELLO GUEST')).toBe('HELLO GUEST');
    expect(serverSaw.join('')).toBe('hello guest');

    // Closing our side ends the call on both sides.
    const clientClosed = once(stream, 'close');
    stream.end();
    stream.resume();
    await serverStreamClosed;
    await clientClosed;
  });

  it('carries VNC bytes the same way', async () => {
    const socket = join(dir, 'handler-sock');
    track(await serveHandler({ unix: socket }, handler()));
    const client = tracked(dialHandler({ unix: socket }));
    const stream = client.vnc({ namespace: 'default', name: 'testvm' });
    stream.write(Buffer.from('RFB 003.008\n'));
    expect(await readUntil(stream, '\n')).toBe('RFB 003.008\n');
    stream.destroy();
  });

  it('refuses a stream whose first message does not name a VMI', async () => {
    const socket = join(dir, 'handler-sock');
    track(await serveHandler({ unix: socket }, handler()));
    const client = tracked(dialHandler({ unix: socket }));
    const call = client.raw.Console();
    const failed = once(call, 'error');
    call.write({ data: Buffer.from('no open message') } satisfies handlerV1.StreamRequest);
    const [error] = (await failed) as [RpcError];
    expect(error.code).toBe(status.INVALID_ARGUMENT);
    expect(error.details).toMatch(/first message .* must be `open`/);
  });

  it('ends the stream with the error a console implementation fails with', async () => {
    const socket = join(dir, 'handler-sock');
    track(
      await serveHandler(
        { unix: socket },
        handler({
          console: () => {
            throw new RpcError(status.NOT_FOUND, 'VMI default/ghost is not on this node');
          },
        }),
      ),
    );
    const client = tracked(dialHandler({ unix: socket }));
    const stream = client.console({ namespace: 'default', name: 'ghost' });
    stream.resume();
    const [error] = (await once(stream, 'error')) as [RpcError];
    expect(error).toBeInstanceOf(RpcError);
    expect(error.code).toBe(status.NOT_FOUND);
    expect(error.message).toContain('/kubevirt_ts.handler.v1.Handler/Console');
  });
});

describe('deadlines', () => {
  async function slowLauncher(delayMs: number): Promise<string> {
    const socket = join(dir, 'launcher-sock');
    track(
      await serveLauncher(
        { unix: socket },
        launcher({
          ping: async () => {
            await sleep(delayMs);
            return ok;
          },
          sync: async () => {
            await sleep(delayMs);
            return ok;
          },
        }),
        { shutdownGraceMs: 10 },
      ),
    );
    return socket;
  }

  it('fails a call past its own timeout with DEADLINE_EXCEEDED', async () => {
    const client = tracked(dialLauncher({ unix: await slowLauncher(1_000) }));
    const failure = client.ping({}, { timeoutMs: 50 });
    await expect(failure).rejects.toBeInstanceOf(RpcError);
    await expect(failure).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    await expect(failure).rejects.toThrow(/Launcher\/Ping on unix:\/\/\/.* DEADLINE_EXCEEDED after 50 ms/);
  });

  it('gives every call its class deadline when the caller sets none', async () => {
    const socket = await slowLauncher(1_000);
    const client = tracked(dialLauncher({ unix: socket }, { deadlinesMs: { short: 50, long: 80 } }));
    await expect(client.ping({})).rejects.toMatchObject({ code: status.DEADLINE_EXCEEDED });
    await expect(client.sync({})).rejects.toThrow(/after 80 ms/);
  });

  it('refuses a call without a finite deadline', async () => {
    const client = tracked(dialLauncher({ unix: await slowLauncher(0) }));
    await expect(client.ping({}, { timeoutMs: Number.POSITIVE_INFINITY })).rejects.toThrow(
      /every unary call has a deadline/,
    );
    expect(() => dialLauncher({ unix: join(dir, 'x') }, { deadlinesMs: { short: 0 } })).toThrow(
      /short deadline/,
    );
  });

  it('cancels a call when its signal aborts', async () => {
    const client = tracked(dialLauncher({ unix: await slowLauncher(1_000) }));
    const controller = new AbortController();
    const call = client.ping({}, { signal: controller.signal });
    controller.abort();
    await expect(call).rejects.toMatchObject({ code: status.CANCELLED });
  });
});

describe('version negotiation', () => {
  it('an older client and a newer server agree on the older version', async () => {
    const socket = join(dir, 'launcher-sock');
    track(await serveLauncher({ unix: socket }, launcher(), { versions: ['v1', 'v2'] }));
    const client = tracked(dialLauncher({ unix: socket }));
    expect(await client.getVersions()).toEqual(['v1', 'v2']);
    expect(await negotiateVersion(client, ['v1'])).toBe('v1');
  });

  it('a newer client and an older server agree on the older version', async () => {
    const socket = join(dir, 'launcher-sock');
    track(await serveLauncher({ unix: socket }, launcher(), { versions: ['v1'] }));
    const client = tracked(dialLauncher({ unix: socket }));
    expect(await negotiateVersion(client, ['v1', 'v2'])).toBe('v1');
  });

  it('says clearly when there is no common version', async () => {
    const socket = join(dir, 'launcher-sock');
    track(await serveLauncher({ unix: socket }, launcher(), { versions: ['v1'] }));
    const client = tracked(dialLauncher({ unix: socket }));
    const failure = negotiateVersion(client, ['v2', 'v3']);
    await expect(failure).rejects.toBeInstanceOf(VersionNegotiationError);
    await expect(failure).rejects.toThrow(
      /no kubevirt_ts\.launcher version in common with unix:\/\/\/.*: this side speaks v2, v3, the server speaks v1; upgrade the older side/,
    );
  });

  it('says clearly when the address serves another contract', async () => {
    const socket = join(dir, 'notify-sock');
    track(await serveNotify({ unix: socket }, { domainEvent: () => ok, k8sEvent: () => ok }));
    const client = tracked(dialLauncher({ unix: socket }));
    await expect(negotiateVersion(client)).rejects.toThrow(
      /does not serve kubevirt_ts\.launcher \(this server serves kubevirt_ts\.notify/,
    );
  });
});

describe('unix socket housekeeping', () => {
  it('replaces a stale socket file left by a dead server', async () => {
    const socket = join(dir, 'launcher-sock');
    // A socket file nobody listens on: bind elsewhere, move the file, close (which unlinks only the old name).
    const leftover = createServer();
    leftover.listen(join(dir, 'old-sock'));
    await once(leftover, 'listening');
    await rename(join(dir, 'old-sock'), socket);
    leftover.close();
    await once(leftover, 'close');
    expect((await lstat(socket)).isSocket()).toBe(true);

    track(await serveLauncher({ unix: socket }, launcher()));
    expect(await tracked(dialLauncher({ unix: socket })).ping({})).toEqual(ok);
  });

  it('refuses a socket another process is serving on, and a path that is not a socket', async () => {
    const live = join(dir, 'live-sock');
    const other = createServer();
    other.listen(live);
    await once(other, 'listening');
    cleanups.push(() => new Promise((resolve) => other.close(resolve)));
    await expect(serveLauncher({ unix: live }, launcher())).rejects.toThrow(/another process is serving on/);

    const file = join(dir, 'plain-file');
    await writeFile(file, 'not a socket');
    await expect(serveLauncher({ unix: file }, launcher())).rejects.toThrow(/is not a unix socket/);
  });

  it('serves and dials a path relative to the working directory', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    cleanups.push(() => process.chdir(cwd));
    const server = track(await serveLauncher({ unix: 'rel-sock' }, launcher()));
    expect(server.target).toBe('unix:rel-sock');
    expect((await lstat(join(dir, 'rel-sock'))).isSocket()).toBe(true);
    expect(await tracked(dialLauncher({ unix: 'rel-sock' })).ping({})).toEqual(ok);
  });

  it('rejects a socket path longer than Linux allows, saying what to do', () => {
    const long = `/${'d'.repeat(120)}/launcher-sock`;
    expect(() => unixTarget(long)).toThrow(/longer than the 107 Linux allows; chdir to its folder/);
    expect(() => dialLauncher({ unix: long })).toThrow(/107/);
  });
});

describe('shutdown', () => {
  it('waits for the grace period, then cancels open streams and removes its socket', async () => {
    const socket = join(dir, 'handler-sock');
    const server = await serveHandler({ unix: socket }, handler());
    const client = tracked(dialHandler({ unix: socket }));
    const stream = client.console({ namespace: 'default', name: 'testvm' });
    await readUntil(stream, '\n');
    const ended = new Promise<unknown>((resolve) => {
      stream.on('error', resolve);
      stream.on('close', () => resolve(undefined));
    });

    await server.shutdown(100);
    await ended;
    expect(stream.destroyed).toBe(true);
    await expect(lstat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(
      client.pause({ namespace: 'default', name: 'testvm' }, { timeoutMs: 1_000 }),
    ).rejects.toMatchObject({
      code: status.UNAVAILABLE,
    });
  });
});
