// An informer: a local cache of one resource kept current by list + watch, whose event handlers only enqueue keys.
// It wraps client-node's ListWatch (list, watch, cache, relist on 410 Gone, deletes for objects that vanished
// across a relist) and adds what ListWatch lacks:
// - restart after an error: a ListWatch that reports an error has stopped for good; this one starts it again
//   after a jittered exponential backoff, resuming from the last resourceVersion when it has one;
// - `synced`: resolves once the first list has been put into the cache;
// - periodic resync: re-delivers every cached object as an update, so controllers stay level-triggered;
// - staleness: when nothing (no event, bookmark or successful reconnect) was seen for a long while although the
//   watch looks established, it forces a relist;
// - bookmarks: watches ask for them, so a resumed watch on a quiet resource is less likely to hit 410.
import { ADD, DELETE, ERROR, ListWatch, UPDATE, Watch } from '@kubernetes/client-node';
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

interface TrackedWatchHooks {
  closed(): boolean;
  /** ListWatch calls watch only after it has put a list into its cache (or when resuming from a resourceVersion). */
  watchRequested(): void;
  established(): void;
  event(phase: string, obj: unknown): void;
  gone(): void;
}

interface ActiveWatch {
  established: boolean;
  end(err: unknown): void;
}

// A Watch that ListWatch drives, instrumented so the informer sees what happens on the stream and can end it.
class TrackedWatch extends Watch {
  readonly #inner: WatchFn | undefined;
  readonly #hooks: TrackedWatchHooks;
  #active: ActiveWatch | undefined;

  constructor(kc: KubeConfig, inner: WatchFn | undefined, hooks: TrackedWatchHooks) {
    super(kc);
    this.#inner = inner;
    this.#hooks = hooks;
  }

  override async watch(
    path: string,
    queryParams: Record<string, string | number | boolean | undefined>,
    callback: (phase: string, apiObj: unknown, watchObj?: unknown) => void,
    done: (err: unknown) => void,
  ): Promise<AbortController> {
    // ListWatch starts a watch after a list even when it was stopped meanwhile; such a watch must not run.
    if (this.#hooks.closed()) return new AbortController();
    this.#hooks.watchRequested();

    let finished = false;
    let controller: AbortController | undefined;
    const doneOnce = (err: unknown): void => {
      if (finished) return;
      finished = true;
      if (this.#active === handle) this.#active = undefined;
      if (isGone(err) && !(err as { forced?: boolean }).forced) this.#hooks.gone();
      done(err);
    };
    const handle: ActiveWatch = {
      established: false,
      end: (err) => {
        doneOnce(err);
        controller?.abort();
      },
    };
    this.#active = handle;
    const onEvent = (phase: string, obj: unknown, watchObj?: unknown): void => {
      this.#hooks.event(phase, obj);
      callback(phase, obj, watchObj);
    };
    const params = { ...queryParams, allowWatchBookmarks: true };
    try {
      controller = await (this.#inner ?? super.watch.bind(this))(path, params, onEvent, doneOnce);
    } catch (err) {
      // Watch.watch throws before its request when authentication fails; report it like any watch error.
      doneOnce(err);
      return new AbortController();
    }
    if (!finished) {
      handle.established = true;
      this.#hooks.established();
    }
    return controller;
  }

  /** Ends the established watch as if the server had answered 410 Gone, so ListWatch relists. */
  forceRelist(): boolean {
    const active = this.#active;
    if (active === undefined || !active.established) return false;
    active.end(Object.assign(new Error('relist forced by the informer'), { statusCode: 410, forced: true }));
    return true;
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export class Informer<T extends KubernetesObject> {
  readonly name: string;
  /** Resolves once the first list is in the cache. */
  readonly synced: Promise<void>;
  readonly #log: Logger;
  readonly #lw: ListWatch<T>;
  readonly #watch: TrackedWatch;
  readonly #handlers = new Set<InformerHandlers<T>>();
  readonly #resyncPeriodMs: number;
  readonly #staleAfterMs: number;
  readonly #backoffBaseMs: number;
  readonly #backoffMaxMs: number;
  readonly #random: () => number;
  #markSynced!: () => void;
  #hasSynced = false;
  #state: InformerState = 'stopped';
  #failures = 0;
  #lastActivity = 0;
  #restartTimer: NodeJS.Timeout | undefined;
  #resyncTimer: NodeJS.Timeout | undefined;
  #staleTimer: NodeJS.Timeout | undefined;

  constructor(opts: InformerOptions<T>) {
    this.name = opts.name;
    this.#log = opts.log.child({ informer: opts.name });
    this.#resyncPeriodMs = opts.resyncPeriodMs ?? 5 * 60_000;
    this.#staleAfterMs = opts.staleAfterMs ?? 5 * 60_000;
    this.#backoffBaseMs = opts.backoff?.baseMs ?? 1000;
    this.#backoffMaxMs = opts.backoff?.maxMs ?? 60_000;
    this.#random = opts.random ?? Math.random;
    this.synced = new Promise((resolve) => {
      this.#markSynced = resolve;
    });

    this.#watch = new TrackedWatch(opts.kubeConfig, opts.watch, {
      closed: () => this.#state === 'stopped',
      watchRequested: () => {
        if (!this.#hasSynced) {
          this.#hasSynced = true;
          this.#log.info({ objects: this.#lw.list().length }, 'informer cache synced');
          this.#markSynced();
        }
      },
      established: () => {
        this.#failures = 0;
        this.#touch();
        if (this.#state === 'starting') this.#state = 'running';
      },
      event: (phase, obj) => {
        this.#touch();
        if (phase === 'ERROR') {
          const status = obj as { code?: number; message?: string } | undefined;
          if (status?.code === 410) this.#log.info('watch expired (410 Gone); relisting');
          else
            this.#log.warn({ code: status?.code, reason: status?.message }, 'watch reported an error event');
        }
      },
      gone: () => this.#log.info('watch answered 410 Gone; relisting'),
    });

    const listOpts: ListOptions = {};
    if (opts.labelSelector !== undefined) listOpts.labelSelector = opts.labelSelector;
    if (opts.fieldSelector !== undefined) listOpts.fieldSelector = opts.fieldSelector;
    const list = async (): Promise<KubernetesListObject<T>> => {
      const result = await opts.list(listOpts);
      this.#touch();
      this.#log.debug(
        { objects: result.items.length, resourceVersion: result.metadata?.resourceVersion },
        'listed',
      );
      return result;
    };
    this.#lw = new ListWatch<T>(opts.path, this.#watch, list, false, opts.labelSelector, opts.fieldSelector, {
      delayFn: sleep,
    });
    this.#lw.on(ADD, (obj) => this.#dispatch('add', obj));
    this.#lw.on(UPDATE, (obj) => this.#dispatch('update', obj));
    this.#lw.on(DELETE, (obj) => this.#dispatch('delete', obj));
    this.#lw.on(ERROR, (err) => this.#onError(err));
  }

  get state(): InformerState {
    return this.#state;
  }

  hasSynced(): boolean {
    return this.#hasSynced;
  }

  /** Starts listing and watching; harmless when already started. */
  start(): void {
    if (this.#state !== 'stopped') return;
    this.#state = 'starting';
    this.#lastActivity = Date.now();
    this.#runListWatch();
    this.#scheduleResync();
    this.#scheduleStaleCheck();
  }

  /** Stops watching and all timers. The cache keeps its last content. */
  async stop(): Promise<void> {
    if (this.#state === 'stopped') return;
    this.#state = 'stopped';
    clearTimeout(this.#restartTimer);
    clearTimeout(this.#resyncTimer);
    clearTimeout(this.#staleTimer);
    await this.#lw.stop();
  }

  /** The cached object for a key (`namespace/name`, or `name` when cluster-scoped). */
  get(key: string): T | undefined {
    const { namespace, name } = splitKey(key);
    return this.#lw.get(name, namespace);
  }

  /** Cached objects, all or of one namespace. */
  list(namespace?: string): readonly T[] {
    return this.#lw.list(namespace);
  }

  keys(): string[] {
    return this.#lw.list().map((o) => objectKey(o));
  }

  /** The resourceVersion the cache reflects. */
  resourceVersion(): string {
    return this.#lw.latestResourceVersion();
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
    return this.#watch.forceRelist();
  }

  /** Re-delivers every cached object to the update handlers. */
  resync(): void {
    for (const obj of this.#lw.list()) this.#dispatch('update', obj);
  }

  /** Milliseconds since the informer last heard from the API server. */
  idleMs(): number {
    return Date.now() - this.#lastActivity;
  }

  #touch(): void {
    this.#lastActivity = Date.now();
  }

  #runListWatch(): void {
    this.#lw.start().catch((err: unknown) => this.#onError(err));
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
    // Stopping aborts the watch, which ListWatch reports as an error; that one is expected.
    if (this.#state === 'stopped' || this.#state === 'backoff') return;
    this.#state = 'backoff';
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
      this.#runListWatch();
    }, delay);
  }

  #scheduleResync(): void {
    if (this.#resyncPeriodMs <= 0) return;
    const delay = this.#resyncPeriodMs * (0.9 + this.#random() * 0.2);
    this.#resyncTimer = setTimeout(() => {
      if (this.#state === 'stopped') return;
      if (this.#hasSynced) {
        this.#log.debug({ objects: this.#lw.list().length }, 'periodic resync');
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
