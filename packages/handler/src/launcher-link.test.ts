// The link to one launcher, against a launcher.v1 server and a notify.v1 client over real unix sockets in a
// pod-like sockets folder (protocol peers with scripted answers; the real launcher is exercised in test/).
import { access, mkdir, mkdtemp, rename, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  dialNotify,
  negotiateVersion,
  serveLauncher,
  type LauncherImplementation,
  type RunningServer,
} from '@kubevirt-ts/proto';
import { silentLogger } from '@kubevirt-ts/runtime';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { POD_UID, UID, domain } from '../test/unit-fixtures.ts';
import type { LauncherRecord } from './checkpoint.ts';
import { LauncherLink } from './launcher-link.ts';
import { PodSockets } from './pod-sockets.ts';

const record: LauncherRecord = { namespace: 'ns1', name: 'vm1', uid: UID, podUid: POD_UID };

async function until<T>(
  check: () => Promise<T | undefined | false> | T | undefined | false,
  what: string,
): Promise<T> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('LauncherLink', () => {
  let root: string;
  let sockets: PodSockets;
  let dir: string;
  let launcher: RunningServer | undefined;
  let link: LauncherLink | undefined;
  const changes: string[] = [];
  const events: string[] = [];
  const rpcErrors: string[] = [];
  let domainJson = Buffer.alloc(0);
  const calls: string[] = [];

  const implementation: LauncherImplementation = {
    sync: () => {
      calls.push('sync');
      domainJson = Buffer.from(JSON.stringify(domain('Running', 'Booted')));
      return { success: true, message: '' };
    },
    pause: () => ({ success: false, message: 'cannot pause the domain ns1_vm1: it is Shutoff' }),
    unpause: () => ({ success: true, message: '' }),
    shutdown: (req) => {
      calls.push(`shutdown:${req.gracePeriodSeconds}:${req.vmiJson.length > 0}`);
      return { success: true, message: '' };
    },
    kill: () => ({ success: true, message: '' }),
    delete: () => ({ success: true, message: '' }),
    softReboot: () => ({ success: true, message: '' }),
    reset: () => ({ success: true, message: '' }),
    getDomain: () => ({ success: true, message: '', domainJson }),
    getStats: () => ({ success: true, message: '', statsJson: Buffer.from('{}') }),
    getGuestInfo: () => ({
      success: true,
      message: '',
      guestInfoJson: Buffer.from('{"os":{"name":"busybox"}}'),
    }),
    ping: () => ({ success: true, message: '' }),
  };

  /**
   * Starts the launcher as the real one does: on launcher-init-sock, renamed to launcher-sock when ready. It binds
   * through a short link of its own, as the real one sees the folder at its short mount point.
   */
  const startLauncher = async (): Promise<void> => {
    const own = join(root, 'l');
    await symlink(dir, own).catch(() => undefined);
    launcher = await serveLauncher({ unix: join(own, 'launcher-init-sock') }, implementation);
    await rename(join(own, 'launcher-init-sock'), join(own, 'launcher-sock'));
  };

  const newLink = (unresponsiveAfterMs = 60_000): LauncherLink =>
    (link = new LauncherLink({
      record,
      sockets,
      log: silentLogger(),
      unresponsiveAfterMs,
      pingIntervalMs: 50,
      hooks: {
        changed: (r) => changes.push(r.uid),
        k8sEvent: (_r, type, reason, message) => events.push(`${type}/${reason}/${message}`),
        rpcError: (rpc, code) => rpcErrors.push(`${rpc}:${code}`),
      },
    }));

  beforeEach(async () => {
    root = await mkdtemp(join(tmpdir(), 'kvts-ll-'));
    sockets = new PodSockets(join(root, 'pods'), join(root, 's'));
    dir = sockets.socketsDir(POD_UID);
    await mkdir(dir, { recursive: true });
    domainJson = Buffer.alloc(0);
    for (const a of [changes, events, rpcErrors, calls]) a.length = 0;
  });
  afterEach(async () => {
    await link?.close({ releaseLink: true });
    await launcher?.shutdown(0);
    link = undefined;
    launcher = undefined;
    await rm(root, { recursive: true, force: true });
  });

  it('is initializing until launcher-sock appears, then ready with the domain it reports', async () => {
    const l = newLink();
    expect(await l.observe()).toMatchObject({ state: 'initializing', domainKnown: false });
    // The notify socket is served from the start, so the launcher can report as soon as it is up.
    await access(join(dir, 'notify-sock'));
    await startLauncher();
    expect(await l.observe()).toEqual({
      state: 'ready',
      domainKnown: true,
      domain: undefined,
      guestInfo: undefined,
    });
    expect(await l.command('sync', undefined)).toEqual({ success: true, message: '' });
    await l.refreshDomain();
    expect((await l.observe()).domain?.status).toMatchObject({ status: 'Running', reason: 'Booted' });
  });

  it('returns the launcher’s refusals and sends the grace period with a shutdown', async () => {
    const l = newLink();
    await startLauncher();
    await l.observe();
    expect(await l.command('pause', undefined)).toEqual({
      success: false,
      message: 'cannot pause the domain ns1_vm1: it is Shutoff',
    });
    await l.shutdown(undefined, undefined);
    expect(calls).toContain('shutdown:0:false');
    expect(await l.guestInfo(60_000)).toEqual({ os: { name: 'busybox' } });
  });

  it('takes domain and Kubernetes events on notify-sock, and refuses events of another VMI', async () => {
    const l = newLink();
    await startLauncher();
    await l.observe();
    const notify = dialNotify({ unix: join(l.socketsDir!, 'notify-sock') });
    try {
      expect(await negotiateVersion(notify)).toBe('v1');
      const paused = domain('Paused', 'User');
      expect(
        await notify.domainEvent({ eventType: 'MODIFIED', domainJson: Buffer.from(JSON.stringify(paused)) }),
      ).toEqual({ success: true, message: '' });
      expect((await l.observe()).domain?.status.status).toBe('Paused');
      expect(changes).toContain(UID);

      const stranger = { ...paused, metadata: { ...paused.metadata, uid: 'someone-else' } };
      const refused = await notify.domainEvent({
        eventType: 'MODIFIED',
        domainJson: Buffer.from(JSON.stringify(stranger)),
      });
      expect(refused.success).toBe(false);
      expect((await l.observe()).domain?.metadata.uid).toBe(UID);

      await expect(
        notify.domainEvent({ eventType: 'MODIFIED', domainJson: Buffer.from('{"metadata":{}}') }),
      ).rejects.toMatchObject({ code: 3 });

      await notify.k8sEvent({
        type: 'WARNING',
        reason: 'GuestPanicked',
        message: 'the guest panicked',
        vmiUid: UID,
      });
      expect(events).toEqual(['Warning/GuestPanicked/the guest panicked']);

      await notify.domainEvent({
        eventType: 'DELETED',
        domainJson: Buffer.from(JSON.stringify(domain('Shutoff', 'Shutdown'))),
      });
      expect((await l.observe()).domain?.metadata.deletionTimestamp).toBeDefined();
    } finally {
      notify.close();
    }
  });

  it('marks a launcher that stops answering unresponsive after the timeout, and leaves the marker file', async () => {
    const l = newLink(300);
    await startLauncher();
    expect((await l.observe()).state).toBe('ready');
    await launcher!.shutdown(0);
    launcher = undefined;
    await until(async () => (await l.observe()).state === 'unresponsive', 'unresponsive');
    expect(changes).toContain(UID);
    expect(rpcErrors.some((e) => e.startsWith('Ping:'))).toBe(true);
    await access(join(dir, 'launcher-unresponsive'));
  });

  it('is gone once the pod’s sockets folder is removed', async () => {
    const l = newLink();
    await startLauncher();
    await l.observe();
    await launcher!.shutdown(0);
    launcher = undefined;
    await rm(join(root, 'pods', POD_UID), { recursive: true });
    expect((await l.observe()).state).toBe('gone');
  });
});
