// Small HTTP(S) and socket checks: the supervisor's readiness probes and the CLI's wait for /readyz.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { isIP, connect } from 'node:net';
import type { ReadinessProbe } from './spec.ts';

export interface HttpResponse {
  status: number;
  body: string;
}

export interface RequestTarget {
  /** Connect through this unix socket instead of host:port. */
  socketPath?: string;
  host: string;
  port?: number;
  /** Present: HTTPS, verified against this CA. */
  tls?: { ca: string; cert?: string; key?: string };
  headers?: Record<string, string>;
}

/** One request with a deadline; never throws for an HTTP status, only for a transport failure. */
export function request(
  target: RequestTarget,
  path: string,
  options: { method?: string; body?: string; timeoutMs?: number } = {},
): Promise<HttpResponse> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  return new Promise((resolve, reject) => {
    const common = {
      method: options.method ?? 'GET',
      path,
      host: target.host,
      timeout: timeoutMs,
      headers: { ...(options.body ? { 'content-type': 'application/json' } : {}), ...target.headers },
      ...(target.socketPath ? { socketPath: target.socketPath } : { port: target.port }),
    };
    const onResponse = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }),
      );
      res.on('error', reject);
    };
    const req = target.tls
      ? https.request(
          {
            ...common,
            ca: target.tls.ca,
            cert: target.tls.cert,
            key: target.tls.key,
            // SNI cannot carry an IP address; the certificate is still checked against `host`.
            servername: isIP(target.host) ? '' : target.host,
            agent: false,
          },
          onResponse,
        )
      : http.request({ ...common, agent: false }, onResponse);
    req.on('timeout', () => req.destroy(new Error(`no answer within ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

function canConnect(
  options: { path: string } | { host: string; port: number },
  timeoutMs = 2_000,
): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = 'path' in options ? connect(options.path) : connect(options.port, options.host);
    const finish = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => finish(false));
    socket.once('connect', () => finish(true));
    socket.once('error', () => finish(false));
  });
}

/** One attempt of a readiness probe: true when the component answers as ready. */
export async function probeOnce(probe: ReadinessProbe): Promise<boolean> {
  try {
    switch (probe.kind) {
      case 'unix-connect':
        return await canConnect({ path: probe.socketPath });
      case 'tcp-connect':
        return await canConnect({ host: probe.host, port: probe.port });
      case 'http-unix':
        return (
          (await request({ socketPath: probe.socketPath, host: 'localhost' }, probe.path)).status === 200
        );
      case 'https-unix': {
        const tls = {
          ca: readFileSync(probe.caFile, 'utf8'),
          ...(probe.certFile ? { cert: readFileSync(probe.certFile, 'utf8') } : {}),
          ...(probe.keyFile ? { key: readFileSync(probe.keyFile, 'utf8') } : {}),
        };
        const res = await request({ socketPath: probe.socketPath, host: probe.servername, tls }, probe.path);
        return res.status === 200;
      }
    }
  } catch {
    return false;
  }
}
