// An informer: a local cache of one resource kept current by list + watch, whose event handlers only enqueue keys.
// It runs its own list/watch loop (what client-go calls a reflector) over client-node's Watch:
// - list, then watch from the list's resourceVersion; relist on 410 Gone, which kube-apiserver sends as an ERROR
//   event with code 410 on an HTTP 200 stream when the resourceVersion is too old (and as HTTP 410 elsewhere);
//   a relist reports objects that vanished meanwhile as deleted and changed ones as updated;
// - restart after an error after a jittered exponential backoff, resuming from the last resourceVersion;
// - `synced`: resolves once the first list is in the cache;
// - periodic resync: re-delivers every cached object as an update, so controllers stay level-triggered;
// - staleness: when nothing (no event, bookmark or successful reconnect) was seen for a long while although the
//   watch looks established, it forces a relist;
// - bookmarks: watches ask for them, so a resumed watch on a quiet resource is less likely to hit 410.
// Why not client-node's ListWatch: its loop keeps no notion of which list or watch belongs to which start, so it
// cannot be stopped and started safely. stop() misses a watch that is still connecting, which then keeps feeding
// the "stopped" cache, so changes made while stopped are never reported after a restart; a list that answers after
// stop() is still applied; and start() aborts that leftover watch, whose abort error then ends the new run, restart
// after restart. Here every list and watch belongs to one run; stop() ends the run, and whatever answers for an
// ended run is dropped.
import { Watch } from '@kubernetes/client-node';
import type { KubeConfig, KubernetesListObject, KubernetesObject } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeApiError, isGone, objectKey, splitKey } from './kube.ts';
import type { WorkQueue } from './workqueue.ts';

/** The watch primitive, with client-node Watch.watch's signature; tests substitute an in-memory server. */
export type WatchFn = (
  path: string,
  queryParams: Record<string, string | number | boolean | undefined>,
  callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
  done: (err: unknown) => void,
) => Promise<AbortController>;

export interface ListOptions {
  labelSelector?: string;
  fieldSelector?: string;
}

export interface InformerOptions<T extends KubernetesObject> {
  /** Names the informer in logs, e.g. `vmi`. */
  name: string;
  kubeConfig: KubeConfig;
  /** The collection path to watch, e.g. resourcePath({ group: 'kubevirt.io', version: 'v1', plural: … }). */
  path: string;
  /** Lists the collection with the given selectors (the same ones the watch uses). */
  list: (opts: ListOptions) => Promise<KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  log: Logger;
  /** Every cached object is re-delivered to `update` handlers this often (±10 %). Default 5 min; 0 disables. */
  resyncPeriodMs?: number;
  /** A watch that delivered nothing for this long is relisted. Default 5 min; 0 disables. */
  staleAfterMs?: number;
  /** Restart backoff after an error: base·2^n up to max, with up to 50 % jitter. Default 1 s … 60 s. */
  backoff?: { baseMs?: number; maxMs?: number };
  /** Test seam: replaces client-node's Watch.watch. */
  watch?: WatchFn;
  random?: () => number;
}

/** Handlers run synchronously inside the watch; they must only enqueue work (throwing is logged and ignored). */
export interface InformerHandlers<T> {
  add?: (obj: T) => void;
  /** Also called for every cached object on each periodic resync. */
  update?: (obj: T) => void;
  delete?: (obj: T) => void;
}

export type InformerState = 'stopped' | 'starting' | 'running' | 'backoff';

// A watch that ends without delivering anything is opened again at once the first time, then after 1 s, doubling
// up to 30 s, so a server that keeps closing streams at once is not hammered (client-node's ListWatch does the same).
const QUIET_RECONNECT_BASE_MS = 1000;
const QUIET_RECONNECT_MAX_MS = 30_000;

/** How one watch stream ended. `sawEvents`: it delivered at least one object or bookmark. */
type WatchEnd =
  | { kind: 'closed'; sawEvents: boolean }
  | { kind: 'gone'; sawEvents: boolean }
  | { kind: 'timeout' }
  | { kind: 'error'; error: unknown }
  | { kind: 'cancelled' };

interface ActiveWatch {
  /** The server answered 200 and the stream is open. */
  established: boolean;
  end(how: WatchEnd): void;
}

/** One start of the list/watch loop; stop() and each restart after an error begin a new one. */
interface Run {
  cancelled: boolean;
  watch: ActiveWatch | undefined;
  /** Ends a reconnect pause early. */
  wake: (() => void) | undefined;
}

interface WatchStatus {
  code?: number;
  reason?: string;
  message?: string;
}

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  /** Resolves once the first list is in the cache. */
  readonly synced: Promise<void>;
  readonly #log: Logger;
  readonly #path: string;
  readonly #listFn: () => Promise<KubernetesListObject<T>>;
  readonly #watchFn: WatchFn;
  readonly #watchParams: Record<string, string | boolean>;
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #resyncPeriodMs: number;
  readonly #staleAfterMs: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #random: () => number;
  /** namespace ('' when cluster-scoped) → name → object. */
  readonly #objects = new Map<string, Map<string, T>>();
  #resourceVersion = '';
  #markSynced!: () => void;
  #hasSynced = false;
  #state: InformerState = 'stopped';
  #run: Run | undefined;
  #failures = 0;
  #lastActivity = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #staleTimer: NodeJS.Timeout | undefined;

  constructor(opts: InformerOptions<T>) {
    this.name = opts.name;
    this.#log = opts.log.child({ informer: opts.name });
    this.#path = opts.path;
    this.#resyncPeriodMs = opts.resyncPeriodMs ?? 5 * 60_000;
    this.#staleAfterMs = opts.staleAfterMs ?? 5 * 60_000;
    this.#backoffBaseMs = opts.backoff?.baseMs ?? 1000;
    this.#backoffMaxMs = opts.backoff?.maxMs ?? 60_000;
    this.#random = opts.random ?? Math.random;
    this.synced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });

    if (opts.watch) {
      this.#watchFn = opts.watch;
    } else {
      const watch = new Watch(opts.kubeConfig);
      this.#watchFn = (path, params, callback, done) => watch.watch(path, params, callback, done);
    }
    const listOpts: ListOptions = {};
    this.#watchParams = { allowWatchBookmarks: true };
    if (opts.labelSelector !== undefined) {
      listOpts.labelSelector = opts.labelSelector;
      this.#watchParams.labelSelector = opts.labelSelector;
    }
    if (opts.fieldSelector !== undefined) {
      listOpts.fieldSelector = opts.fieldSelector;
      this.#watchParams.fieldSelector = opts.fieldSelector;
    }
    this.#listFn = () => opts.list(listOpts);
  }

  get state(): InformerState {
    return this.#state;
  }

  hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** Starts listing and watching; harmless when already started. After a stop it resumes from the cache's version. */
  start(): void {
    if (this.#state !== 'stopped') return;
    this.#state = 'starting';
    this.#lastActivity = Date.now();
    this.#launch();
    this.#scheduleResync();
    this.#scheduleStaleCheck();
  }

  /**
   * Stops watching and all timers. The cache keeps its last content and resourceVersion, and nothing changes it
   * or reaches the handlers until the next start, not even a list or watch that answers later.
   */
  stop(): Promise<void> {
    if (this.#state === 'stopped') return Promise.resolve();
    this.#state = 'stopped';
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#resyncTimer);
    clearTimeout(this.#staleTimer);
    const run = this.#run;
    this.#run = undefined;
    if (run) {
      run.cancelled = true;
      run.wake?.();
      run.watch?.end({ kind: 'cancelled' });
    }
    return Promise.resolve();
  }

  /** The cached object for a key (`namespace/name`, or `name` when cluster-scoped). */
  get(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    return this.#objects.get(namespace ?? '')?.get(name);
  }

  /** Cached objects, all or of one namespace. */
  list(namespace?: string): readonly T[] {
    if (namespace) return [...(this.#objects.get(namespace)?.values() ?? [])];
    return [...this.#objects.values()].flatMap((objs) => [...objs.values()]);
  }

  keys(): string[] {
    return this.list().map((o) => objectKey(o));
  }

  /** The resourceVersion the cache reflects. */
  resourceVersion(): string {
    return this.#resourceVersion;
  }

  /** Registers handlers; returns a function that removes them. */
  addHandlers(handlers: InformerHandlers<T>): () => void {
    this.#handlers.add(handlers);
    return () => this.#handlers.delete(handlers);
  }

  /**
   * Enqueues `keyOf(obj)` for every add, update, delete and resync. `keyOf` may map an object to other keys
   * (its owner's, say) or to none.
   */
  enqueueTo<K extends string>(
    queue: WorkQueue<K>,
    keyOf: (obj: T) => K | readonly K[] | undefined = (obj) => objectKey(obj) as K,
  ): () => void {
    const enqueue = (obj: T): void => {
      const keys = keyOf(obj);
      if (keys === undefined) return;
      if (typeof keys === 'string') queue.add(keys);
      else for (const k of keys) queue.add(k);
    };
    return this.addHandlers({ add: enqueue, update: enqueue, delete: enqueue });
  }

  /** Ends the current watch and relists (what a 410 Gone does). False when no watch is established yet. */
  forceRelist(): boolean {
    const watch = this.#run?.watch;
    if (!watch?.established) return false;
    watch.end({ kind: 'gone', sawEvents: false });
    return true;
  }

  /** Re-delivers every cached object to the update handlers. */
  resync(): void {
    for (const obj of this.list()) this.#dispatch('update', obj);
  }

  /** Milliseconds since the informer last heard from the API server. */
  idleMs(): number {
    return Date.now() - this.#lastActivity;
  }

  #touch(): void {
    this.#lastActivity = Date.now();
  }

  #launch(): void {
    const run: Run = { cancelled: false, watch: undefined, wake: undefined };
    this.#run = run;
    this.#listAndWatch(run).catch((err: unknown) => {
      if (!run.cancelled) this.#onError(err);
    });
  }

  /** Lists when the cache has no resourceVersion (or the last one expired), then watches; returns only when cancelled. */
  async #listAndWatch(run: Run): Promise<void> {
    let needList = this.#resourceVersion === '';
    let quietEnds = 0;
    while (!run.cancelled) {
      if (needList) {
        const list = await this.#listFn();
        if (run.cancelled) return;
        this.#touch();
        const resourceVersion = list.metadata?.resourceVersion ?? '';
        this.#log.debug({ objects: list.items.length, resourceVersion }, 'listed');
        this.#replace(list.items);
        this.#resourceVersion = resourceVersion;
        needList = false;
        if (!this.#hasSynced) {
          this.#hasSynced = true;
          this.#log.info({ objects: list.items.length }, 'informer cache synced');
          this.#markSynced();
        }
      }
      if (quietEnds >= 2) {
        await this.#pause(
          run,
          Math.min(QUIET_RECONNECT_BASE_MS * 2 ** (quietEnds - 2), QUIET_RECONNECT_MAX_MS),
        );
        if (run.cancelled) return;
      }
      const end = await this.#watchOnce(run);
      switch (end.kind) {
        case 'cancelled':
          return;
        case 'error':
          throw end.error;
        case 'timeout':
          // client-node's Watch gave up after its inactivity timeout, which is throttling enough.
          quietEnds = 0;
          break;
        case 'gone':
          needList = true;
          quietEnds = end.sawEvents ? 0 : quietEnds + 1;
          break;
        case 'closed':
          quietEnds = end.sawEvents ? 0 : quietEnds + 1;
          break;
      }
    }
  }

  /** Opens one watch from the cache's resourceVersion and applies its events until it ends. */
  #watchOnce(run: Run): Promise<WatchEnd> {
    return new Promise<WatchEnd>((resolve) => {
      let ended = false;
      let sawEvents = false;
      let controller: AbortController | undefined;
      const handle: ActiveWatch = {
        established: false,
        end: (how) => {
          if (ended) return;
          ended = true;
          if (run.watch === handle) run.watch = undefined;
          controller?.abort();
          resolve(how);
        },
      };
      run.watch = handle;

      const onEvent = (phase: string, obj: unknown): void => {
        // Events of an ended watch (stopped, superseded, or past its ERROR) must not touch the cache.
        if (ended) return;
        this.#touch();
        if (phase === 'ERROR') {
          handle.end(this.#errorEvent(obj as WatchStatus | undefined, sawEvents));
          return;
        }
        sawEvents = true;
        this.#apply(phase, obj as T);
      };
      const onDone = (err: unknown): void => {
        if (!ended) handle.end(this.#watchEnded(err, sawEvents));
      };

      const params: Record<string, string | boolean> = { ...this.#watchParams };
      if (this.#resourceVersion !== '') params.resourceVersion = this.#resourceVersion;
      this.#watchFn(this.#path, params, onEvent, onDone).then(
        (ctrl) => {
          controller = ctrl;
          // Stopped (or failed) while connecting: close the stream that has just opened.
          if (ended) {
            ctrl.abort();
            return;
          }
          handle.established = true;
          this.#failures = 0;
          this.#touch();
          if (this.#state === 'starting') this.#state = 'running';
        },
        // Watch.watch throws before its request when authentication fails; report it like any watch error.
        onDone,
      );
    });
  }

  /** kube-apiserver reports a failed watch as an ERROR event carrying a Status, then closes the stream. */
  #errorEvent(status: WatchStatus | undefined, sawEvents: boolean): WatchEnd {
    if (status?.code === 410) {
      this.#log.info({ reason: status.message }, 'watch expired (410 Gone); relisting');
      return { kind: 'gone', sawEvents };
    }
    const error = Object.assign(
      new Error(`the watch of ${this.#path} reported an error: ${status?.message ?? 'no message'}`),
      { statusCode: status?.code, body: status },
    );
    return { kind: 'error', error };
  }

  #watchEnded(err: unknown, sawEvents: boolean): WatchEnd {
    if (err === null || err === undefined) return { kind: 'closed', sawEvents };
    if (isGone(err)) {
      this.#log.info('watch answered 410 Gone; relisting');
      return { kind: 'gone', sawEvents };
    }
    if ((err as { name?: unknown }).name === 'TimeoutError') return { kind: 'timeout' };
    return { kind: 'error', error: err };
  }

  /** Resolves after `ms`, or at once when the run is cancelled. */
  #pause(run: Run, ms: number): Promise<void> {
    return new Promise((resolve) => {
      const wake = (): void => {
        clearTimeout(timer);
        if (run.wake === wake) run.wake = undefined;
        resolve();
      };
      const timer = setTimeout(wake, ms);
      run.wake = wake;
    });
  }

  #apply(phase: string, obj: T): void {
    switch (phase) {
      case 'ADDED':
      case 'MODIFIED':
        this.#upsert(obj);
        break;
      case 'DELETED':
        this.#remove(obj);
        break;
      case 'BOOKMARK':
        break;
      default:
        this.#log.debug({ phase }, 'ignored a watch event of an unknown type');
        return;
    }
    const resourceVersion = obj.metadata?.resourceVersion;
    if (resourceVersion) this.#resourceVersion = resourceVersion;
  }

  /** Makes the cache equal a fresh list: objects gone from it are deleted, new ones added, changed ones updated. */
  #replace(items: readonly T[]): void {
    const listed = new Set(items.map((o) => objectKey(o)));
    for (const obj of this.list()) {
      if (!listed.has(objectKey(obj))) this.#remove(obj);
    }
    for (const obj of items) this.#upsert(obj);
  }

  #upsert(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const name = obj.metadata?.name ?? '';
    let objs = this.#objects.get(namespace);
    if (!objs) {
      objs = new Map();
      this.#objects.set(namespace, objs);
    }
    const cached = objs.get(name);
    if (cached === undefined) {
      objs.set(name, obj);
      this.#dispatch('add', obj);
    } else if (
      cached.metadata?.resourceVersion === undefined ||
      cached.metadata.resourceVersion !== obj.metadata?.resourceVersion
    ) {
      objs.set(name, obj);
      this.#dispatch('update', obj);
    }
  }

  #remove(obj: T): void {
    const namespace = obj.metadata?.namespace ?? '';
    const objs = this.#objects.get(namespace);
    if (!objs?.delete(obj.metadata?.name ?? '')) return;
    if (objs.size === 0) this.#objects.delete(namespace);
    this.#dispatch('delete', obj);
  }

  #dispatch(kind: keyof InformerHandlers<T>, obj: T): void {
    for (const h of this.#handlers) {
      try {
        h[kind]?.(obj);
      } catch (err) {
        this.#log.error(
          { err, event: kind, key: objectKey(obj) },
          'informer handler threw; handlers must only enqueue',
        );
      }
    }
  }

  #onError(err: unknown): void {
    if (this.#state === 'stopped' || this.#state === 'backoff') return;
    this.#state = 'backoff';
    this.#run = undefined;
    const exp = Math.min(this.#backoffBaseMs * 2 ** this.#failures, this.#backoffMaxMs);
    const delay = Math.round(exp * (0.5 + this.#random() * 0.5));
    this.#failures++;
    this.#log.warn(
      { error: describeApiError(err), attempt: this.#failures, retryInMs: delay },
      'informer stopped on an error; restarting after backoff',
    );
    this.#restartTimer = setTimeout(() => {
      if (this.#state !== 'backoff') return;
      this.#state = 'starting';
      this.#launch();
    }, delay);
  }

  #scheduleResync(): void {
    if (this.#resyncPeriodMs <= 0) return;
    const delay = this.#resyncPeriodMs * (0.9 + this.#random() * 0.2);
    this.#resyncTimer = setTimeout(() => {
      if (this.#state === 'stopped') return;
      if (this.#hasSynced) {
        this.#log.debug({ objects: this.list().length }, 'periodic resync');
        this.resync();
      }
      this.#scheduleResync();
    }, delay);
  }

  #scheduleStaleCheck(): void {
    if (this.#staleAfterMs <= 0) return;
    this.#staleTimer = setTimeout(
      () => {
        if (this.#state === 'stopped') return;
        if (this.#state === 'running' && this.idleMs() > this.#staleAfterMs) {
          this.#log.warn({ idleMs: this.idleMs() }, 'watch delivered nothing for too long; relisting');
          if (this.forceRelist()) this.#touch();
        }
        this.#scheduleStaleCheck();
      },
      Math.max(1000, this.#staleAfterMs / 4),
    );
  }
}

/** Creates an informer; call `start()` on it, then await `synced` (or waitForCacheSync) before reconciling. */
export function createInformer<T extends KubernetesObject>(opts: InformerOptions<T>): Informer<T> {
  return new Informer(opts);
}

/** Resolves true when every informer has synced, false if `signal` aborts first. */
export async function waitForCacheSync(
  informers: readonly Pick<Informer<KubernetesObject>, 'synced'>[],
  signal: AbortSignal,
): Promise<boolean> {
  if (signal.aborted) return false;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<false>((resolve) => {
    onAbort = () => resolve(false);
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([Promise.all(informers.map((i) => i.synced)).then(() => true), aborted]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
