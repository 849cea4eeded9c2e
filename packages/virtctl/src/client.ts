// The connection to the cluster, as kubectl makes it: a kubeconfig from --kubeconfig, $KUBECONFIG, ~/.kube/config
// or the pod's service account; --context picks a context; the namespace is -n, else the context's, else
// `default`. Requests and websockets both use the kubeconfig's TLS settings and credentials (client certificate,
// token, exec plugin) through client-node's applyToHTTPSOptions.
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { WebSocket, type ClientOptions } from 'ws';
import { UsageError, VirtctlError, unreachable } from './errors.ts';

export interface ConnectionFlags {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
}

export interface Response {
  status: number;
  body: string;
}

/** A websocket upgrade the server refused: its status and body. */
export class UpgradeRefused extends Error {
  readonly status: number;
  readonly body: string;
  constructor(status: number, body: string) {
    super(`websocket upgrade refused with HTTP ${status}`);
    this.name = 'UpgradeRefused';
    this.status = status;
    this.body = body;
  }
}

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

/** Loads the kubeconfig as kubectl would and applies --context. */
export function loadKubeConfig(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): KubeConfig {
  const kc = new KubeConfig();
  if (flags.kubeconfig !== undefined) {
    if (!fs.existsSync(flags.kubeconfig)) {
      throw new UsageError(`--kubeconfig ${flags.kubeconfig}: no such file`);
    }
    kc.loadFromFile(flags.kubeconfig);
  } else if (env.KUBECONFIG) {
    const files = env.KUBECONFIG.split(path.delimiter).filter((f) => f !== '' && fs.existsSync(f));
    if (files.length === 0) {
      throw new UsageError(
        `KUBECONFIG=${env.KUBECONFIG} names no existing file; fix it or pass --kubeconfig`,
      );
    }
    kc.loadFromDefault();
  } else if (fs.existsSync(path.join(env.HOME ?? os.homedir(), '.kube', 'config'))) {
    kc.loadFromFile(path.join(env.HOME ?? os.homedir(), '.kube', 'config'));
  } else if (env.KUBERNETES_SERVICE_HOST && fs.existsSync(SERVICE_ACCOUNT_TOKEN)) {
    kc.loadFromCluster();
  } else {
    throw new UsageError(
      'no kubeconfig found: pass --kubeconfig PATH, set KUBECONFIG, or create ~/.kube/config',
    );
  }
  if (flags.context !== undefined) {
    if (kc.getContextObject(flags.context) === null) {
      const known = kc.getContexts().map((c) => c.name);
      throw new UsageError(
        `context "${flags.context}" is not in the kubeconfig (contexts: ${known.join(', ') || 'none'})`,
      );
    }
    kc.setCurrentContext(flags.context);
  }
  if (kc.getCurrentCluster() === null) {
    throw new UsageError('the kubeconfig has no current context with a cluster; pass --context');
  }
  return kc;
}

export class ApiClient {
  readonly kubeConfig: KubeConfig;
  readonly namespace: string;
  readonly server: string;

  constructor(kubeConfig: KubeConfig, namespace?: string) {
    this.kubeConfig = kubeConfig;
    const context = kubeConfig.getContextObject(kubeConfig.getCurrentContext());
    this.namespace = namespace ?? (context?.namespace || 'default');
    this.server = kubeConfig.getCurrentCluster()?.server ?? '';
  }

  static fromFlags(flags: ConnectionFlags, env: NodeJS.ProcessEnv = process.env): ApiClient {
    return new ApiClient(loadKubeConfig(flags, env), flags.namespace);
  }

  async #options(): Promise<https.RequestOptions> {
    const options: https.RequestOptions = {};
    await this.kubeConfig.applyToHTTPSOptions(options);
    return options;
  }

  /** `/apis/...` on the current cluster (its server URL may carry a path prefix). */
  url(apiPath: string, scheme: 'http' | 'ws' = 'http'): URL {
    const base = new URL(this.server);
    const url = new URL(base.href.replace(/\/$/, '') + apiPath);
    if (scheme === 'ws') url.protocol = url.protocol === 'http:' ? 'ws:' : 'wss:';
    return url;
  }

  /** One request; any HTTP status resolves, a transport failure rejects with a VirtctlError. */
  async request(method: string, apiPath: string, body?: unknown): Promise<Response> {
    const url = this.url(apiPath);
    const options = await this.#options();
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const transport = url.protocol === 'http:' ? http : https;
    return new Promise((resolve, reject) => {
      const req = transport.request(
        url,
        {
          ...options,
          method,
          headers: {
            ...options.headers,
            accept: 'application/json',
            ...(payload === undefined
              ? {}
              : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
          },
          timeout: 60_000,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
          );
          res.on('error', (err) => reject(unreachable(this.server, err)));
        },
      );
      req.on('timeout', () => req.destroy(new Error('no answer within 60 s')));
      req.on('error', (err) => reject(unreachable(this.server, err)));
      req.end(payload);
    });
  }

  /**
   * Opens a websocket, paused: the caller resumes it once its listeners are attached, so the first bytes (a VNC
   * greeting, a login prompt) are not emitted to nobody. A refused upgrade rejects with UpgradeRefused, a transport
   * failure with a VirtctlError.
   */
  async websocket(apiPath: string, protocols: string[]): Promise<WebSocket> {
    const url = this.url(apiPath, 'ws');
    const options = await this.#options();
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(url, protocols, {
        ...(options as ClientOptions),
        headers: options.headers as Record<string, string> | undefined,
        handshakeTimeout: 60_000,
        perMessageDeflate: false,
      });
      let settled = false;
      ws.once('open', () => {
        settled = true;
        ws.pause();
        resolve(ws);
      });
      ws.once('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          settled = true;
          reject(new UpgradeRefused(res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')));
        });
      });
      ws.once('error', (err) => {
        if (settled) return;
        settled = true;
        reject(err instanceof VirtctlError ? err : unreachable(this.server, err));
      });
    });
  }
}
