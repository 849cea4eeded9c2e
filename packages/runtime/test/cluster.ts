// What the runtime's integration suites need from the cluster they run against. They talk to a real API server
// (the devcluster of issue 3, or any cluster a developer points KUBECONFIG at) and never to a fake.
//
// Environment:
//   KUBEVIRT_TS_INTEGRATION=1          run the suites (they are skipped otherwise; the skip reason is in their names)
//   KUBECONFIG                         the cluster; loaded like a service loads it
//   KUBEVIRT_TS_APISERVER_RESTART      shell command that restarts kube-apiserver and returns once it is ready again
//   KUBEVIRT_TS_WATCH_EXPIRE           shell command that makes every existing watch resourceVersion too old
//                                      (compact etcd, then restart the API server so its watch cache forgets)
// Tests that need one of the commands skip, saying so, when it is unset.
import { execFile } from 'node:child_process';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../src/kube.ts';

export const integration = ['1', 'true'].includes(process.env.KUBEVIRT_TS_INTEGRATION ?? '');
export const needsCluster = '(needs KUBEVIRT_TS_INTEGRATION=1 and KUBECONFIG of a running devcluster)';

export function clusterKubeConfig(): KubeConfig {
  return loadKubeConfig().kubeConfig;
}

/** Creates a namespace of its own for one test file; the returned function deletes it. */
export async function createTestNamespace(
  kc: KubeConfig,
  prefix: string,
): Promise<{ name: string; remove: () => Promise<void> }> {
  const core = kc.makeApiClient(CoreV1Api);
  const ns = await core.createNamespace({
    body: { metadata: { generateName: `${prefix}-`, labels: { 'kubevirt-ts.io/test': prefix } } },
  });
  const name = ns.metadata?.name;
  if (!name) throw new Error('the API server returned a namespace without a name');
  return {
    name,
    remove: async () => {
      await core.deleteNamespace({ name });
    },
  };
}

/** Runs the shell command named by env `name`; undefined when that variable is unset. */
export function clusterCommand(
  name: 'KUBEVIRT_TS_APISERVER_RESTART' | 'KUBEVIRT_TS_WATCH_EXPIRE',
): (() => Promise<void>) | undefined {
  const command = process.env[name];
  if (!command) return undefined;
  return () =>
    new Promise((resolve, reject) => {
      execFile('/bin/sh', ['-c', command], { timeout: 120_000 }, (err, _stdout, stderr) => {
        if (err) reject(new Error(`${name} (${command}) failed: ${err.message}\n${stderr}`));
        else resolve();
      });
    });
}

/** Polls `check` until it returns true or `timeoutMs` passes (a semantic bound, never a speed assertion). */
export async function eventually(
  check: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}
