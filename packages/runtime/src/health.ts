// The plain-HTTP health and metrics port every service exposes (controller-runtime's layout):
// - /livez: the process and its event loop answer; it checks no dependency, so a broken API server never gets
//   pods killed;
// - /readyz: every registered readiness check passes (caches synced, leader or standby, gRPC up); it fails from
//   the moment shutdown begins, so endpoints drop the pod while in-flight work drains;
// - /metrics: the prom-client registry in Prometheus text format.
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

/**
 * true when ready; false or a reason string when not; or `{ ok, detail }` to also say something when ready (which
 * /readyz?verbose shows, e.g. whether this replica leads). A check that throws or hangs counts as failing.
 */
export type ReadinessOutcome = boolean | string | { ok: boolean; detail: string };
export type ReadinessCheck = () => ReadinessOutcome | Promise<ReadinessOutcome>;

export interface HealthServerOptions {
  port: number;
  /** Bind address; default all interfaces. */
  host?: string;
  registry: Registry;
  log: Logger;
  /** Longest a readiness check may take before it counts as failing. Default 2 s. */
  checkTimeoutMs?: number;
}

/** The outcome of one readiness check, as /readyz reports it. */
export interface ReadinessResult {
  name: string;
  ok: boolean;
  reason?: string;
  /** What a passing check had to say. */
  detail?: string;
}

export class HealthServer {
  readonly #opts: HealthServerOptions;
  readonly #log: Logger;
  readonly #checks = new Map<string, ReadinessCheck>();
  readonly #server: http.Server;
  #shuttingDown = false;

  constructor(opts: HealthServerOptions) {
    this.#opts = opts;
    this.#log = opts.log.child({ component: 'health' });
    this.#server = http.createServer((req, res) => {
      this.#handle(req, res).catch((err: unknown) => {
        this.#log.error({ err, path: req.url }, 'health endpoint failed');
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end('internal error\n');
      });
    });
  }

  /** Registers a readiness check under a unique name; returns a function that removes it. */
  addReadinessCheck(name: string, check: ReadinessCheck): () => void {
    if (this.#checks.has(name))
      throw new Error(`readiness check ${JSON.stringify(name)} is already registered`);
    this.#checks.set(name, check);
    return () => this.#checks.delete(name);
  }

  /** Makes /readyz fail from now on (called when shutdown begins). */
  setShuttingDown(): void {
    this.#shuttingDown = true;
  }

  /** Starts listening; resolves with the bound port (useful with port 0). */
  listen(): Promise<number> {
    return new Promise((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(
          new Error(
            `cannot serve health/metrics on ${this.#opts.host ?? '*'}:${this.#opts.port}: ${err.message}; ` +
              'choose another port with --health-port',
          ),
        );
      };
      this.#server.once('error', onError);
      this.#server.listen(this.#opts.port, this.#opts.host, () => {
        this.#server.off('error', onError);
        const port = (this.#server.address() as AddressInfo).port;
        this.#log.info({ port }, 'serving /livez, /readyz and /metrics');
        resolve(port);
      });
    });
  }

  get port(): number | undefined {
    const addr = this.#server.address();
    return addr !== null && typeof addr === 'object' ? addr.port : undefined;
  }

  /** Stops accepting connections and closes idle keep-alive ones; resolves when all are closed. */
  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  /** Runs every readiness check (in parallel, each under the timeout). */
  async readiness(): Promise<ReadinessResult[]> {
    const results: ReadinessResult[] = [];
    if (this.#shuttingDown) results.push({ name: 'shutdown', ok: false, reason: 'shutting down' });
    const timeoutMs = this.#opts.checkTimeoutMs ?? 2000;
    const runs = [...this.#checks].map(async ([name, check]): Promise<ReadinessResult> => {
      let timer: NodeJS.Timeout | undefined;
      try {
        const timeout = new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve(`no answer within ${timeoutMs} ms`), timeoutMs);
        });
        const outcome = await Promise.race([Promise.resolve().then(check), timeout]);
        if (typeof outcome === 'object') {
          return outcome.ok
            ? { name, ok: true, detail: outcome.detail }
            : { name, ok: false, reason: outcome.detail };
        }
        return outcome === true
          ? { name, ok: true }
          : { name, ok: false, reason: typeof outcome === 'string' ? outcome : 'not ready' };
      } catch (err) {
        return { name, ok: false, reason: err instanceof Error ? err.message : String(err) };
      } finally {
        clearTimeout(timer);
      }
    });
    results.push(...(await Promise.all(runs)));
    return results;
  }

  async #handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://health.invalid');
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      res
        .writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain; charset=utf-8' })
        .end('method not allowed\n');
      return;
    }
    switch (url.pathname) {
      case '/livez':
        res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' }).end('ok\n');
        return;
      case '/readyz': {
        const results = await this.readiness();
        const ok = results.every((r) => r.ok);
        const verbose = url.searchParams.has('verbose') || !ok;
        const lines = verbose
          ? results.map((r) =>
              r.ok
                ? `[+]${r.name} ok${r.detail ? `: ${r.detail}` : ''}`
                : `[-]${r.name} failed: ${r.reason ?? 'not ready'}`,
            )
          : [];
        lines.push(ok ? 'readyz check passed' : 'readyz check failed');
        res
          .writeHead(ok ? 200 : 503, { 'content-type': 'text/plain; charset=utf-8' })
          .end(`${lines.join('\n')}\n`);
        return;
      }
      case '/metrics': {
        const body = await this.#opts.registry.metrics();
        res.writeHead(200, { 'content-type': this.#opts.registry.contentType }).end(body);
        return;
      }
      default:
        res.writeHead(404, { 'content-type': 'text/plain; charset=utf-8' }).end('not found\n');
    }
  }
}
