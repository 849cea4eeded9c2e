// The notify client against a real notify.v1 server on a unix socket: waiting for the handler's socket, the order
// and collapsing of what is queued, and a handler that restarts.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { serveNotify } from '@kubevirt-ts/proto';
import type { RunningServer } from '@kubevirt-ts/proto';
import { silentLogger } from '@kubevirt-ts/runtime/logger';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { DomainJson } from './domain.ts';
import { NotifyClient } from './notify.ts';

const identity = { name: 'vm1', namespace: 'ns1', uid: 'u-1' };

function domain(status: string, reason = 'Unknown'): DomainJson {
  return {
    kind: 'Domain',
    apiVersion: 'kubevirt.io/v1',
    metadata: { ...identity },
    spec: {
      name: 'ns1_vm1',
      metadata: { kubevirt: { uid: 'u-1', graceperiod: { deletionGracePeriodSeconds: 30 } } },
    },
    status: { status: status as DomainJson['status']['status'], reason, guestAgentConnected: false },
  };
}

let dir: string;
let received: string[];
let server: RunningServer | undefined;
let client: NotifyClient | undefined;

async function handler(socket: string): Promise<RunningServer> {
  return serveNotify(
    { unix: socket },
    {
      domainEvent: (r) => {
        const d = JSON.parse(r.domainJson.toString()) as DomainJson;
        received.push(`${r.eventType} ${d.status.status}`);
        return { success: true, message: '' };
      },
      k8sEvent: (r) => {
        received.push(`${r.type} ${r.reason} ${r.vmiNamespace}/${r.vmiName}`);
        return { success: true, message: '' };
      },
    },
  );
}

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'notify-'));
  received = [];
});

afterEach(async () => {
  await client?.close();
  await server?.shutdown(0);
  client = undefined;
  server = undefined;
  await rm(dir, { recursive: true, force: true });
});

describe('NotifyClient', () => {
  it('waits for the handler, then sends the current state, Kubernetes events in order and only the latest domain state', async () => {
    const socket = join(dir, 'notify-sock');
    let current = domain('Running', 'Booted');
    client = new NotifyClient({
      socketPath: socket,
      identity,
      log: silentLogger(),
      current: () => Promise.resolve(current),
      maxBackoffMs: 50,
    });
    client.start();
    client.k8sEvent('Warning', 'SyncFailed', 'first');
    client.domainEvent('MODIFIED', domain('Paused'));
    client.domainEvent('MODIFIED', domain('Running'));
    client.k8sEvent('Normal', 'Second', 'second');
    await new Promise((r) => setTimeout(r, 200));
    expect(received).toEqual([]);
    current = domain('Running', 'Unpaused');
    server = await handler(socket);
    expect(await client.flush(10_000)).toBe(true);
    expect(received).toEqual([
      'MODIFIED Running',
      'WARNING SyncFailed ns1/vm1',
      'MODIFIED Running',
      'NORMAL Second ns1/vm1',
    ]);
  });

  it('keeps an ADDED as ADDED when later states collapse into it, and never merges into a DELETED', async () => {
    const socket = join(dir, 'notify-sock');
    client = new NotifyClient({
      socketPath: socket,
      identity,
      log: silentLogger(),
      current: () => Promise.resolve(undefined),
      maxBackoffMs: 50,
    });
    client.start();
    client.domainEvent('ADDED', domain('Shutoff'));
    client.domainEvent('MODIFIED', domain('Running'));
    client.domainEvent('DELETED', domain('Shutoff'));
    client.domainEvent('MODIFIED', domain('Shutoff'));
    server = await handler(socket);
    expect(await client.flush(10_000)).toBe(true);
    expect(received).toEqual(['ADDED Running', 'DELETED Shutoff', 'MODIFIED Shutoff']);
  });

  it('reconnects to a restarted handler and sends it the current state first', async () => {
    const socket = join(dir, 'notify-sock');
    server = await handler(socket);
    client = new NotifyClient({
      socketPath: socket,
      identity,
      log: silentLogger(),
      current: () => Promise.resolve(domain('Running', 'Booted')),
      maxBackoffMs: 50,
    });
    client.start();
    expect(await client.flush(10_000)).toBe(true);
    await server.shutdown(0);
    received = [];
    client.domainEvent('MODIFIED', domain('Paused'));
    await new Promise((r) => setTimeout(r, 200));
    server = await handler(socket);
    await expect.poll(() => received, { timeout: 10_000 }).toEqual(['MODIFIED Running', 'MODIFIED Paused']);
  });
});
