// API writes as the API server counts them (apiserver_request_total, every client), for the benchmarks that report
// how many writes a VMI costs: read the counters before and after a run, subtract, and print them per VMI.
import type { KubeConfig } from '@kubernetes/client-node';
import { kubeRequest } from '../harness.ts';
import { formatTable } from './density-report.ts';

/** Successful write requests, keyed "VERB resource[/subresource]" (e.g. "PATCH pods/status"). */
export type WriteCounts = Map<string, number>;

const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE', 'APPLY']);

/** The successful (2xx) write verbs of apiserver_request_total in a /metrics text. */
export function parseWriteCounts(metrics: string): WriteCounts {
  const out: WriteCounts = new Map();
  for (const line of metrics.split('\n')) {
    if (!line.startsWith('apiserver_request_total{')) continue;
    const labels = new Map([...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']));
    const verb = labels.get('verb') ?? '';
    if (!WRITE_VERBS.has(verb) || !(labels.get('code') ?? '').startsWith('2')) continue;
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    const subresource = labels.get('subresource');
    const key = `${verb} ${labels.get('resource') ?? ''}${subresource ? `/${subresource}` : ''}`;
    out.set(key, (out.get(key) ?? 0) + value);
  }
  return out;
}

/** The API server's write counters now (the caller needs `get` on the /metrics non-resource URL). */
export async function readWriteCounts(kc: KubeConfig): Promise<WriteCounts> {
  return parseWriteCounts((await kubeRequest(kc, '/metrics')).body);
}

/** What was written between two readings, largest first, without zero entries. */
export function writesBetween(before: WriteCounts, after: WriteCounts): [string, number][] {
  return [...after]
    .map(([key, value]): [string, number] => [key, value - (before.get(key) ?? 0)])
    .filter(([, delta]) => delta > 0)
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/** A table of writes with their total and their share per VMI (or whatever `per` counts), plus a sum row. */
export function writesTable(title: string, writes: readonly [string, number][], per: number): string {
  const total = writes.reduce((sum, [, d]) => sum + d, 0);
  return formatTable(
    [title, 'total', 'per VMI'],
    [
      ...writes.map(([key, d]) => [key, String(d), (d / per).toFixed(1)]),
      ['all writes', String(total), (total / per).toFixed(1)],
    ],
  );
}
