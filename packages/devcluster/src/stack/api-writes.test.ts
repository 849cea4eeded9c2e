import { describe, expect, it } from 'vitest';
import { parseWriteCounts, writesBetween, writesTable } from './api-writes.ts';

const metrics = (podsPost: number, statusPatch: number) =>
  [
    '# HELP apiserver_request_total [STABLE] Counter of apiserver requests',
    '# TYPE apiserver_request_total counter',
    `apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} ${podsPost}`,
    'apiserver_request_total{code="409",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="POST",version="v1"} 7',
    `apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="status",verb="PATCH",version="v1"} ${statusPatch}`,
    'apiserver_request_total{code="200",component="apiserver",dry_run="",group="",resource="pods",scope="namespace",subresource="",verb="LIST",version="v1"} 99',
    'apiserver_request_total{code="200",component="apiserver",dry_run="",group="kubevirt.io",resource="virtualmachineinstances",scope="namespace",subresource="",verb="PUT",version="v1"} 3',
  ].join('\n');

describe('API write counts', () => {
  it('counts successful writes by verb and resource, leaving out reads and failures', () => {
    expect(parseWriteCounts(metrics(5, 2))).toEqual(
      new Map([
        ['POST pods', 5],
        ['PATCH pods/status', 2],
        ['PUT virtualmachineinstances', 3],
      ]),
    );
  });

  it('reports what changed between two readings, largest first, and per VMI', () => {
    const writes = writesBetween(parseWriteCounts(metrics(5, 2)), parseWriteCounts(metrics(9, 10)));
    expect(writes).toEqual([
      ['PATCH pods/status', 8],
      ['POST pods', 4],
    ]);
    const table = writesTable('writes', writes, 4);
    expect(table).toMatch(/PATCH pods\/status\s+8\s+2\.0/);
    expect(table).toMatch(/all writes\s+12\s+3\.0/);
  });
});
