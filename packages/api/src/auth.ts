// Authentication of requests the aggregation layer proxies to virt-api (the subresources.kubevirt.io API). The
// API server authenticates the user, then calls us with its front-proxy client certificate and the user in
// request headers. We trust those headers only when the TLS client certificate chains to the request-header CA
// and names an allowed proxy, all published in the `extension-apiserver-authentication` ConfigMap of kube-system
// (the chart lets virt-api read it). Authorization (SubjectAccessReview) comes with the subresource endpoints.
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { parseCertificates, type Logger } from '@kubevirt-ts/runtime';
import type { V1ConfigMap } from '@kubernetes/client-node';

export const AUTHENTICATION_CONFIGMAP = {
  namespace: 'kube-system',
  name: 'extension-apiserver-authentication',
};

export interface RequestHeaderConfig {
  /** PEM bundle of the CA that signs the aggregator's client certificate. */
  caPem: string;
  /** Common names the client certificate may have; empty means any certificate from the CA. */
  allowedNames: string[];
  usernameHeaders: string[];
  groupHeaders: string[];
  extraHeaderPrefixes: string[];
}

export type Authentication =
  | { ok: true; user: string; groups: string[]; extra: Record<string, string[]> }
  | { ok: false; code: 401 | 403; message: string };

function jsonList(value: string | undefined, fallback: string[]): string[] {
  if (value === undefined || value === '') return fallback;
  try {
    const parsed = JSON.parse(value) as unknown;
    return Array.isArray(parsed) ? parsed.filter((v): v is string => typeof v === 'string') : fallback;
  } catch {
    return fallback;
  }
}

/** The request-header settings of the ConfigMap; undefined when it has no request-header CA. */
export function requestHeaderConfigFrom(configMap: V1ConfigMap): RequestHeaderConfig | undefined {
  const data = configMap.data ?? {};
  const caPem = data['requestheader-client-ca-file'];
  if (caPem === undefined || caPem.trim() === '') return undefined;
  parseCertificates(caPem); // throws on garbage, so the caller keeps the previous config
  return {
    caPem,
    allowedNames: jsonList(data['requestheader-allowed-names'], []),
    usernameHeaders: jsonList(data['requestheader-username-headers'], ['X-Remote-User']),
    groupHeaders: jsonList(data['requestheader-group-headers'], ['X-Remote-Group']),
    extraHeaderPrefixes: jsonList(data['requestheader-extra-headers-prefix'], ['X-Remote-Extra-']),
  };
}

/** Extra keys arrive percent-encoded; a malformed one is kept as sent rather than dropped (as Kubernetes does). */
function unescapeExtraKey(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

export class RequestHeaderAuthenticator {
  readonly #log: Logger;
  #config: RequestHeaderConfig | undefined;

  constructor(log: Logger) {
    this.#log = log.child({ component: 'authentication' });
  }

  get config(): RequestHeaderConfig | undefined {
    return this.#config;
  }

  /** Takes new settings; returns whether the CA changed (the server must then rebuild its TLS context). */
  update(config: RequestHeaderConfig): boolean {
    const caChanged = this.#config?.caPem !== config.caPem;
    this.#config = config;
    this.#log.info({ allowedNames: config.allowedNames }, 'front-proxy request-header settings loaded');
    return caChanged;
  }

  /**
   * Who sent a proxied request. The TLS layer has verified the client certificate against the request-header CA
   * (the server's secure context carries it), so `authorized` tells whether it chains there.
   */
  authenticate(req: IncomingMessage): Authentication {
    const config = this.#config;
    if (config === undefined) {
      return {
        ok: false,
        code: 401,
        message:
          'virt-api has not loaded the front-proxy CA from ConfigMap kube-system/extension-apiserver-authentication ' +
          'yet; check that its service account may read it (Role extension-apiserver-authentication-reader)',
      };
    }
    const socket = req.socket as TLSSocket;
    const peer = typeof socket.getPeerCertificate === 'function' ? socket.getPeerCertificate() : undefined;
    if (!socket.authorized || peer === undefined || Object.keys(peer).length === 0) {
      return {
        ok: false,
        code: 401,
        message:
          'this endpoint answers only the Kubernetes API server: call it through ' +
          '/apis/subresources.kubevirt.io/v1/... on the API server',
      };
    }
    const cn = typeof peer.subject?.CN === 'string' ? peer.subject.CN : '';
    if (config.allowedNames.length > 0 && !config.allowedNames.includes(cn)) {
      return {
        ok: false,
        code: 403,
        message: `client certificate ${JSON.stringify(cn)} is not an allowed front proxy`,
      };
    }
    // headersDistinct keeps repeated headers apart: the front proxy sends one X-Remote-Group per group, and
    // `headers` would join them into one "a, b" string, which names no group at all.
    const header = (names: string[]): string[] =>
      names.flatMap((n) => req.headersDistinct[n.toLowerCase()] ?? []);
    const user = header(config.usernameHeaders)[0];
    if (user === undefined || user === '') {
      return { ok: false, code: 401, message: 'the proxied request names no user' };
    }
    const extra: Record<string, string[]> = {};
    for (const [name, values] of Object.entries(req.headersDistinct)) {
      for (const prefix of config.extraHeaderPrefixes) {
        if (!name.startsWith(prefix.toLowerCase()) || values === undefined) continue;
        const key = unescapeExtraKey(name.slice(prefix.length));
        extra[key] = [...(extra[key] ?? []), ...values];
      }
    }
    return { ok: true, user, groups: header(config.groupHeaders), extra };
  }
}
