// Unit tests of the informer wrapper against an in-memory list/watch source. The real API server is exercised by
// the integration suite in ../test.
import {
  KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
  type V1OwnerReference,
} from '@kubernetes/client-node';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Informer, waitForCacheSync, type WatchFn } from './informer.ts';
import { silentLogger } from './logger.ts';
import { WorkQueue } from './workqueue.ts';

interface Obj extends KubernetesObject {
  metadata: {
    name: string;
    namespace?: string;
    resourceVersion?: string;
    ownerReferences?: V1OwnerReference[];
  };
  data?: string;
}

interface Watcher {
  params: Record<string, unknown>;
  cb: (phase: string, obj: unknown) => void;
  done: (err: unknown) => void;
  ctrl: AbortController;
}

/** Just enough of an API server for one collection: resourceVersions, list, watch streams, failures. */
class FakeSource {
  rv = 100;
  objects = new Map<string, Obj>();
  watchers = new Set<Watcher>();
  lists = 0;
  watches: Record<string, unknown>[] = [];
  failLists = 0;
  failWatches = 0;
  /** Lists wait for this before answering, so a test can act while a list is in flight. */
  holdLists: Promise<void> | undefined;
  /** Watches from a resourceVersion older than this are refused with 410 Gone, as after an etcd compaction. */
  compactedRv = 0;
  /** How the refusal comes: an ERROR event on an HTTP 200 stream (what kube-apiserver does) or an HTTP 410. */
  goneAs: 'event' | 'http' = 'event';

  list = async (): Promise<KubernetesListObject<Obj>> => {
    await Promise.resolve();
    if (this.holdLists) await this.holdLists;
    this.lists++;
    if (this.failLists > 0) {
      this.failLists--;
      throw Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
    }
    return {
      metadata: { resourceVersion: String(this.rv) },
      items: [...this.objects.values()].map((o) => structuredClone(o)),
    };
  };

  watch: WatchFn = async (_path, params, cb, done) => {
    await Promise.resolve();
    this.watches.push(params);
    const ctrl = new AbortController();
    if (this.failWatches > 0) {
      this.failWatches--;
      done(Object.assign(new Error('Internal Server Error'), { statusCode: 500 }));
      return ctrl;
    }
    if (Number(params.resourceVersion ?? 0) < this.compactedRv) {
      if (this.goneAs === 'http') {
        // client-node's Watch reports a non-200 answer through done before watch() returns.
        done(Object.assign(new Error('Gone'), { statusCode: 410 }));
      } else {
        setTimeout(() => {
          cb('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
          done(null);
        }, 0);
      }
      return ctrl;
    }
    const w: Watcher = { params, cb, done, ctrl };
    this.watchers.add(w);
    ctrl.signal.addEventListener('abort', () => {
      // Like client-node's Watch, an abort is reported through done a little later.
      if (this.watchers.delete(w))
        queueMicrotask(() => w.done(new DOMException('This operation was aborted', 'AbortError')));
    });
    return ctrl;
  };

  #emit(phase: string, obj: Obj): void {
    for (const w of this.watchers) w.cb(phase, structuredClone(obj));
  }

  /** Creates or updates an object; namespace '' makes it cluster-scoped. */
  put(name: string, data = '', namespace = 'ns'): void {
    const key = namespace ? `${namespace}/${name}` : name;
    const exists = this.objects.has(key);
    const obj: Obj = { metadata: { name, resourceVersion: String(++this.rv) }, data };
    if (namespace) obj.metadata.namespace = namespace;
    this.objects.set(key, obj);
    this.#emit(exists ? 'MODIFIED' : 'ADDED', obj);
  }

  remove(name: string, namespace = 'ns'): void {
    const key = `${namespace}/${name}`;
    const obj = this.objects.get(key);
    if (!obj) return;
    this.objects.delete(key);
    obj.metadata.resourceVersion = String(++this.rv);
    this.#emit('DELETED', obj);
  }

  /** Changes that happen while nobody watches (as if the watch history was compacted). */
  silently(fn: () => void): void {
    const saved = new Set(this.watchers);
    this.watchers.clear();
    fn();
    for (const w of saved) this.watchers.add(w);
  }

  /** The server ends every stream; with an error when given. */
  endStreams(err: unknown = null): void {
    for (const w of [...this.watchers]) {
      this.watchers.delete(w);
      w.done(err);
    }
  }

  /** Forgets the history up to now: a watch from an older resourceVersion gets 410 Gone. */
  compact(): void {
    this.compactedRv = this.rv;
  }

  /** The server says the watch's resourceVersion is too old, then closes, as kube-apiserver does. */
  expire(): void {
    for (const w of [...this.watchers]) {
      w.cb('ERROR', { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' });
      this.watchers.delete(w);
      w.done(null);
    }
  }
}

const settle = () => vi.advanceTimersByTimeAsync(0);

function setup(overrides: Partial<ConstructorParameters<typeof Informer<Obj>>[0]> = {}) {
  const src = new FakeSource();
  const events: string[] = [];
  const informer = new Informer<Obj>({
    name: 'test',
    kubeConfig: new KubeConfig(),
    path: '/api/v1/namespaces/ns/things',
    list: src.list,
    watch: src.watch,
    log: silentLogger(),
    resyncPeriodMs: 0,
    staleAfterMs: 0,
    random: () => 1,
    ...overrides,
  });
  informer.addHandlers({
    add: (o) => events.push(`add ${o.metadata.name}`),
    update: (o) => events.push(`update ${o.metadata.name}`),
    delete: (o) => events.push(`delete ${o.metadata.name}`),
  });
  return { src, informer, events };
}

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Informer', () => {
  it('lists into the cache, reports synced, then follows the watch', async () => {
    const { src, informer, events } = setup();
    src.put('a', '1');
    src.put('b', '1');
    expect(informer.hasSynced()).toBe(false);
    informer.start();
    await informer.synced;
    expect(informer.hasSynced()).toBe(true);
    expect(events.sort()).toEqual(['add a', 'add b']);
    expect(informer.get('ns/a')?.data).toBe('1');
    expect(informer.keys().sort()).toEqual(['ns/a', 'ns/b']);
    await settle();
    expect(informer.state).toBe('running');
    expect(src.watches[0]).toMatchObject({ resourceVersion: '102', allowWatchBookmarks: true });

    events.length = 0;
    src.put('c', '1');
    src.put('a', '2');
    src.remove('b');
    expect(events).toEqual(['add c', 'update a', 'delete b']);
    expect(informer.get('ns/a')?.data).toBe('2');
    expect(informer.get('ns/b')).toBeUndefined();
    expect(informer.list('ns')).toHaveLength(2);
    expect(informer.resourceVersion()).toBe(String(src.rv));
    await informer.stop();
  });

  it('keys cluster-scoped objects by name', async () => {
    const { src, informer } = setup();
    src.put('node-1', 'x', '');
    informer.start();
    await informer.synced;
    expect(informer.keys()).toEqual(['node-1']);
    expect(informer.get('node-1')?.data).toBe('x');
    await informer.stop();
  });

  it('relists after 410 Gone and reports objects deleted meanwhile', async () => {
    const { src, informer, events } = setup();
    src.put('a');
    src.put('b');
    informer.start();
    await informer.synced;
    await settle();
    events.length = 0;
    src.silently(() => {
      src.remove('a');
      src.put('c');
    });
    src.expire();
    await settle();
    expect(src.lists).toBe(2);
    expect(events.sort()).toEqual(['add c', 'delete a']);
    expect(informer.keys().sort()).toEqual(['ns/b', 'ns/c']);
    expect(src.watches.at(-1)).toMatchObject({ resourceVersion: String(src.rv) });
    await informer.stop();
  });

  it('restarts after an error with jittered backoff, resuming from the last resourceVersion', async () => {
    const { src, informer, events } = setup({ backoff: { baseMs: 1000, maxMs: 60_000 } });
    src.put('a');
    informer.start();
    await informer.synced;
    await settle();
    const rv = informer.resourceVersion();
    src.failWatches = 1;
    src.endStreams(Object.assign(new Error('stream reset'), { code: 'ECONNRESET' }));
    await settle();
    expect(informer.state).toBe('backoff');
    // random() = 1 → the full delay: 1 s, then 2 s.
    await vi.advanceTimersByTimeAsync(999);
    expect(src.watches).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(src.watches).toHaveLength(2);
    expect(informer.state).toBe('backoff');
    await vi.advanceTimersByTimeAsync(1999);
    expect(src.watches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(src.watches).toHaveLength(3);
    await settle();
    expect(informer.state).toBe('running');
    expect(src.watches.at(-1)).toMatchObject({ resourceVersion: rv });
    expect(src.lists).toBe(1);
    expect(informer.keys()).toEqual(['ns/a']);
    src.put('b');
    expect(events).toContain('add b');
    await informer.stop();
  });

  it('keeps retrying a failing initial list and syncs once it succeeds', async () => {
    const { src, informer } = setup({ backoff: { baseMs: 100, maxMs: 400 } });
    src.put('a');
    src.failLists = 4;
    informer.start();
    // Delays with random() = 1: 100, 200, 400, 400 ms.
    await vi.advanceTimersByTimeAsync(100 + 200 + 400 + 399);
    expect(src.lists).toBe(4);
    expect(informer.hasSynced()).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    expect(src.lists).toBe(5);
    expect(informer.hasSynced()).toBe(true);
    expect(informer.keys()).toEqual(['ns/a']);
    await informer.stop();
  });

  it('re-delivers every cached object as an update on each resync', async () => {
    const { src, informer, events } = setup({ resyncPeriodMs: 60_000, random: () => 0.5 });
    src.put('a');
    src.put('b');
    informer.start();
    await informer.synced;
    events.length = 0;
    await vi.advanceTimersByTimeAsync(59_999);
    expect(events).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(events.sort()).toEqual(['update a', 'update b']);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(events).toHaveLength(4);
    await informer.stop();
  });

  it('relists when an established watch stays silent past the staleness limit', async () => {
    const { src, informer } = setup({ staleAfterMs: 60_000 });
    informer.start();
    await informer.synced;
    await settle();
    src.put('a');
    await vi.advanceTimersByTimeAsync(45_000);
    expect(src.lists).toBe(1);
    // Last activity was at ~0 s; the check every 15 s finds it idle for more than 60 s at 75 s.
    await vi.advanceTimersByTimeAsync(30_000);
    expect(src.lists).toBe(2);
    expect(src.watches).toHaveLength(2);
    expect(informer.keys()).toEqual(['ns/a']);
    await informer.stop();
  });

  it('stops for good: no restart, no handlers, no watch', async () => {
    const { src, informer, events } = setup();
    src.put('a');
    informer.start();
    await informer.synced;
    await settle();
    await informer.stop();
    expect(src.watchers.size).toBe(0);
    events.length = 0;
    src.put('b');
    await vi.advanceTimersByTimeAsync(120_000);
    expect(events).toEqual([]);
    expect(src.watches).toHaveLength(1);
    expect(informer.state).toBe('stopped');
  });

  // A caller that stops right after `synced` does so while the watch is still connecting. That late watch must not
  // feed the stopped informer: whatever changes meanwhile has to be reported when it starts again, here through
  // the relist that a 410 Gone forces (given as an ERROR event on a 200 stream, or as an HTTP 410).
  it.each(['event', 'http'] as const)(
    'stays unchanged while stopped and reports what changed meanwhile after a 410 (%s) on restart',
    async (goneAs) => {
      const { src, informer, events } = setup();
      src.goneAs = goneAs;
      src.put('kept');
      src.put('doomed');
      informer.start();
      await informer.synced;
      await informer.stop();
      await settle();
      expect(src.watchers.size).toBe(0);
      events.length = 0;
      src.remove('doomed');
      src.put('born');
      src.compact();
      await settle();
      expect(events).toEqual([]);
      expect(informer.keys().sort()).toEqual(['ns/doomed', 'ns/kept']);

      informer.start();
      await settle();
      expect(events.sort()).toEqual(['add born', 'delete doomed']);
      expect(informer.keys().sort()).toEqual(['ns/born', 'ns/kept']);
      expect(src.lists).toBe(2);
      expect(informer.state).toBe('running');
      expect(src.watches.at(-1)).toMatchObject({ resourceVersion: String(src.rv) });
      await informer.stop();
    },
  );

  it('drops a list that answers after stop', async () => {
    const { src, informer, events } = setup();
    src.put('a');
    let release!: () => void;
    src.holdLists = new Promise((resolve) => (release = resolve));
    informer.start();
    await settle();
    await informer.stop();
    release();
    await settle();
    expect(events).toEqual([]);
    expect(informer.keys()).toEqual([]);
    expect(informer.hasSynced()).toBe(false);
    expect(src.watches).toHaveLength(0);

    src.holdLists = undefined;
    informer.start();
    await informer.synced;
    expect(events).toEqual(['add a']);
    await informer.stop();
  });

  it('starts again after a stop with one watch, without restarting over and over', async () => {
    const { src, informer, events } = setup();
    src.put('a');
    informer.start();
    await informer.synced;
    // Stopped while its watch connects, and started again once that watch would be up.
    await informer.stop();
    await settle();
    informer.start();
    await settle();
    expect(informer.state).toBe('running');
    await vi.advanceTimersByTimeAsync(60_000);
    expect(informer.state).toBe('running');
    expect(src.watches).toHaveLength(2);
    expect(src.watchers.size).toBe(1);
    expect(src.watches.at(-1)).toMatchObject({ resourceVersion: informer.resourceVersion() });
    expect(src.lists).toBe(1);
    src.put('b');
    expect(events).toEqual(['add a', 'add b']);
    await informer.stop();
  });

  it('reopens a watch the server closed, pausing only when closes without events repeat', async () => {
    const { src, informer } = setup();
    informer.start();
    await informer.synced;
    await settle();
    src.endStreams();
    await settle();
    expect(src.watches).toHaveLength(2);
    src.endStreams();
    await settle();
    expect(src.watches).toHaveLength(2);
    await vi.advanceTimersByTimeAsync(1000);
    expect(src.watches).toHaveLength(3);
    src.put('a');
    src.endStreams();
    await settle();
    expect(src.watches).toHaveLength(4);
    expect(src.lists).toBe(1);
    expect(informer.keys()).toEqual(['ns/a']);
    await informer.stop();
  });

  it('treats an ERROR event other than 410 as an error: backoff, then resume from the resourceVersion', async () => {
    const { src, informer } = setup({ backoff: { baseMs: 1000, maxMs: 60_000 } });
    src.put('a');
    informer.start();
    await informer.synced;
    await settle();
    const rv = informer.resourceVersion();
    for (const w of src.watchers) w.cb('ERROR', { kind: 'Status', code: 500, message: 'internal error' });
    await settle();
    expect(informer.state).toBe('backoff');
    expect(src.watchers.size).toBe(0);
    await vi.advanceTimersByTimeAsync(1000);
    expect(informer.state).toBe('running');
    expect(src.watches.at(-1)).toMatchObject({ resourceVersion: rv });
    expect(src.lists).toBe(1);
    await informer.stop();
  });

  it('does not let a throwing handler break the others or the cache', async () => {
    const { src, informer, events } = setup();
    informer.addHandlers({
      add: () => {
        throw new Error('handler bug');
      },
    });
    informer.start();
    await informer.synced;
    await settle();
    src.put('a');
    src.put('b');
    expect(events).toEqual(['add a', 'add b']);
    expect(informer.keys()).toHaveLength(2);
    await informer.stop();
  });

  it('enqueues keys, including mapped owner keys, and unsubscribes', async () => {
    const { src, informer } = setup();
    const queue = new WorkQueue({ name: 'q' });
    const owners = new WorkQueue({ name: 'owners' });
    const off = informer.enqueueTo(queue);
    informer.enqueueTo(owners, (o) => o.metadata.ownerReferences?.map((r) => `ns/${r.name}`));
    src.objects.set('ns/pod', {
      metadata: {
        name: 'pod',
        namespace: 'ns',
        resourceVersion: '1',
        ownerReferences: [
          { apiVersion: 'kubevirt.io/v1', kind: 'VirtualMachineInstance', name: 'vmi', uid: 'u1' },
        ],
      },
    });
    informer.start();
    await informer.synced;
    expect(await queue.get()).toBe('ns/pod');
    expect(await owners.get()).toBe('ns/vmi');
    off();
    await settle();
    src.put('other');
    expect(queue.len()).toBe(0);
    await informer.stop();
  });
});

describe('waitForCacheSync', () => {
  it('resolves true once all informers synced, false when aborted first', async () => {
    const { informer } = setup();
    const ctrl = new AbortController();
    const pending = waitForCacheSync([informer], ctrl.signal);
    informer.start();
    await expect(pending).resolves.toBe(true);
    await informer.stop();

    const { informer: never } = setup();
    const ctrl2 = new AbortController();
    const aborted = waitForCacheSync([never], ctrl2.signal);
    ctrl2.abort();
    await expect(aborted).resolves.toBe(false);
  });
});
