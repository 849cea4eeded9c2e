// Admission latency through the API server (`pnpm bench` in packages/api): a client creates VirtualMachines through
// kube-apiserver at a fixed rate (default 100/s, open loop), with virt-api's mutating and validating webhooks in the
// path over TLS, and prints P50/P99 of:
//   - virt-api's own time per review (from its debug log: request in to response out, exact),
//   - the API server's view of each webhook call (apiserver_admission_webhook_admission_duration_seconds, a
//     histogram with coarse buckets, so its percentiles are interpolated),
//   - the client's create latency, side by side with a baseline run in a namespace no webhook selects; the
//     difference is the webhooks' share as a user feels it.
// It runs inside the devcluster's network namespace (the script wraps itself in `devcluster test`), starts virt-api
// from source as a process with its own service account, and cleans up what it created.
// Settings: BENCH_RATE (creates per second, default 100), BENCH_SECONDS (per phase, default 20).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import https from 'node:https';
import { CoreV1Api, CustomObjectsApi, KubeConfig, type KubernetesObject } from '@kubernetes/client-node';
import { expose } from '@kubevirt-ts/devcluster';
import { devclusterState, eventually, kubeRequest } from '@kubevirt-ts/devcluster/testing';
import { createCertificateAuthority, issueCertificate } from '@kubevirt-ts/runtime/pki';
import { apply, installCrds, rbacObjects, remove, startService, SERVICE_NAMESPACE } from '../test/harness.ts';

const RATE = Number(process.env.BENCH_RATE ?? 100);
const SECONDS = Number(process.env.BENCH_SECONDS ?? 20);
const suffix = Math.random().toString(16).slice(2, 8);
const webhookNs = `bench-admission-${suffix}`;
const baselineNs = `bench-baseline-${suffix}`;

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

const ms = (v: number): string => (Number.isNaN(v) ? '   n/a' : `${v.toFixed(2).padStart(6)} ms`);

function row(label: string, values: readonly number[]): string {
  const sorted = [...values].sort((a, b) => a - b);
  return `${label.padEnd(46)} n=${String(sorted.length).padStart(5)}  P50 ${ms(percentile(sorted, 50))}  P99 ${ms(percentile(sorted, 99))}`;
}

interface Histogram {
  buckets: Map<number, number>;
  count: number;
}

/** The API server's admission webhook histogram for our webhooks, per webhook type (admit = mutating). */
async function webhookHistograms(
  kc: KubeConfig,
  names: ReadonlySet<string>,
): Promise<Map<string, Histogram>> {
  const res = await kubeRequest(kc, '/metrics');
  const out = new Map<string, Histogram>();
  for (const line of res.body.split('\n')) {
    if (!line.startsWith('apiserver_admission_webhook_admission_duration_seconds_bucket{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    if (!names.has(labels.name ?? '') || labels.operation !== 'CREATE') continue;
    const key = labels.type ?? '';
    const h = out.get(key) ?? { buckets: new Map(), count: 0 };
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    h.buckets.set(le, (h.buckets.get(le) ?? 0) + value);
    if (le === Number.POSITIVE_INFINITY) h.count += value;
    out.set(key, h);
  }
  return out;
}

/** A percentile from the difference of two cumulative histograms, interpolated linearly within a bucket. */
function histogramPercentile(after: Histogram, before: Histogram | undefined, p: number): number {
  const les = [...after.buckets.keys()].sort((a, b) => a - b);
  const count = after.count - (before?.count ?? 0);
  if (count <= 0) return Number.NaN;
  const rank = (p / 100) * count;
  let lower = 0;
  let below = 0;
  for (const le of les) {
    const cumulative = (after.buckets.get(le) ?? 0) - (before?.buckets.get(le) ?? 0);
    if (cumulative >= rank) {
      if (le === Number.POSITIVE_INFINITY) return lower * 1000;
      const inBucket = cumulative - below;
      return (lower + ((le - lower) * (rank - below)) / Math.max(inBucket, 1)) * 1000;
    }
    lower = le;
    below = cumulative;
  }
  return Number.NaN;
}

function vm(name: string, namespace: string) {
  return {
    apiVersion: 'kubevirt.io/v1',
    kind: 'VirtualMachine',
    metadata: { name, namespace, labels: { app: 'bench' } },
    spec: {
      runStrategy: 'Halted',
      template: {
        metadata: { labels: { app: 'bench' } },
        spec: {
          domain: {
            cpu: { cores: 1 },
            memory: { guest: '128Mi' },
            devices: { disks: [{ name: 'root', disk: { bus: 'virtio' } }] },
          },
          volumes: [{ name: 'root', containerDisk: { image: 'registry.kubevirt-ts.dev/test-guest:latest' } }],
        },
      },
    },
  };
}

/**
 * A minimal client for the load: plain https.request over one keep-alive agent, so the numbers measure the API
 * server and the webhooks rather than a client that opens a TLS connection per request.
 */
async function creator(kc: KubeConfig): Promise<(namespace: string, body: unknown) => Promise<number>> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const url = new URL(cluster.server);
  const tlsOptions: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(tlsOptions);
  const agent = new https.Agent({
    keepAlive: true,
    maxSockets: 64,
    ca: tlsOptions.ca,
    cert: tlsOptions.cert,
    key: tlsOptions.key,
  });
  const token = kc.getCurrentUser()?.token;
  return (namespace, body) =>
    new Promise((resolve, reject) => {
      const payload = JSON.stringify(body);
      const req = https.request(
        {
          agent,
          host: url.hostname,
          port: Number(url.port || 443),
          method: 'POST',
          path: `/apis/kubevirt.io/v1/namespaces/${namespace}/virtualmachines`,
          headers: {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(payload),
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () =>
            res.statusCode === 201
              ? resolve(res.statusCode)
              : reject(
                  new Error(`HTTP ${res.statusCode}: ${Buffer.concat(chunks).toString().slice(0, 300)}`),
                ),
          );
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
}

type Create = Awaited<ReturnType<typeof creator>>;

/** Creates VMs at RATE per second for `seconds`, open loop; returns each create's latency in ms. */
async function load(create: Create, namespace: string, label: string, seconds = SECONDS): Promise<number[]> {
  const total = RATE * seconds;
  const latencies: number[] = [];
  const failures: string[] = [];
  const started = performance.now();
  const inflight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / RATE;
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t0 = performance.now();
    inflight.push(
      create(namespace, vm(`${label}-${i}`, namespace)).then(
        () => void latencies.push(performance.now() - t0),
        (err: unknown) => void failures.push(err instanceof Error ? err.message : String(err)),
      ),
    );
  }
  await Promise.all(inflight);
  const elapsed = (performance.now() - started) / 1000;
  console.log(
    `${label}: ${latencies.length} VMs created in ${elapsed.toFixed(1)} s (${(latencies.length / elapsed).toFixed(0)}/s)` +
      (failures.length > 0 ? `, ${failures.length} failed; first: ${failures[0]}` : ''),
  );
  return latencies;
}

/** virt-api's own histogram of review times, from its metrics port. */
/** virt-api's garbage collection (count and total pause, all kinds) and event-loop lag, from prom-client. */
async function runtimeStats(
  healthPort: number,
): Promise<{ gcCount: number; gcSeconds: number; lagP99: number }> {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const sum = (prefix: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(prefix))
      .reduce((acc, l) => acc + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  return {
    gcCount: sum('nodejs_gc_duration_seconds_count'),
    gcSeconds: sum('nodejs_gc_duration_seconds_sum'),
    lagP99: sum('nodejs_eventloop_lag_p99_seconds'),
  };
}

async function reviewHistograms(healthPort: number): Promise<Map<string, Histogram>> {
  const text = await (await fetch(`http://127.0.0.1:${healthPort}/metrics`)).text();
  const out = new Map<string, Histogram>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('kubevirt_virt_api_admission_review_duration_seconds_bucket{')) continue;
    const labels = Object.fromEntries(
      [...line.matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1] ?? '', m[2] ?? '']),
    );
    if (labels.operation !== 'CREATE') continue;
    const key = labels.path ?? '';
    const h = out.get(key) ?? { buckets: new Map(), count: 0 };
    const le = labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(labels.le);
    const value = Number(line.slice(line.lastIndexOf(' ') + 1));
    h.buckets.set(le, (h.buckets.get(le) ?? 0) + value);
    if (le === Number.POSITIVE_INFINITY) h.count += value;
    out.set(key, h);
  }
  return out;
}

async function main(): Promise<void> {
  const state = await devclusterState();
  const kc = new KubeConfig();
  kc.loadFromFile(process.env.KUBECONFIG ?? state.kubeconfigs.admin);
  const core = kc.makeApiClient(CoreV1Api);
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'bench-admission-'));
  const cleanup: KubernetesObject[] = [];
  let api: ReturnType<typeof startService> | undefined;
  try {
    await installCrds(kc);
    for (const name of [webhookNs, baselineNs]) {
      await core.createNamespace({
        body: { metadata: { name, labels: { 'kubevirt-ts.dev/bench': 'true' } } },
      });
    }
    const ca = await createCertificateAuthority({ commonName: 'bench-ca', validityMs: 3_600_000 });
    const leaf = await issueCertificate(ca, {
      commonName: `virt-api.${webhookNs}.svc`,
      usages: ['server'],
      dnsNames: [`virt-api.${webhookNs}.svc`],
      validityMs: 3_600_000,
    });
    writeFileSync(path.join(tmp, 'tls.crt'), leaf.certPem);
    writeFileSync(path.join(tmp, 'tls.key'), leaf.keyPem);
    const mutating = `bench-virt-api-mutator-${suffix}`;
    const validating = `bench-virt-api-validator-${suffix}`;
    const rbac = rbacObjects({
      namespace: webhookNs,
      secrets: ['unused', 'unused-api'],
      mutating,
      validating,
      apiService: 'none',
    });
    for (const obj of rbac) await apply(kc, obj);
    cleanup.push(
      ...rbac.filter((o) => o.kind?.startsWith('Cluster') || o.metadata?.namespace === 'kube-system'),
    );

    api = startService('virt-api', [
      `--kubeconfig=${state.kubeconfigs.services['virt-api']}`,
      `--namespace=${webhookNs}`,
      '--port=0',
      '--health-port=0',
      '--health-bind-address=127.0.0.1',
      `--tls-cert-file=${path.join(tmp, 'tls.crt')}`,
      `--tls-key-file=${path.join(tmp, 'tls.key')}`,
      `--privileged-service-accounts=${SERVICE_NAMESPACE}:virt-controller`,
    ]);
    const healthPort = (await api.waitForLine((l) => String(l.msg).startsWith('serving /livez')))
      .port as number;
    const listening = await api.waitForLine(
      (l) => String(l.msg).startsWith('serving admission webhooks'),
      120_000,
    );
    await expose(kc, {
      name: 'virt-api',
      namespace: webhookNs,
      port: 443,
      targetPort: listening.port as number,
    });

    const caBundle = Buffer.from(ca.certPem).toString('base64');
    const webhook = (name: string, p: string) => ({
      name,
      admissionReviewVersions: ['v1'],
      sideEffects: 'None',
      failurePolicy: 'Fail',
      timeoutSeconds: 10,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': webhookNs } },
      clientConfig: { caBundle, service: { name: 'virt-api', namespace: webhookNs, path: p, port: 443 } },
      rules: [
        {
          apiGroups: ['kubevirt.io'],
          apiVersions: ['v1'],
          resources: ['virtualmachines'],
          operations: ['CREATE', 'UPDATE'],
          scope: 'Namespaced',
        },
      ],
    });
    const configs = [
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'MutatingWebhookConfiguration',
        metadata: { name: mutating },
        webhooks: [webhook('virtualmachines-mutator.bench.kubevirt.io', '/virtualmachines-mutate')],
      },
      {
        apiVersion: 'admissionregistration.k8s.io/v1',
        kind: 'ValidatingWebhookConfiguration',
        metadata: { name: validating },
        webhooks: [webhook('virtualmachines-validator.bench.kubevirt.io', '/virtualmachines-validate')],
      },
    ] as unknown as KubernetesObject[];
    for (const obj of configs) await apply(kc, obj);
    cleanup.push(...configs);
    await api.waitForLine((l) => l.msg === 'informer cache synced' && l.informer === 'kubevirts', 60_000);
    await eventually(
      async () => {
        const created = (await kc.makeApiClient(CustomObjectsApi).createNamespacedCustomObject({
          group: 'kubevirt.io',
          version: 'v1',
          namespace: webhookNs,
          plural: 'virtualmachines',
          body: vm('probe', webhookNs),
          dryRun: 'All',
        })) as { spec?: { template?: { spec?: { domain?: { machine?: unknown } } } } };
        // The machine type is a default of virt-api's mutating webhook: seeing it proves the webhook ran.
        return created.spec?.template?.spec?.domain?.machine !== undefined;
      },
      { timeoutMs: 60_000, description: 'the webhooks to answer' },
    );
    const create = await creator(kc);
    const names = new Set([
      'virtualmachines-mutator.bench.kubevirt.io',
      'virtualmachines-validator.bench.kubevirt.io',
    ]);
    console.log(
      `\nCreating VMs at ${RATE}/s for ${SECONDS} s per phase (Node ${process.version}, ${os.cpus().length} cores)\n`,
    );
    // Warm up connections, caches and the JIT on both paths before measuring.
    await load(create, baselineNs, 'warmup-baseline', 2);
    await load(create, webhookNs, 'warmup-webhooks', 2);
    const baseline = await load(create, baselineNs, 'baseline');
    const before = await webhookHistograms(kc, names);
    const serverBefore = await reviewHistograms(healthPort);
    const statsBefore = await runtimeStats(healthPort);
    const withWebhooks = await load(create, webhookNs, 'webhooks');
    const after = await webhookHistograms(kc, names);
    const serverAfter = await reviewHistograms(healthPort);
    const statsAfter = await runtimeStats(healthPort);

    const histogramRow = (
      label: string,
      h: Histogram | undefined,
      b: Histogram | undefined,
      bound: number,
    ) => {
      if (h === undefined) return `${label.padEnd(46)} no samples`;
      const n = h.count - (b?.count ?? 0);
      const within = ((h.buckets.get(bound) ?? 0) - (b?.buckets.get(bound) ?? 0)) / Math.max(n, 1);
      return (
        `${label.padEnd(46)} n=${String(n).padStart(5)}  P50 ${ms(histogramPercentile(h, b, 50))}  ` +
        `P99 ${ms(histogramPercentile(h, b, 99))}  (${(within * 100).toFixed(1)}% within ${bound * 1000} ms)`
      );
    };
    console.log('\nvirt-api, time per review, request in to response out (its own histogram, interpolated):');
    for (const p of ['/virtualmachines-mutate', '/virtualmachines-validate']) {
      console.log(histogramRow(`  ${p}`, serverAfter.get(p), serverBefore.get(p), 0.001));
    }
    const gcs = statsAfter.gcCount - statsBefore.gcCount;
    const gcMs = (statsAfter.gcSeconds - statsBefore.gcSeconds) * 1000;
    console.log(
      `  (during the run: ${gcs} garbage collections, ${gcMs.toFixed(1)} ms in total; ` +
        `event-loop lag P99 ${(statsAfter.lagP99 * 1000).toFixed(2)} ms)`,
    );
    console.log(
      '\nkube-apiserver, each webhook call as the API server times it (apiserver_admission_webhook_',
    );
    console.log(
      'admission_duration_seconds; its buckets are 5/25/100 ms wide, so values below 5 ms are interpolated):',
    );
    for (const [type, label] of [
      ['admit', 'mutating'],
      ['validating', 'validating'],
    ] as const) {
      console.log(histogramRow(`  ${label}`, after.get(type), before.get(type), 0.005));
    }
    console.log('\nclient, VM create through kube-apiserver:');
    console.log(row('  baseline (no webhook selects the namespace)', baseline));
    console.log(row('  with virt-api mutating + validating webhooks', withWebhooks));
    const sortedB = [...baseline].sort((a, b) => a - b);
    const sortedW = [...withWebhooks].sort((a, b) => a - b);
    console.log(
      `  webhooks' share as the client sees it: P50 ${ms(percentile(sortedW, 50) - percentile(sortedB, 50))}, ` +
        `P99 ${ms(percentile(sortedW, 99) - percentile(sortedB, 99))}`,
    );
  } finally {
    for (const obj of cleanup.reverse()) await remove(kc, obj).catch(() => undefined);
    await api?.stop();
    for (const name of [webhookNs, baselineNs]) {
      await core.deleteNamespace({ name }).catch(() => undefined);
    }
    rmSync(tmp, { recursive: true, force: true });
  }
}

await main();
