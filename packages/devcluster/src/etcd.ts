// Direct etcd operations for tests, through etcd's JSON gateway on the forwarder's unix socket (run/etcd.sock),
// which works from the host and from inside the namespace alike.
import { DevclusterError } from './errors.ts';
import { request } from './probe.ts';

async function call<T>(socketPath: string, path: string, body: unknown): Promise<T> {
  let res;
  try {
    res = await request({ socketPath, host: 'localhost' }, path, {
      method: 'POST',
      body: JSON.stringify(body),
    });
  } catch (err) {
    throw new DevclusterError(
      `cannot reach etcd through ${socketPath}`,
      'is devcluster up? (devcluster status)',
      {
        cause: err,
      },
    );
  }
  if (res.status !== 200) throw new DevclusterError(`etcd ${path} answered ${res.status}: ${res.body}`);
  return JSON.parse(res.body) as T;
}

/** etcd's current revision (any range request reports it in its header). */
export async function etcdRevision(socketPath: string): Promise<number> {
  const key = Buffer.from('/devcluster/revision-probe').toString('base64');
  const res = await call<{ header?: { revision?: string } }>(socketPath, '/v3/kv/range', {
    key,
    count_only: true,
  });
  const revision = Number(res.header?.revision);
  if (!Number.isInteger(revision) || revision <= 0) throw new DevclusterError('etcd returned no revision');
  return revision;
}

/**
 * Compacts etcd's history up to its current revision, so a watch or list from an older resourceVersion gets
 * 410 Gone once the API server's watch cache no longer holds it (restart the API server to drop that cache).
 * Returns the revision compacted to.
 */
export async function compactEtcdAt(socketPath: string): Promise<number> {
  const revision = await etcdRevision(socketPath);
  await call(socketPath, '/v3/kv/compaction', { revision: String(revision), physical: true });
  return revision;
}
