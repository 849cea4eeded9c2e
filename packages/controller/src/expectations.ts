// Expectations (client-go's ControllerExpectations / UIDTrackingControllerExpectations, as KubeVirt uses them):
// before a controller creates or deletes children it records what it expects to see; until its informers have
// observed that (or the record is older than the TTL), it does not act on the key again. Without this a
// reconcile that runs on a cache which has not caught up with its own last create would create a duplicate.
// A third kind, a version expectation, covers our own writes to the object itself: after writing version V over
// version U, the key waits until its cached object is no longer U.

/** client-go's ExpectationsTimeout: a lost watch event must not block a key for ever. */
export const EXPECTATIONS_TTL_MS = 5 * 60_000;

interface Record {
  adds: number;
  /** Keys (namespace/name) of children whose deletion is expected. */
  deletes: Set<string>;
  /** The resourceVersion the owner had when we last wrote it; the cache must move past it. */
  staleVersion?: string;
  at: number;
}

export class Expectations {
  readonly #records = new Map<string, Record>();
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(opts: { ttlMs?: number; now?: () => number } = {}) {
    this.#ttlMs = opts.ttlMs ?? EXPECTATIONS_TTL_MS;
    this.#now = opts.now ?? Date.now;
  }

  #record(key: string): Record {
    let r = this.#records.get(key);
    if (r === undefined) {
      r = { adds: 0, deletes: new Set(), at: this.#now() };
      this.#records.set(key, r);
    }
    return r;
  }

  /** Call before creating `count` children of `key`. */
  expectCreations(key: string, count: number): void {
    const r = this.#record(key);
    r.adds += count;
    r.at = this.#now();
  }

  /** Call when a create was observed by the informer, or failed (it will never be observed then). */
  creationObserved(key: string): void {
    const r = this.#records.get(key);
    if (r !== undefined && r.adds > 0) r.adds--;
  }

  /** Call before deleting children of `key`, by their keys. */
  expectDeletions(key: string, childKeys: readonly string[]): void {
    const r = this.#record(key);
    for (const k of childKeys) r.deletes.add(k);
    r.at = this.#now();
  }

  /** Call when a child's deletion was observed (deleted, or marked for deletion), or the delete failed. */
  deletionObserved(key: string, childKey: string): void {
    this.#records.get(key)?.deletes.delete(childKey);
  }

  /** Call after writing the object of `key` itself; `previousVersion` is the resourceVersion the write replaced. */
  expectNewerVersion(key: string, previousVersion: string | undefined): void {
    if (previousVersion === undefined) return;
    const r = this.#record(key);
    r.staleVersion = previousVersion;
    r.at = this.#now();
  }

  /** Call with the cached resourceVersion whenever the informer delivers the object of `key`. */
  versionObserved(key: string, version: string | undefined): void {
    const r = this.#records.get(key);
    if (r?.staleVersion !== undefined && version !== r.staleVersion) delete r.staleVersion;
  }

  /**
   * True when nothing is outstanding for `key` (or what is outstanding has expired). `cachedVersion` is the
   * resourceVersion of the object of `key` in the cache now: the watch event of our own write may well have arrived
   * before the write's response, so the cache is asked, not only the events.
   */
  satisfied(key: string, cachedVersion?: string): boolean {
    const r = this.#records.get(key);
    if (r === undefined) return true;
    if (r.staleVersion !== undefined && cachedVersion !== undefined && cachedVersion !== r.staleVersion)
      delete r.staleVersion;
    const idle = r.adds <= 0 && r.deletes.size === 0 && r.staleVersion === undefined;
    if (idle) {
      this.#records.delete(key);
      return true;
    }
    if (this.#now() - r.at > this.#ttlMs) {
      this.#records.delete(key);
      return true;
    }
    return false;
  }

  /** Outstanding creates for `key` (printableStatus reads "start expected" from it). */
  pendingCreations(key: string): number {
    return this.#records.get(key)?.adds ?? 0;
  }

  /** Outstanding deletes for `key`. */
  pendingDeletions(key: string): number {
    return this.#records.get(key)?.deletes.size ?? 0;
  }

  /** How long until the record of `key` expires (for a requeue), 0 when there is none. */
  remainingMs(key: string): number {
    const r = this.#records.get(key);
    return r === undefined ? 0 : Math.max(0, r.at + this.#ttlMs - this.#now());
  }

  /** Forget `key` entirely (its object is gone). */
  delete(key: string): void {
    this.#records.delete(key);
  }
}
