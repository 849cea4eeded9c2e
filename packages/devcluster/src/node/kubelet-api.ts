// The part of the kubelet's HTTPS API that devcluster serves on each node's address (port 10250), so that
// `kubectl logs` works through the API server: /containerLogs/{namespace}/{pod}/{container} with follow,
// tailLines, limitBytes and previous, plus /healthz. exec, attach and port-forward answer 501. There is no
// authentication: the API server of devcluster dials without a client certificate, and this port is reachable
// only inside devcluster's own network namespaces.
import { createReadStream } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import https from 'node:https';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { NodeAgentConfig } from './config.ts';
import { containerLogFile, type NodePaths } from './layout.ts';
import type { PodRecords } from './records.ts';

const FOLLOW_POLL_MS = 250;

/**
 * The log file of a container run: the current (or last) run, or the one before it with `previous`. Looks in the
 * agent's records first, then in the kubelet's log folders (the pod may be gone).
 */
export async function findContainerLog(
  paths: NodePaths,
  records: PodRecords | undefined,
  namespace: string,
  name: string,
  container: string | undefined,
  previous: boolean,
): Promise<{ file: string; running: () => boolean } | { error: string }> {
  const record = records?.byKey(namespace, name).at(-1);
  let uidDir: string | undefined;
  if (record) {
    uidDir = `${namespace}_${name}_${record.uid}`;
  } else {
    const prefix = `${namespace}_${name}_`;
    const candidates = (await readdir(paths.podLogs).catch(() => [] as string[])).filter((d) =>
      d.startsWith(prefix),
    );
    let newest = -1;
    for (const candidate of candidates) {
      const mtime = (await stat(join(paths.podLogs, candidate)).catch(() => undefined))?.mtimeMs ?? -1;
      if (mtime > newest) {
        newest = mtime;
        uidDir = candidate;
      }
    }
  }
  if (!uidDir) return { error: `pod ${namespace}/${name} has never run on this node` };
  const containers = (await readdir(join(paths.podLogs, uidDir)).catch(() => [] as string[])).sort();
  const chosen = container ?? (containers.length === 1 ? containers[0] : undefined);
  if (!chosen) {
    return {
      error: `a container name must be specified for pod ${namespace}/${name}, choose one of: [${containers.join(' ')}]`,
    };
  }
  const runs = (await readdir(join(paths.podLogs, uidDir, chosen)).catch(() => [] as string[]))
    .map((f) => Number.parseInt(f, 10))
    .filter((n) => Number.isInteger(n))
    .sort((a, b) => a - b);
  if (runs.length === 0) return { error: `container ${chosen} of pod ${namespace}/${name} has not started` };
  const run = previous ? runs.at(-2) : runs.at(-1);
  if (run === undefined)
    return { error: `previous terminated container "${chosen}" in pod "${name}" not found` };
  const uid = uidDir.slice(`${namespace}_${name}_`.length);
  const file = containerLogFile(paths, { namespace, name, uid }, chosen, run);
  const running = () => {
    const r = records?.get(uid);
    const c = r?.containers[chosen] ?? r?.initContainers[chosen];
    return c?.current?.logFile === file;
  };
  return { file, running };
}

function lastLines(text: string, n: number): string {
  if (n <= 0) return '';
  const lines = text.split('\n');
  const trailing = lines.at(-1) === '' ? 1 : 0;
  return lines.slice(Math.max(0, lines.length - trailing - n)).join('\n');
}

export function createKubeletApiServer(opts: {
  config: NodeAgentConfig;
  paths: NodePaths;
  records: PodRecords;
  log: Logger;
  cert: string;
  key: string;
}): https.Server {
  const log = opts.log.child({ component: 'kubelet-api' });
  return https.createServer({ cert: opts.cert, key: opts.key }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://node');
    const send = (status: number, text: string) => {
      res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' });
      res.end(text);
    };
    if (url.pathname === '/healthz') return send(200, 'ok');
    const parts = url.pathname.split('/').filter(Boolean).map(decodeURIComponent);
    if (['exec', 'attach', 'portForward', 'run'].includes(parts[0] ?? '')) {
      return send(
        501,
        `${parts[0]} is not supported by devcluster's node agent (no container engine); see packages/devcluster/README.md`,
      );
    }
    if (parts[0] !== 'containerLogs' || parts.length < 3) return send(404, `no route ${url.pathname}`);
    const [, namespace = '', name = '', container] = parts;
    const follow = url.searchParams.get('follow') === 'true';
    const previous = url.searchParams.get('previous') === 'true';
    const tail = url.searchParams.get('tailLines');
    const limit = url.searchParams.get('limitBytes');
    void (async () => {
      const found = await findContainerLog(opts.paths, opts.records, namespace, name, container, previous);
      if ('error' in found) return send(404, found.error);
      let text = await readFile(found.file, 'utf8').catch(() => '');
      if (tail !== null) text = lastLines(text, Number(tail));
      if (limit !== null) text = text.slice(0, Number(limit));
      res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
      res.write(text);
      if (!follow || limit !== null) return res.end();
      let offset = (await stat(found.file).catch(() => ({ size: 0 }))).size;
      let closed = false;
      req.on('close', () => (closed = true));
      while (!closed) {
        const size = (await stat(found.file).catch(() => ({ size: offset }))).size;
        if (size > offset) {
          await new Promise<void>((resolve) => {
            const stream = createReadStream(found.file, { start: offset, end: size - 1 });
            stream.on('data', (chunk) => res.write(chunk));
            stream.on('end', resolve);
            stream.on('error', () => resolve());
          });
          offset = size;
        } else if (!found.running()) {
          break;
        }
        await new Promise((r) => setTimeout(r, FOLLOW_POLL_MS));
      }
      res.end();
    })().catch((err: unknown) => {
      log.warn({ err }, 'serving a log failed');
      if (!res.headersSent) send(500, String(err));
      else res.end();
    });
  });
}
