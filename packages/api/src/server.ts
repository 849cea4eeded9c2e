// virt-api's HTTPS server: the admission webhooks (POST /<kind>-mutate|validate), the subresources.kubevirt.io
// discovery documents and its endpoints (plain requests and websocket upgrades, authenticated here as coming from
// the front proxy, then handed to the SubresourceEndpoint), on one port behind the `virt-api` Service. The serving certificate and the front-proxy CA
// are swapped with setSecureContext when they change, so rotations never need a restart; the server listens only
// once it has a certificate, which is also when it reports ready.
import https from 'node:https';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { performance } from 'node:perf_hooks';
import { histogram, type CertificateMaterial, type Logger, type Registry } from '@kubevirt-ts/runtime';
import { ADMISSION_ROUTES, type AdmissionContext, type Admitter } from './admission/admitters.ts';
import {
  BadReviewError,
  parseAdmissionReview,
  toResponse,
  type AdmissionRequest,
  type Verdict,
} from './admission/review.ts';
import type { RequestHeaderAuthenticator } from './auth.ts';
import {
  GROUP_PATH,
  VERSION_PATH,
  apiGroup,
  apiGroupList,
  apiResourceList,
  openApiV2,
  openApiV3GroupVersion,
  openApiV3Index,
  versionInfo,
} from './discovery.ts';
import type { RequestUser } from './subresources/api.ts';
import type { StatusBody, StatusReason } from './subresources/errors.ts';
import { isNamespacedSubresourcePath } from './subresources/request.ts';
import { rejectUpgrade } from './subresources/websocket.ts';

/** What serves the namespaced subresource paths, once the server has authenticated the front proxy. */
export interface SubresourceEndpoint {
  handle(req: IncomingMessage, res: ServerResponse, who: RequestUser): Promise<void>;
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, who: RequestUser): Promise<void>;
  /** Ends open streams, so close() does not wait for consoles to be left. */
  closeSessions(): void;
}

export interface VirtApiServerOptions {
  port: number;
  /** Bind address; default all interfaces. */
  host?: string;
  log: Logger;
  registry?: Registry;
  context: AdmissionContext;
  authenticator: RequestHeaderAuthenticator;
  version: string;
  /** Answers `.../healthz`: true when virt-api's caches are in sync with the API server. */
  healthy?: () => boolean;
  routes?: Readonly<Record<string, Admitter>>;
  /** The subresource endpoints (start, stop, console, ...); without it their paths answer 404. */
  subresources?: SubresourceEndpoint;
  /** Largest request body accepted. Default 8 MiB (an update review carries two objects of up to 3 MiB). */
  maxBodyBytes?: number;
  /** Called after each review with the time spent in the server, from request to response (benchmarks). */
  onReview?: (path: string, seconds: number, allowed: boolean) => void;
}

/** One JSON response; small enough to build as a string. */
function sendJson(res: ServerResponse, code: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

function statusBody(code: number, reason: StatusReason, message: string): StatusBody {
  return { kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', code, reason, message };
}

class BodyTooLargeError extends Error {}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BodyTooLargeError(`request body over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

export class VirtApiServer {
  readonly #o: VirtApiServerOptions;
  readonly #log: Logger;
  readonly #routes: Readonly<Record<string, Admitter>>;
  readonly #server: https.Server;
  readonly #observe: (labels: { path: string; operation: string; allowed: string }, seconds: number) => void;
  #material: CertificateMaterial | undefined;
  #listening: Promise<number> | undefined;

  constructor(opts: VirtApiServerOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'https' });
    this.#routes = opts.routes ?? ADMISSION_ROUTES;
    // Ask for a client certificate without requiring one: the aggregator presents its front-proxy certificate,
    // the webhook caller presents none. Which paths need one is decided per request.
    this.#server = https.createServer({ requestCert: true, rejectUnauthorized: false }, (req, res) =>
      this.#handle(req, res),
    );
    // The API server keeps connections to webhooks alive for long; a short idle timeout here would turn every
    // few reviews into a fresh TLS handshake.
    this.#server.keepAliveTimeout = 120_000;
    this.#server.headersTimeout = 125_000;
    this.#server.on('tlsClientError', (err) => this.#log.debug({ err }, 'TLS handshake failed'));
    this.#server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) =>
      this.#upgrade(req, socket, head),
    );
    const review = opts.registry
      ? histogram(opts.registry, {
          name: 'kubevirt_virt_api_admission_review_duration_seconds',
          help: 'Time virt-api spends on one admission review, from request to response, by webhook path',
          labelNames: ['path', 'operation', 'allowed'],
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
        })
      : undefined;
    this.#observe = (labels, seconds) => review?.observe(labels, seconds);
  }

  get certificateLoaded(): boolean {
    return this.#material !== undefined;
  }

  get port(): number | undefined {
    const addr = this.#server.address();
    return addr !== null && typeof addr === 'object' ? addr.port : undefined;
  }

  /** Installs (or replaces) the serving certificate. */
  setCertificate(material: CertificateMaterial): void {
    this.#material = material;
    this.#applyContext();
  }

  /** Rebuilds the TLS context after the front-proxy CA changed. */
  clientCaChanged(): void {
    if (this.#material !== undefined) this.#applyContext();
  }

  #applyContext(): void {
    const material = this.#material;
    if (material === undefined) return;
    const clientCa = this.#o.authenticator.config?.caPem;
    // Without a request-header CA there must be no CA list at all: Node would otherwise verify client
    // certificates against its public roots, and `authorized` would mean nothing.
    this.#server.setSecureContext({ cert: material.cert, key: material.key, ca: clientCa ?? [] });
  }

  /** Starts listening (once; later calls return the same port). Call after the first setCertificate. */
  listen(): Promise<number> {
    if (this.#material === undefined) {
      return Promise.reject(new Error('virt-api cannot listen before it has a serving certificate'));
    }
    this.#listening ??= new Promise((resolve, reject) => {
      const onError = (err: Error): void =>
        reject(
          new Error(`cannot listen on ${this.#o.host ?? '*'}:${this.#o.port}: ${err.message}; choose --port`),
        );
      this.#server.once('error', onError);
      this.#server.listen(this.#o.port, this.#o.host, () => {
        this.#server.off('error', onError);
        const port = (this.#server.address() as AddressInfo).port;
        this.#log.info(
          { port, host: this.#o.host ?? '*' },
          'serving admission webhooks and discovery over HTTPS',
        );
        resolve(port);
      });
    });
    return this.#listening;
  }

  /** Stops accepting connections, lets in-flight requests finish, then closes idle keep-alive connections. */
  close(): Promise<void> {
    if (!this.#server.listening) return Promise.resolve();
    this.#o.subresources?.closeSessions();
    return new Promise((resolve) => {
      this.#server.close(() => resolve());
      this.#server.closeIdleConnections();
    });
  }

  #handle(req: IncomingMessage, res: ServerResponse): void {
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (isNamespacedSubresourcePath(path)) {
      const who = this.#authenticated(req);
      if (!who.ok) return sendJson(res, who.status.code, who.status);
      if (this.#o.subresources === undefined) {
        return sendJson(res, 404, statusBody(404, 'NotFound', `${path} is not served by this virt-api`));
      }
      void this.#o.subresources.handle(req, res, who.user).catch((err: unknown) => {
        this.#log.error({ err, path }, 'subresource request failed unexpectedly');
        if (!res.headersSent) sendJson(res, 500, statusBody(500, 'InternalError', String(err)));
        else res.destroy();
      });
      return;
    }
    const admitter = this.#routes[path];
    if (admitter !== undefined) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        sendJson(res, 405, statusBody(405, 'MethodNotAllowed', `${path} takes POSTed AdmissionReviews`));
        return;
      }
      void this.#admit(req, res, path, admitter);
      return;
    }
    if (req.method !== 'GET') {
      sendJson(res, 405, statusBody(405, 'MethodNotAllowed', `${req.method ?? ''} ${path} is not served`));
      return;
    }
    this.#get(req, res, path);
  }

  async #admit(req: IncomingMessage, res: ServerResponse, path: string, admitter: Admitter): Promise<void> {
    const started = performance.now();
    let request: AdmissionRequest | undefined;
    try {
      const body = await readBody(req, this.#o.maxBodyBytes ?? 8 * 1024 * 1024);
      request = parseAdmissionReview(JSON.parse(body.toString('utf8')) as unknown);
      let verdict: Verdict;
      try {
        verdict = await admitter(request, this.#o.context);
      } catch (err) {
        // A bug must fail closed, visibly: the API server shows this message to the user.
        this.#log.error({ err, path, uid: request.uid }, 'admission check failed unexpectedly');
        verdict = {
          allowed: false as const,
          code: 500,
          reason: 'InternalError',
          message: `virt-api failed to check this object (${err instanceof Error ? err.message : String(err)}); this is a bug, please report it`,
        };
      }
      sendJson(res, 200, toResponse(request, verdict));
      const seconds = (performance.now() - started) / 1000;
      this.#observe({ path, operation: request.operation, allowed: String(verdict.allowed) }, seconds);
      this.#o.onReview?.(path, seconds, verdict.allowed);
      if (this.#log.isLevelEnabled('debug')) {
        this.#log.debug(
          {
            path,
            uid: request.uid,
            operation: request.operation,
            kind: request.kind.kind,
            namespace: request.namespace,
            name: request.name,
            user: request.userInfo.username,
            allowed: verdict.allowed,
            ms: Math.round(seconds * 1e4) / 10,
          },
          'admission review',
        );
      }
    } catch (err) {
      if (err instanceof BodyTooLargeError) {
        if (!res.headersSent) sendJson(res, 413, statusBody(413, 'RequestEntityTooLarge', err.message));
        return;
      }
      const bad = err instanceof BadReviewError || err instanceof SyntaxError;
      this.#log.warn(
        { path, error: err instanceof Error ? err.message : String(err) },
        'unreadable admission review',
      );
      if (!res.headersSent) {
        sendJson(
          res,
          bad ? 400 : 500,
          statusBody(
            bad ? 400 : 500,
            bad ? 'BadRequest' : 'InternalError',
            err instanceof Error ? err.message : String(err),
          ),
        );
      }
    }
  }

  #get(req: IncomingMessage, res: ServerResponse, path: string): void {
    const version = this.#o.version;
    // Discovery and OpenAPI are public, as on every API server: the aggregator fetches them to build its view.
    switch (path) {
      case '/apis':
      case '/apis/':
        return sendJson(res, 200, apiGroupList());
      case GROUP_PATH:
      case `${GROUP_PATH}/`:
        return sendJson(res, 200, apiGroup());
      case VERSION_PATH:
      case `${VERSION_PATH}/`:
        return sendJson(res, 200, apiResourceList());
      case '/openapi/v2':
        return sendJson(res, 200, openApiV2(version));
      case '/openapi/v3':
        return sendJson(res, 200, openApiV3Index(version));
      case `/openapi/v3${VERSION_PATH}`:
        return sendJson(res, 200, openApiV3GroupVersion(version));
    }
    if (!path.startsWith(`${VERSION_PATH}/`)) {
      sendJson(
        res,
        404,
        statusBody(404, 'NotFound', `the server could not find the requested resource ${path}`),
      );
      return;
    }
    // Everything else under the group version reaches us only through the aggregator.
    const auth = this.#authenticated(req);
    if (!auth.ok) return sendJson(res, auth.status.code, auth.status);
    switch (path) {
      case `${VERSION_PATH}/version`:
        return sendJson(res, 200, versionInfo(version));
      case `${VERSION_PATH}/healthz`: {
        const ok = this.#o.healthy?.() ?? true;
        return sendJson(res, ok ? 200 : 500, { apiserver: { connectivity: ok ? 'ok' : 'failed' } });
      }
    }
    sendJson(
      res,
      404,
      statusBody(404, 'NotFound', `the server could not find the requested resource ${path}`),
    );
  }

  /** The user the front proxy names, or the status to answer with. */
  #authenticated(
    req: IncomingMessage,
  ): { ok: true; user: RequestUser } | { ok: false; status: ReturnType<typeof statusBody> } {
    const auth = this.#o.authenticator.authenticate(req);
    if (auth.ok) return { ok: true, user: { user: auth.user, groups: auth.groups, extra: auth.extra } };
    return {
      ok: false,
      status: statusBody(auth.code, auth.code === 401 ? 'Unauthorized' : 'Forbidden', auth.message),
    };
  }

  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', (err) => this.#log.debug({ err }, 'upgraded connection failed'));
    const path = (req.url ?? '/').split('?')[0] ?? '/';
    if (!isNamespacedSubresourcePath(path) || this.#o.subresources === undefined) {
      rejectUpgrade(socket, statusBody(404, 'NotFound', `${path} takes no websocket upgrade`));
      return;
    }
    const who = this.#authenticated(req);
    if (!who.ok) {
      rejectUpgrade(socket, who.status);
      return;
    }
    void this.#o.subresources.upgrade(req, socket, head, who.user).catch((err: unknown) => {
      this.#log.error({ err, path }, 'stream request failed unexpectedly');
      socket.destroy();
    });
  }
}
