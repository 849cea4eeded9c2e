// Reaching the virt-handler of a VMI's node (DESIGN.md §4, reference §4.4): its pod is found by the DaemonSet's
// label and the node name, and dialed at its pod IP over mutual TLS, with the client certificate virt-controller
// keeps in the `kubevirt-virt-handler-certs` Secret (reloaded on rotation) and the server name every handler
// certificate carries. Each operation dials, negotiates the handler.v1 version, and closes when done: opening a
// console is rare, and a fresh channel always uses the current certificate.
import { CoreV1Api, type KubeConfig, type V1Pod } from '@kubernetes/client-node';
import {
  RpcError,
  VersionNegotiationError,
  dialHandler,
  negotiateVersion,
  statusName,
  type HandlerConnection,
} from '@kubevirt-ts/proto';
import { describeApiError, type CertificateSource, type Logger } from '@kubevirt-ts/runtime';
import { SubresourceError, conflict, internalError, unavailable } from './errors.ts';

/** The name virt-handler's serving certificate carries; pods have no stable DNS name (controller's policy). */
export const HANDLER_SERVER_NAME = 'virt-handler';
/** The handler's gRPC port in the chart (`kubevirt-ts.handler.grpcPort`), when its pod names none. */
export const DEFAULT_HANDLER_PORT = 8190;
/** The label KubeVirt (and the chart) put on virt-handler pods. */
export const DEFAULT_HANDLER_SELECTOR = 'kubevirt.io=virt-handler';

export interface HandlerEndpoint {
  pod: string;
  node: string;
  host: string;
  port: number;
}

export interface HandlerLocatorOptions {
  kubeConfig: KubeConfig;
  /** Where the handler DaemonSet runs (the install namespace). */
  namespace: string;
  selector?: string;
  port?: number;
}

function ready(pod: V1Pod): boolean {
  return (pod.status?.conditions ?? []).some((c) => c.type === 'Ready' && c.status === 'True');
}

/** Picks the handler pod to dial: running, not being deleted, with an IP; a Ready one first. */
export function pickHandlerPod(pods: V1Pod[]): V1Pod | undefined {
  const usable = pods.filter(
    (p) => p.status?.phase === 'Running' && p.metadata?.deletionTimestamp == null && !!p.status.podIP,
  );
  return usable.find(ready) ?? usable[0];
}

/** The pod's gRPC port: the container port named `grpc` (as the chart names it), else the default. */
export function grpcPortOf(pod: V1Pod, fallback: number): number {
  for (const container of pod.spec?.containers ?? []) {
    const port = (container.ports ?? []).find((p) => p.name === 'grpc');
    if (port !== undefined) return port.containerPort;
  }
  return fallback;
}

export class HandlerLocator {
  readonly #core: CoreV1Api;
  readonly #namespace: string;
  readonly #selector: string;
  readonly #port: number;

  constructor(opts: HandlerLocatorOptions) {
    this.#core = opts.kubeConfig.makeApiClient(CoreV1Api);
    this.#namespace = opts.namespace;
    this.#selector = opts.selector ?? DEFAULT_HANDLER_SELECTOR;
    this.#port = opts.port ?? DEFAULT_HANDLER_PORT;
  }

  /** The handler on `node`; 503 when none runs there. */
  async find(node: string): Promise<HandlerEndpoint> {
    let pods: V1Pod[];
    try {
      pods = (
        await this.#core.listNamespacedPod({
          namespace: this.#namespace,
          labelSelector: this.#selector,
          fieldSelector: `spec.nodeName=${node}`,
        })
      ).items;
    } catch (err) {
      throw internalError(
        `cannot list the virt-handler pods in namespace ${this.#namespace}: ${describeApiError(err)}`,
      );
    }
    const pod = pickHandlerPod(pods);
    if (pod === undefined) {
      throw unavailable(
        `no running virt-handler on node ${node} (no Running pod with an IP and label ${this.#selector} in ` +
          `namespace ${this.#namespace}); check the virt-handler DaemonSet on that node`,
      );
    }
    return {
      pod: pod.metadata?.name ?? '',
      node,
      host: pod.status?.podIP ?? '',
      port: grpcPortOf(pod, this.#port),
    };
  }
}

/** A handler.v1 failure as the status to answer with. */
export function handlerFailure(err: unknown, endpoint: HandlerEndpoint, vmiName: string): SubresourceError {
  if (err instanceof SubresourceError) return err;
  const where = `virt-handler ${endpoint.pod} on node ${endpoint.node} (${endpoint.host}:${endpoint.port})`;
  if (err instanceof VersionNegotiationError) return internalError(`${where}: ${err.message}`);
  if (err instanceof RpcError) {
    const code = statusName(err.code);
    switch (code) {
      case 'INVALID_ARGUMENT':
        return new SubresourceError(400, 'BadRequest', `${where}: ${err.details}`);
      case 'NOT_FOUND':
      case 'FAILED_PRECONDITION':
        return conflict('virtualmachineinstance', vmiName, `${where}: ${err.details}`);
      case 'PERMISSION_DENIED':
      case 'UNAUTHENTICATED':
        return internalError(
          `${where} refused virt-api's client certificate: ${err.details}; check the Secret with the client ` +
            'certificate and that both sides trust the same CA',
        );
      case 'UNAVAILABLE':
      case 'DEADLINE_EXCEEDED':
        return unavailable(`${where} is not reachable: ${code}: ${err.details}`);
      default:
        return internalError(`${where}: ${code}: ${err.details}`);
    }
  }
  return internalError(`${where}: ${err instanceof Error ? err.message : String(err)}`);
}

export interface HandlerDialerOptions {
  /** The client certificate (tls.crt, tls.key) and the CA bundle (ca.crt) that signed the handlers'. */
  certificates: CertificateSource;
  log: Logger;
  serverName?: string;
  /** Deadline of the version negotiation, which is also the connect timeout. Default 5 s. */
  connectTimeoutMs?: number;
}

export class HandlerDialer {
  readonly #o: HandlerDialerOptions;

  constructor(opts: HandlerDialerOptions) {
    this.#o = opts;
  }

  /** A connection with the version negotiated; the caller closes it. */
  async connect(endpoint: HandlerEndpoint, vmiName: string): Promise<HandlerConnection> {
    const material = this.#o.certificates.current();
    if (material === undefined || material.ca === undefined) {
      const why = this.#o.certificates.lastError();
      throw unavailable(
        `virt-api has no client certificate for virt-handler yet (${this.#o.certificates.description}` +
          `${why === undefined ? '' : `: ${why}`}); virt-controller's leader writes it`,
      );
    }
    const connection = dialHandler({
      host: endpoint.host,
      port: endpoint.port,
      tls: {
        key: material.key,
        cert: material.cert,
        ca: material.ca,
        serverName: this.#o.serverName ?? HANDLER_SERVER_NAME,
      },
    });
    try {
      await negotiateVersion(connection, undefined, { timeoutMs: this.#o.connectTimeoutMs ?? 5_000 });
    } catch (err) {
      connection.close();
      throw handlerFailure(err, endpoint, vmiName);
    }
    return connection;
  }
}
