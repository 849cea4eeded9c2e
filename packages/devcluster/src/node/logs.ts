// `devcluster logs pod/NAMESPACE/NAME[/CONTAINER]`: a pod container's log file, found in the kubelet log folders of
// whichever node ran it (var/log/pods/<namespace>_<name>_<uid>/<container>/<run>.log), also after the pod is gone.
import { stat } from 'node:fs/promises';
import type { ClusterState } from '../spec.ts';
import { findContainerLog } from './kubelet-api.ts';
import { nodePaths } from './layout.ts';

/** Parses `pod/NAMESPACE/NAME[/CONTAINER]` (or `pod/NAME`, namespace default). */
export function parsePodLogTarget(
  target: string,
): { namespace: string; name: string; container?: string } | undefined {
  const parts = target.split('/');
  if (parts[0] !== 'pod' && parts[0] !== 'pods') return undefined;
  const rest = parts.slice(1);
  if (rest.length === 1 && rest[0]) return { namespace: 'default', name: rest[0] };
  if (rest.length === 2 && rest[0] && rest[1]) return { namespace: rest[0], name: rest[1] };
  if (rest.length === 3 && rest[0] && rest[1] && rest[2])
    return { namespace: rest[0], name: rest[1], container: rest[2] };
  return undefined;
}

/** The newest log of the pod's container on any node; throws a message naming what is missing. */
export async function podLogFile(state: ClusterState, target: string, previous: boolean): Promise<string> {
  const parsed = parsePodLogTarget(target);
  if (!parsed) throw new Error(`${target} is not pod/NAMESPACE/NAME[/CONTAINER]`);
  const nodes = state.nodes?.nodes ?? [];
  if (nodes.length === 0)
    throw new Error('this devcluster has no nodes, so no pod has run (devcluster up --nodes N)');
  let best: { file: string; mtime: number } | undefined;
  const errors: string[] = [];
  for (const node of nodes) {
    const found = await findContainerLog(
      nodePaths(state.stateDir, node.name),
      undefined,
      parsed.namespace,
      parsed.name,
      parsed.container,
      previous,
    );
    if ('error' in found) {
      errors.push(`${node.name}: ${found.error}`);
      continue;
    }
    const mtime = (await stat(found.file).catch(() => undefined))?.mtimeMs ?? 0;
    if (!best || mtime > best.mtime) best = { file: found.file, mtime };
  }
  if (!best) throw new Error(`no log for ${target}: ${errors.join('; ')}`);
  return best.file;
}
