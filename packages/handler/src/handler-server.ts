// handler.v1 for virt-api (DESIGN.md §4, reference §4.4): the serial console and VNC display of a VMI on this node
// as byte streams to the launcher pod's serial0 and vnc sockets, and pause, unpause, soft reboot and guest OS info
// through the launcher. Served over TCP with mutual TLS: the server certificate and the CA bundle come from the
// certificate loop's Secret (or files) and are swapped in without a restart when they rotate; a caller must present a
// certificate signed by that CA whose common name is one virt-handler trusts (KubeVirt's: virt-api calls with the
// `kubevirt.io:system:client:virt-handler` client certificate).
import { connect, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import {
  Metadata,
  ServerInterceptingCall,
  experimental,
  status,
  type ServerCredentials,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import {
  RpcError,
  serveHandler,
  type HandlerImplementation,
  type RunningServer,
  type handlerV1,
} from '@kubevirt-ts/proto';
import type { CertificateSource, Logger } from '@kubevirt-ts/runtime';
import { SOCKETS } from './constants.ts';
import type { LauncherLink } from './launcher-link.ts';
import type { VMI } from './vmi.ts';

/** The client certificate common name virt-handler accepts by default (the `kubevirt-virt-handler-certs` Secret). */
export const DEFAULT_ALLOWED_CLIENT_NAMES = ['kubevirt.io:system:client:virt-handler'] as const;

/** Adapts a runtime CertificateSource (Secret or files, reloaded on change) to grpc-js's certificate provider. */
export class SourceCertificateProvider implements experimental.CertificateProvider {
  readonly #source: CertificateSource;
  readonly #ca = new Set<experimental.CaCertificateUpdateListener>();
  readonly #identity = new Set<experimental.IdentityCertificateUpdateListener>();
  #latest: { ca: Buffer; cert: Buffer; key: Buffer } | undefined;
  readonly #unsubscribe: () => void;

  constructor(source: CertificateSource) {
    this.#source = source;
    this.#unsubscribe = source.onChange((material) => {
      if (material.ca === undefined) return;
      this.#latest = {
        ca: Buffer.from(material.ca),
        cert: Buffer.from(material.cert),
        key: Buffer.from(material.key),
      };
      for (const l of this.#ca) l({ caCertificate: this.#latest.ca });
      for (const l of this.#identity) l({ certificate: this.#latest.cert, privateKey: this.#latest.key });
    });
  }

  /** Whether a certificate, its key and a CA bundle have been loaded. */
  get loaded(): boolean {
    return this.#latest !== undefined;
  }

  // A new listener gets the current material on the next tick, not during the call: grpc-js registers its server
  // watcher only after adding the listener, so a synchronous answer would reach nobody.
  addCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.#ca.add(listener);
    queueMicrotask(() => {
      if (this.#latest && this.#ca.has(listener)) listener({ caCertificate: this.#latest.ca });
    });
  }

  removeCaCertificateListener(listener: experimental.CaCertificateUpdateListener): void {
    this.#ca.delete(listener);
  }

  addIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.#identity.add(listener);
    queueMicrotask(() => {
      if (this.#latest && this.#identity.has(listener)) {
        listener({ certificate: this.#latest.cert, privateKey: this.#latest.key });
      }
    });
  }

  removeIdentityCertificateListener(listener: experimental.IdentityCertificateUpdateListener): void {
    this.#identity.delete(listener);
  }

  /** Resolves once material with a CA bundle is there. */
  whenLoaded(signal?: AbortSignal): Promise<boolean> {
    if (this.loaded) return Promise.resolve(true);
    return new Promise((resolve) => {
      const onAbort = (): void => {
        stop();
        resolve(false);
      };
      const stop = this.#source.onChange((m) => {
        if (m.ca === undefined) return;
        queueMicrotask(() => {
          stop();
          signal?.removeEventListener('abort', onAbort);
          resolve(true);
        });
      });
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  close(): void {
    this.#unsubscribe();
  }
}

/**
 * Refuses, before any handler runs, a call whose client certificate's common name is not allowed. The TLS layer has
 * already refused clients without a certificate signed by the CA.
 */
export function clientNameInterceptor(allowed: readonly string[], log: Logger): ServerInterceptor {
  const names = new Set(allowed);
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, mdNext) => {
            const cert = call.getAuthContext().sslPeerCertificate;
            const cn = cert?.subject?.CN;
            const name = Array.isArray(cn) ? cn[0] : cn;
            if (name === undefined || !names.has(name)) {
              log.warn(
                { rpc: method.path, clientName: name ?? null },
                'refused a handler call from an untrusted client',
              );
              call.sendStatus({
                code: status.PERMISSION_DENIED,
                details: `client certificate ${name === undefined ? 'without a common name' : `CN=${name}`} is not allowed to call virt-handler`,
                metadata: new Metadata(),
              });
              return;
            }
            mdNext(metadata);
          },
        });
      },
    });
}

/** mTLS server credentials from a certificate provider, with the client-name check. */
export function handlerServerCredentials(
  provider: experimental.CertificateProvider,
  allowedClientNames: readonly string[],
  log: Logger,
): ServerCredentials {
  const tls = experimental.createCertificateProviderServerCredentials(provider, provider, true);
  return experimental.createServerCredentialsWithInterceptors(tls, [
    clientNameInterceptor(allowedClientNames, log),
  ]);
}

/** What the Handler service needs from the rest of virt-handler. */
export interface HandlerBackend {
  /** The VMI on this node and its connected launcher; throws an RpcError saying why not. */
  find(ref: handlerV1.VMIRef__Output): { vmi: VMI; link: LauncherLink; socketsDir: string };
}

function success(answer: { success: boolean; message: string }): { success: boolean; message: string } {
  return { success: answer.success, message: answer.message };
}

/** The Handler implementation: console/VNC byte streams and the unary calls, one console and one VNC per VMI. */
export function handlerImplementation(backend: HandlerBackend, log: Logger): HandlerImplementation {
  const sessions = new Map<string, Duplex>();

  const stream =
    (kind: 'console' | 'vnc', socketName: string) =>
    async (ref: handlerV1.VMIRef__Output, client: Duplex): Promise<void> => {
      const { vmi, socketsDir } = backend.find(ref);
      const uid = vmi.metadata?.uid ?? '';
      const sessionKey = `${kind}/${uid}`;
      const path = join(socketsDir, socketName);
      const guest = await new Promise<Socket>((resolve, reject) => {
        const s = connect({ path });
        s.once('connect', () => resolve(s));
        s.once('error', (err) =>
          reject(
            new RpcError(
              status.UNAVAILABLE,
              `the ${kind === 'console' ? 'serial console' : 'VNC display'} of ${ref.namespace}/${ref.name} is not available: ${err.message}`,
            ),
          ),
        );
      });
      // A new session takes over, as KubeVirt's: the guest's socket serves one client at a time.
      const previous = sessions.get(sessionKey);
      if (previous) {
        log.info({ kind, namespace: ref.namespace, name: ref.name }, 'a new session replaces the open one');
        previous.destroy(new RpcError(status.ABORTED, `another ${kind} session to this VMI was opened`));
      }
      sessions.set(sessionKey, client);
      log.info({ kind, namespace: ref.namespace, name: ref.name }, `${kind} session opened`);
      guest.on('error', (err) => client.destroy(err));
      client.on('error', () => guest.destroy());
      guest.pipe(client);
      client.pipe(guest);
      const done = (): void => {
        guest.destroy();
        if (sessions.get(sessionKey) === client) sessions.delete(sessionKey);
      };
      client.once('close', done);
      guest.once('close', () => {
        if (!client.destroyed) client.end();
      });
    };

  const command = (rpc: 'pause' | 'unpause' | 'softReboot') => async (ref: handlerV1.VMIRef__Output) => {
    const { vmi, link } = backend.find(ref);
    const answer = await link.command(rpc, vmi);
    log.info(
      { rpc, namespace: ref.namespace, name: ref.name, success: answer.success, message: answer.message },
      'handler command',
    );
    return success(answer);
  };

  return {
    pause: command('pause'),
    unpause: command('unpause'),
    softReboot: command('softReboot'),
    guestOSInfo: async (ref) => {
      const { link } = backend.find(ref);
      const answer = await link.rawGuestInfo();
      return { success: answer.success, message: answer.message, guestOsInfoJson: answer.guestInfoJson };
    },
    console: stream('console', SOCKETS.serial),
    vnc: stream('vnc', SOCKETS.vnc),
  };
}

export interface StartHandlerServerOptions {
  host: string;
  port: number;
  provider: SourceCertificateProvider;
  allowedClientNames: readonly string[];
  backend: HandlerBackend;
  log: Logger;
}

export async function startHandlerServer(opts: StartHandlerServerOptions): Promise<RunningServer> {
  const log = opts.log.child({ component: 'handler-server' });
  return serveHandler(
    {
      host: opts.host,
      port: opts.port,
      tls: handlerServerCredentials(opts.provider, opts.allowedClientNames, log),
    },
    handlerImplementation(opts.backend, log),
    { logger: log },
  );
}
