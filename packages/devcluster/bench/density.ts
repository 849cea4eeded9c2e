// Density benchmark, KubeVirt's method scaled to this machine: N small test-guest VMIs created 100 ms apart on the
// devcluster (two nodes, the chart installed with useEmulation), then
// - creation → Running per VMI, P50/P95, from the VMI's own phaseTransitionTimestamps (as KubeVirt's CI measures
//   it), beside what this client saw;
// - API writes per VMI by verb and resource (the API server's apiserver_request_total, all clients: our services,
//   the node agents, the scheduler), counted from the first create until every VMI ran;
// - resident memory (RSS and PSS) of each launcher pod's management processes (virt-launcher, libvirtd, virtlogd,
//   the pod's init; QEMU apart, whose resident size under TCG is mostly guest memory and translation cache), and of
//   the handler, controller and api pods.
// Prints tables and writes them with a PNG chart to .bench/density/ at the repository root.
// Usage: pnpm --filter @kubevirt-ts/devcluster bench [-- --count N] (it runs inside `devcluster test`);
//        inside a running devcluster: node --conditions=@kubevirt-ts/source bench/density.ts --count N
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { CoreV1Api, CustomObjectsApi, type V1Pod } from '@kubernetes/client-node';
import { defaultCacheRoot } from '../src/layout.ts';
import { devclusterState, eventually, kubeConfigFromEnv } from '../src/harness.ts';
import { repoRoot } from '../src/node/setup.ts';
import { readWriteCounts, writesBetween, writesTable } from '../src/stack/api-writes.ts';
import { CHART_NAMESPACE, ensureStack } from '../src/stack/chart.ts';
import { densityChart, formatTable, percentile } from '../src/stack/density-report.ts';
import { benchVmi, type VmiView } from '../src/stack/vms.ts';

const { values } = parseArgs({
  options: {
    count: { type: 'string', default: process.env.KUBEVIRT_TS_DENSITY_COUNT ?? '20' },
    'interval-ms': { type: 'string', default: '100' },
    memory: { type: 'string', default: '256Mi' },
    out: { type: 'string', default: join(repoRoot(), '.bench', 'density') },
  },
});
const COUNT = Number(values.count);
const INTERVAL_MS = Number(values['interval-ms']);
if (!Number.isInteger(COUNT) || COUNT < 1)
  throw new Error(`--count must be a positive whole number, not ${values.count}`);
const MiB = 1024 * 1024;

const log = (line: string) => process.stderr.write(`density: ${line}\n`);

// ---- process memory ----

interface Resident {
  rss: number;
  pss: number;
}

async function resident(pid: number): Promise<Resident> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8').catch(() => '');
  const field = (name: string) =>
    Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1] ?? 0) * 1024;
  return { rss: field('Rss'), pss: field('Pss') };
}

async function processTree(root: number): Promise<{ pid: number; cmdline: string }[]> {
  const children = new Map<number, number[]>();
  for (const entry of await readdir('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
    if (!stat) continue;
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    children.set(ppid, [...(children.get(ppid) ?? []), pid]);
  }
  const out: { pid: number; cmdline: string }[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() ?? 0;
    const cmdline = (await readFile(`/proc/${pid}/cmdline`, 'utf8').catch(() => ''))
      .replaceAll('\0', ' ')
      .trim();
    if (cmdline) out.push({ pid, cmdline });
    queue.push(...(children.get(pid) ?? []));
  }
  return out;
}

/** Memory of a pod's running containers, from the node agent's record of their init pids, split QEMU/the rest. */
async function podMemory(
  nodeRoot: string,
  pod: V1Pod,
): Promise<{ management: Resident; qemu: Resident; processes: number } | undefined> {
  const file = join(nodeRoot, 'var', 'lib', 'devcluster-node', 'pods', `${pod.metadata?.uid}.json`);
  const record = JSON.parse(await readFile(file, 'utf8').catch(() => '{}')) as {
    containers?: Record<string, { current?: { initPid: number } }>;
  };
  const inits = Object.values(record.containers ?? {}).flatMap((c) => (c.current ? [c.current.initPid] : []));
  if (inits.length === 0) return undefined;
  const management = { rss: 0, pss: 0 };
  const qemu = { rss: 0, pss: 0 };
  let processes = 0;
  for (const init of inits) {
    for (const p of await processTree(init)) {
      const r = await resident(p.pid);
      const into = /qemu-system/.test(p.cmdline) ? qemu : management;
      into.rss += r.rss;
      into.pss += r.pss;
      processes++;
    }
  }
  return { management, qemu, processes };
}

// ---- the run ----

const mib = (bytes: number) => (bytes / MiB).toFixed(1);
const sec = (s: number) => (Number.isNaN(s) ? '-' : s.toFixed(1));
const avg = (xs: number[]) => (xs.length === 0 ? Number.NaN : xs.reduce((a, b) => a + b, 0) / xs.length);

async function main(): Promise<number> {
  const state = await devclusterState();
  const kc = kubeConfigFromEnv();
  const core = kc.makeApiClient(CoreV1Api);
  const custom = kc.makeApiClient(CustomObjectsApi);
  const nodes = state.nodes?.nodes ?? [];
  if (nodes.length === 0)
    throw new Error('the density benchmark needs devcluster nodes (devcluster up --nodes 2)');
  const kubeconfig = process.env.KUBECONFIG ?? state.kubeconfigs.admin;
  await ensureStack({
    binDir: state.binDir,
    kubeconfig,
    kc,
    repoRoot: repoRoot(),
    nodes: nodes.map((n) => n.name),
    cacheRoot: defaultCacheRoot(),
    progress: log,
  });

  const namespace = `density-${randomBytes(3).toString('hex')}`;
  await core.createNamespace({
    body: { metadata: { name: namespace, labels: { 'kubevirt-ts.dev/bench': 'density' } } },
  });
  await eventually(() => core.readNamespacedServiceAccount({ name: 'default', namespace }), {
    description: 'the default ServiceAccount',
  });
  log(
    `${COUNT} VMIs (test guest, ${values.memory}, containerDisk) in namespace ${namespace}, ${INTERVAL_MS} ms apart`,
  );

  // Another run's namespaces still being deleted would add their writes to ours: let them finish first.
  await eventually(
    async () =>
      (await core.listNamespace()).items.every((n) => n.status?.phase !== 'Terminating') ||
      (log('waiting for namespaces being deleted to go, so their writes do not count'), false),
    { timeoutMs: 300_000, intervalMs: 5_000, description: 'no namespace Terminating' },
  ).catch(() => log('namespaces are still Terminating; their writes are counted too'));
  const before = await readWriteCounts(kc);
  const created = new Map<string, number>();
  const running = new Map<string, number>();
  const names = Array.from({ length: COUNT }, (_, i) => `density-${String(i + 1).padStart(3, '0')}`);
  const started = Date.now();
  const poller = (async () => {
    let last = -1;
    while (running.size < COUNT && Date.now() - started < COUNT * 60_000 + 600_000) {
      const list = (await custom
        .listNamespacedCustomObject({
          group: 'kubevirt.io',
          version: 'v1',
          namespace,
          plural: 'virtualmachineinstances',
        })
        .catch(() => ({ items: [] }))) as { items: VmiView[] };
      for (const vmi of list.items) {
        const name = vmi.metadata?.name ?? '';
        if (vmi.status?.phase === 'Running' && !running.has(name)) running.set(name, Date.now());
      }
      if (running.size !== last)
        log(`Running ${running.size}/${COUNT} after ${((Date.now() - started) / 1000).toFixed(1)} s`);
      last = running.size;
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  })();
  for (const name of names) {
    const at = Date.now();
    await custom.createNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace,
      plural: 'virtualmachineinstances',
      body: benchVmi(name, { bench: 'density', memory: values.memory }),
    });
    created.set(name, at);
    await new Promise((resolve) => setTimeout(resolve, Math.max(0, at + INTERVAL_MS - Date.now())));
  }
  await poller;
  const after = await readWriteCounts(kc);
  if (running.size < COUNT)
    log(`only ${running.size}/${COUNT} VMIs reached Running; the report covers those`);

  // Let the launchers settle (the guests finish booting) before reading memory.
  await new Promise((resolve) => setTimeout(resolve, 15_000));
  const vmis = (
    (await custom.listNamespacedCustomObject({
      group: 'kubevirt.io',
      version: 'v1',
      namespace,
      plural: 'virtualmachineinstances',
    })) as { items: (VmiView & { metadata?: { creationTimestamp?: string } })[] }
  ).items;
  const server: number[] = [];
  for (const vmi of vmis) {
    const createdAt = vmi.metadata?.creationTimestamp;
    const runningAt = vmi.status?.phaseTransitionTimestamps?.find(
      (t) => t.phase === 'Running',
    )?.phaseTransitionTimestamp;
    if (createdAt && runningAt)
      server.push((new Date(runningAt).getTime() - new Date(createdAt).getTime()) / 1000);
  }
  const client = [...running].map(([name, at]) => (at - (created.get(name) ?? at)) / 1000);

  const rootOf = new Map(nodes.map((n) => [n.name, n.root]));
  const launchers = (await core.listNamespacedPod({ namespace, labelSelector: 'kubevirt.io=virt-launcher' }))
    .items;
  const launcherMemory = [];
  for (const pod of launchers) {
    const m = await podMemory(rootOf.get(pod.spec?.nodeName ?? '') ?? '', pod);
    if (m) launcherMemory.push(m);
  }
  const services: { component: string; pod: string; node: string; rss: number; pss: number }[] = [];
  for (const component of ['handler', 'controller', 'api']) {
    const pods = await core.listNamespacedPod({
      namespace: CHART_NAMESPACE,
      labelSelector: `app.kubernetes.io/component=${component}`,
    });
    for (const pod of pods.items) {
      const m = await podMemory(rootOf.get(pod.spec?.nodeName ?? '') ?? '', pod);
      if (m) {
        services.push({
          component,
          pod: pod.metadata?.name ?? '',
          node: pod.spec?.nodeName ?? '',
          rss: m.management.rss + m.qemu.rss,
          pss: m.management.pss + m.qemu.pss,
        });
      }
    }
  }

  // ---- report ----
  const latency = formatTable(
    ['creation → Running (s)', 'P50', 'P95', 'max', 'VMIs'],
    [
      [
        'phaseTransitionTimestamps (server)',
        sec(percentile(server, 50)),
        sec(percentile(server, 95)),
        sec(Math.max(...server)),
        String(server.length),
      ],
      [
        'observed by this client',
        sec(percentile(client, 50)),
        sec(percentile(client, 95)),
        sec(Math.max(...client)),
        String(client.length),
      ],
    ],
  );
  const writes = writesTable('API writes (all clients)', writesBetween(before, after), COUNT);
  const mgmtRss = launcherMemory.map((m) => m.management.rss);
  const mgmtPss = launcherMemory.map((m) => m.management.pss);
  const qemuRss = launcherMemory.map((m) => m.qemu.rss);
  const byComponent = (c: string) => services.filter((s) => s.component === c);
  const memoryRows = [
    [
      'launcher pod management (per VM, avg)',
      mib(avg(mgmtRss)),
      mib(avg(mgmtPss)),
      String(launcherMemory.length),
    ],
    ['launcher pod management (per VM, max)', mib(Math.max(...mgmtRss)), mib(Math.max(...mgmtPss)), ''],
    ['QEMU (per VM, avg; guest RAM + TCG cache)', mib(avg(qemuRss)), '', ''],
    ...['handler', 'controller', 'api'].map((c) => [
      `virt-${c} (per pod, avg)`,
      mib(avg(byComponent(c).map((s) => s.rss))),
      mib(avg(byComponent(c).map((s) => s.pss))),
      String(byComponent(c).length),
    ]),
  ];
  const memoryTable = formatTable(['resident memory (MiB)', 'RSS', 'PSS', 'pods'], memoryRows);
  const handlerPerNode = byComponent('handler')
    .map(
      (s) =>
        `${s.node}: ${mib(s.rss)} MiB RSS with ${launchers.filter((p) => p.spec?.nodeName === s.node).length} VMIs`,
    )
    .join('; ');
  const title = `DENSITY N=${COUNT}, ${nodes.length} NODES, ${new Date().toISOString().slice(0, 10)}`;
  const report = [
    `# Density: ${COUNT} VMIs created ${INTERVAL_MS} ms apart on ${nodes.length} devcluster nodes (${new Date().toISOString()})`,
    '',
    '```',
    latency,
    '',
    writes,
    '',
    memoryTable,
    '```',
    '',
    `virt-handler per node: ${handlerPerNode}`,
    '',
    'KubeVirt for reference (its CI, 100 VMIs on its own cluster): P50 about 16–25 s, P95 about 27–30 s.',
    'Each software-emulated guest needs a core while it boots; this machine has two, so the ratio is not like for like.',
    '',
    '![density chart](density.png)',
    '',
  ].join('\n');
  await mkdir(values.out, { recursive: true });
  await writeFile(join(values.out, 'density.md'), report);
  await writeFile(
    join(values.out, 'density.png'),
    densityChart({
      title,
      toRunningSeconds: server,
      memoryMiB: [
        { label: 'LAUNCHER/VM', value: avg(mgmtRss) / MiB },
        { label: 'HANDLER', value: avg(byComponent('handler').map((s) => s.rss)) / MiB },
        { label: 'CONTROLLER', value: avg(byComponent('controller').map((s) => s.rss)) / MiB },
        { label: 'API', value: avg(byComponent('api').map((s) => s.rss)) / MiB },
      ].filter((m) => !Number.isNaN(m.value)),
    }),
  );
  process.stdout.write(`${report}\n`);
  log(`report: ${join(values.out, 'density.md')}, chart: ${join(values.out, 'density.png')}`);

  log(`deleting namespace ${namespace}`);
  await core.deleteNamespace({ name: namespace });
  await eventually(
    async () =>
      (await core.listNamespacedPod({ namespace, labelSelector: 'kubevirt.io=virt-launcher' })).items
        .length === 0,
    { timeoutMs: 300_000, intervalMs: 2_000, description: 'the launcher pods to be gone' },
  ).catch((err: unknown) => log(`cleanup: ${err instanceof Error ? err.message : String(err)}`));
  return running.size === COUNT ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
