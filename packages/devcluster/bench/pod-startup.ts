// Benchmark of devcluster's nodes: time from creating a pod to its status saying Running (the API call, the
// scheduler's binding, the node agent's sandbox, volumes and container start, and its status write), then to Ready
// (a readiness probe that answers at once), and from deleting a pod that exits on SIGTERM to the object being gone.
// One pod at a time on a warm devcluster, observed through a watch (no polling). Runs inside the devcluster's
// namespace: `pnpm --filter @kubevirt-ts/devcluster bench [-- --runs N]` (devcluster test brings the nodes up).
import { CoreV1Api, KubeConfig, Watch, type V1Pod } from '@kubernetes/client-node';

const runsFlag = process.argv.indexOf('--runs');
const RUNS = runsFlag >= 0 ? Number(process.argv[runsFlag + 1]) : 20;

const kc = new KubeConfig();
kc.loadFromDefault();
const core = kc.makeApiClient(CoreV1Api);
const namespace = `bench-pods-${Date.now().toString(36)}`;

type Watcher = (pod: V1Pod | undefined) => void;
const watchers = new Map<string, Set<Watcher>>();

async function watchPods(): Promise<AbortController> {
  return new Watch(kc).watch(
    `/api/v1/namespaces/${namespace}/pods`,
    {},
    (type, obj: V1Pod) => {
      for (const w of [...(watchers.get(obj.metadata?.name ?? '') ?? [])])
        w(type === 'DELETED' ? undefined : obj);
    },
    () => undefined,
  );
}

function until(name: string, check: (pod: V1Pod | undefined) => boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`pod ${name}: timed out`)), 60_000);
    const set = watchers.get(name) ?? new Set<Watcher>();
    watchers.set(name, set);
    const watcher: Watcher = (pod) => {
      if (check(pod)) {
        clearTimeout(timer);
        set.delete(watcher);
        resolve(performance.now());
      }
    };
    set.add(watcher);
  });
}

const ready = (pod: V1Pod | undefined) =>
  Boolean(pod?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

function report(label: string, samples: number[]): void {
  const sorted = [...samples].sort((a, b) => a - b);
  const f = (n: number) => `${Math.round(n)} ms`.padStart(8);
  console.log(
    `${label.padEnd(36)} p50 ${f(percentile(sorted, 50))}  p90 ${f(percentile(sorted, 90))}  max ${f(sorted.at(-1) ?? Number.NaN)}`,
  );
}

await core.createNamespace({ body: { metadata: { name: namespace } } });
// Pods need the namespace's default ServiceAccount, which the controller-manager creates.
for (let i = 0; i < 100; i++) {
  try {
    await core.readNamespacedServiceAccount({ name: 'default', namespace });
    break;
  } catch {
    await new Promise((r) => setTimeout(r, 100));
  }
}
const watch = await watchPods();
const toRunning: number[] = [];
const toReady: number[] = [];
const toGone: number[] = [];
try {
  // One unmeasured pod first: the first container on a node pays for loading what later ones find cached.
  for (let i = -1; i < RUNS; i++) {
    const name = `pod-${i + 1}`;
    const running = until(name, (p) => p?.status?.phase === 'Running');
    const isReady = until(name, ready);
    const started = performance.now();
    await core.createNamespacedPod({
      namespace,
      body: {
        metadata: { name },
        spec: {
          terminationGracePeriodSeconds: 30,
          tolerations: [{ operator: 'Exists' }],
          nodeSelector: { 'node.kubevirt-ts.dev/devcluster': 'true' },
          containers: [
            {
              name: 'web',
              image: 'node:24',
              command: [
                'node',
                '-e',
                "process.on('SIGTERM', () => process.exit(0)); require('http').createServer((q, s) => s.end('ok')).listen(8080)",
              ],
              readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const runningAt = await running;
    const readyAt = await isReady;
    const gone = until(name, (p) => p === undefined);
    const deleting = performance.now();
    await core.deleteNamespacedPod({ name, namespace });
    const goneAt = await gone;
    if (i < 0) continue;
    toRunning.push(runningAt - started);
    toReady.push(readyAt - started);
    toGone.push(goneAt - deleting);
  }
  console.log(
    `devcluster nodes, ${RUNS} pods one at a time (node:24 HTTP server, tcp readiness probe every 1 s):`,
  );
  report('creation → Running', toRunning);
  report('creation → Ready', toReady);
  report('delete → gone (exits on SIGTERM)', toGone);
} finally {
  watch.abort();
  await core.deleteNamespace({ name: namespace });
}
