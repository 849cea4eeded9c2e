// Graceful termination. Kubernetes sends SIGTERM and, after terminationGracePeriodSeconds, SIGKILL; endpoints are
// removed concurrently with SIGTERM. So: abort `signal` at once (readiness fails, workers stop taking keys), wait
// an optional delay while endpoints converge, run the registered hooks in reverse order of registration (last
// started, first stopped) under one deadline, then exit: 0 when every hook finished in time, 1 otherwise.
import type { Logger } from 'pino';

export type ShutdownHook = (deadline: AbortSignal) => void | Promise<void>;

export interface ShutdownOptions {
  log: Logger;
  /** Deadline for all hooks together; keep it under the pod's grace period. Default 25 s. */
  timeoutMs?: number;
  /** Pause between failing readiness and running hooks, for endpoint removal to propagate. Default 0. */
  delayMs?: number;
  /** Test seam; default process.exit. */
  exit?: (code: number) => void;
}

export class Shutdown {
  readonly #log: Logger;
  readonly #timeoutMs: number;
  readonly #delayMs: number;
  readonly #exit: (code: number) => void;
  readonly #hooks: { name: string; hook: ShutdownHook }[] = [];
  readonly #controller = new AbortController();
  #running: Promise<number> | undefined;

  constructor(opts: ShutdownOptions) {
    this.#log = opts.log.child({ component: 'shutdown' });
    this.#timeoutMs = opts.timeoutMs ?? 25_000;
    this.#delayMs = opts.delayMs ?? 0;
    this.#exit = opts.exit ?? ((code) => process.exit(code));
  }

  /** Aborted as soon as shutdown begins: the cue to stop taking new work. */
  get signal(): AbortSignal {
    return this.#controller.signal;
  }

  get shuttingDown(): boolean {
    return this.#controller.signal.aborted;
  }

  /** Registers a hook; hooks run in reverse order of registration. */
  register(name: string, hook: ShutdownHook): void {
    if (this.shuttingDown) throw new Error(`cannot register shutdown hook ${name}: shutdown has begun`);
    this.#hooks.push({ name, hook });
  }

  /**
   * Shuts down on the first of `signals`, then exits. A repeated signal is logged and otherwise ignored: the hooks
   * are already bounded by the deadline, and SIGKILL stays available. Returns a function removing the handlers.
   */
  installSignalHandlers(signals: readonly NodeJS.Signals[] = ['SIGTERM', 'SIGINT']): () => void {
    const onSignal = (sig: NodeJS.Signals): void => {
      if (this.#running) {
        this.#log.warn({ signal: sig }, 'already shutting down; ignoring the repeated signal');
        return;
      }
      void this.shutdown(sig).then((code) => this.#exit(code));
    };
    for (const s of signals) process.on(s, onSignal);
    return () => {
      for (const s of signals) process.off(s, onSignal);
    };
  }

  /** Runs the shutdown sequence once (later calls return the same result) and resolves with the exit code. */
  shutdown(reason: string): Promise<number> {
    this.#running ??= this.#run(reason);
    return this.#running;
  }

  async #run(reason: string): Promise<number> {
    const started = Date.now();
    this.#log.info({ reason, timeoutMs: this.#timeoutMs, hooks: this.#hooks.length }, 'shutting down');
    this.#controller.abort(new Error(`shutting down: ${reason}`));

    const deadline = new AbortController();
    let expire: () => void = () => {};
    const expired = new Promise<'expired'>((resolve) => {
      expire = () => resolve('expired');
    });
    const timer = setTimeout(() => {
      deadline.abort(new Error(`shutdown deadline of ${this.#timeoutMs} ms passed`));
      expire();
    }, this.#timeoutMs);

    let code = 0;
    try {
      if (this.#delayMs > 0) {
        await Promise.race([new Promise((resolve) => setTimeout(resolve, this.#delayMs)), expired]);
      }
      for (const { name, hook } of [...this.#hooks].reverse()) {
        if (deadline.signal.aborted) {
          this.#log.error({ hook: name }, 'shutdown deadline passed; skipping hook');
          code = 1;
          continue;
        }
        try {
          const outcome = await Promise.race([Promise.resolve().then(() => hook(deadline.signal)), expired]);
          if (outcome === 'expired') {
            this.#log.error({ hook: name }, 'shutdown hook did not finish before the deadline');
            code = 1;
          } else {
            this.#log.debug({ hook: name }, 'shutdown hook finished');
          }
        } catch (err) {
          this.#log.error({ hook: name, err }, 'shutdown hook failed');
          code = 1;
        }
      }
    } finally {
      clearTimeout(timer);
    }
    this.#log.info({ code, tookMs: Date.now() - started }, 'shutdown complete');
    return code;
  }
}
