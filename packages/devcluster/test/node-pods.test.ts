// devcluster nodes run pods as processes: scheduling by the real kube-scheduler, pod addresses and routes between
// nodes, the service-account token, deletion with the grace period, image errors, and the kubelet's status rules.
// Runs under `devcluster test` (make integration), which brings the nodes up.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AppsV1Api,
  RbacAuthorizationV1Api,
  type CoreV1Api,
  type V1Container,
  type V1Pod,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { podRange } from '../src/node/network.ts';
import { findContainerLog } from '../src/node/kubelet-api.ts';
import {
  devclusterNodes,
  eventually,
  onNode,
  running,
  useTestNamespace,
  waitForPod,
  type TestNode,
} from '../src/testing.ts';

const ns = useTestNamespace('node-pods');
let nodes: TestNode[];
let core: CoreV1Api;

beforeAll(async () => {
  nodes = await devclusterNodes(ns.kc, 2);
  core = ns.core;
});

const SERVER = `require('http').createServer((q, s) => s.end('hello from ' + require('os').hostname())).listen(8080, () => console.log('listening'))`;

function container(name: string, script: string, extra: Partial<V1Container> = {}): V1Container {
  return { name, image: 'node:24', command: ['sh', '-c', script], ...extra };
}

async function createPod(
  name: string,
  node: TestNode,
  spec: Partial<V1PodSpec> & Pick<V1PodSpec, 'containers'>,
): Promise<V1Pod> {
  return core.createNamespacedPod({
    namespace: ns.name,
    body: { metadata: { name }, spec: { ...onNode(node.name), terminationGracePeriodSeconds: 5, ...spec } },
  });
}

const phase = (p: string) => (pod: V1Pod) => pod.status?.phase === p;

async function logs(name: string, containerName?: string): Promise<string> {
  return core.readNamespacedPodLog({
    name,
    namespace: ns.name,
    ...(containerName ? { container: containerName } : {}),
  });
}

/** Pids of processes whose command line contains `marker` (the test runner shares the machine's PID namespace). */
function pidsWith(marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(join('/proc', entry, 'cmdline'), 'utf8');
      if (cmdline.includes(marker) && !cmdline.includes('vitest')) out.push(Number(entry));
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

describe('devcluster nodes', () => {
  it('are Ready with a pod range, capacity, a Lease and the kubelet identity', async () => {
    const coordination = ns.kc.makeApiClient((await import('@kubernetes/client-node')).CoordinationV1Api);
    for (const node of nodes) {
      const object = await core.readNode({ name: node.name });
      expect(object.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      for (const resource of ['cpu', 'memory', 'pods']) {
        expect(object.status?.capacity?.[resource]).toBeDefined();
        expect(object.status?.allocatable?.[resource]).toBeDefined();
      }
      expect(object.status?.nodeInfo?.kubeletVersion).toMatch(/^v1\.\d+\.\d+/);
      expect(object.status?.daemonEndpoints?.kubeletEndpoint?.Port).toBe(10250);
      const lease = await coordination.readNamespacedLease({ name: node.name, namespace: 'kube-node-lease' });
      expect(lease.spec?.holderIdentity).toBe(node.name);
      const renewed = Date.parse(String(lease.spec?.renewTime));
      expect(Date.now() - renewed).toBeLessThan(60_000);
      expect(lease.metadata?.ownerReferences?.[0]?.kind).toBe('Node');
      // The agent authenticates as the node: its kubeconfig's certificate says system:node:<name>.
      const kubeconfig = readFileSync(node.paths.kubeconfig, 'utf8');
      expect(kubeconfig).toContain(`system:node:${node.name}`);
    }
  });
});

describe('a Deployment of node:24 serving HTTP', () => {
  it('runs a pod on each node with an address from that node, reachable from pods on every node', async () => {
    const apps = ns.kc.makeApiClient(AppsV1Api);
    const labels = { app: 'web' };
    await apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: 'web' },
        spec: {
          replicas: nodes.length,
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              tolerations: [{ operator: 'Exists' }],
              affinity: {
                nodeAffinity: {
                  requiredDuringSchedulingIgnoredDuringExecution: {
                    nodeSelectorTerms: [
                      { matchExpressions: [{ key: 'node.kubevirt-ts.dev/devcluster', operator: 'Exists' }] },
                    ],
                  },
                },
              },
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: 'kubernetes.io/hostname',
                  whenUnsatisfiable: 'DoNotSchedule',
                  labelSelector: { matchLabels: labels },
                },
              ],
              terminationGracePeriodSeconds: 2,
              containers: [
                {
                  name: 'web',
                  image: 'node:24',
                  command: ['node', '-e', SERVER],
                  ports: [{ name: 'http', containerPort: 8080 }],
                  readinessProbe: { httpGet: { path: '/', port: 'http' }, periodSeconds: 1 },
                },
              ],
            },
          },
        },
      },
    });
    const pods = await eventually(
      async () => {
        const list = await core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=web' });
        const ready = list.items.filter((p) =>
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === nodes.length ? ready : undefined;
      },
      { timeoutMs: 60_000, description: 'a Ready web pod on each node' },
    );
    const byNode = new Map(pods.map((p) => [p.spec?.nodeName, p]));
    expect(byNode.size).toBe(nodes.length);
    for (const node of nodes) {
      const pod = byNode.get(node.name);
      expect(pod?.status?.phase).toBe('Running');
      expect(podRange(node.podCIDR).addresses).toContain(pod?.status?.podIP);
      expect(pod?.status?.hostIP).toBe(node.address);
    }
    const ips = pods.map((p) => p.status?.podIP ?? '');
    // The test runner (in the cluster's namespace) reaches every pod…
    for (const ip of ips) {
      const res = await fetch(`http://${ip}:8080/`);
      expect(await res.text()).toMatch(/^hello from web-/);
    }
    // …and so does a pod on each node, across nodes.
    const client = `Promise.all(${JSON.stringify(ips)}.map((ip) => fetch('http://' + ip + ':8080/').then((r) => r.text()))).then((t) => console.log(t.join('|')), (e) => { console.error(e); process.exit(1); })`;
    for (const node of nodes) {
      const name = `client-${node.name}`;
      await createPod(name, node, {
        restartPolicy: 'Never',
        containers: [{ name: 'client', image: 'node:24', command: ['node', '-e', client] }],
      });
      await waitForPod(
        core,
        ns.name,
        name,
        (p) => p.status?.phase === 'Succeeded' || p.status?.phase === 'Failed',
      );
      const out = await logs(name);
      expect(out.trim().split('|')).toHaveLength(ips.length);
      expect(out).not.toMatch(/Error/);
    }
  });

  it('measures pod creation to Running (printed, never asserted)', async () => {
    const samples: number[] = [];
    for (let i = 0; i < 5; i++) {
      const name = `timing-${i}`;
      const started = performance.now();
      await createPod(name, nodes[i % nodes.length] as TestNode, {
        containers: [container('c', 'exec sleep 600')],
      });
      await waitForPod(core, ns.name, name, phase('Running'), { timeoutMs: 30_000 });
      samples.push(performance.now() - started);
      await core.deleteNamespacedPod({ name, namespace: ns.name, gracePeriodSeconds: 0 });
    }
    samples.sort((a, b) => a - b);
    console.log(
      `pod creation → Running (incl. scheduling, polled every 100 ms): p50 ${Math.round(samples[2] ?? 0)} ms, max ${Math.round(samples[4] ?? 0)} ms`,
    );
    expect(samples).toHaveLength(5);
  });
});

describe('the service-account token', () => {
  it('lets a pod list pods through the API server, as its own ServiceAccount bound to the pod', async () => {
    const rbac = ns.kc.makeApiClient(RbacAuthorizationV1Api);
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'pod-reader' },
        rules: [{ apiGroups: [''], resources: ['pods'], verbs: ['list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'pod-reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'pod-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'default', namespace: ns.name }],
      },
    });
    const script = `
      const fs = require('fs');
      const dir = '/var/run/secrets/kubernetes.io/serviceaccount/';
      const token = fs.readFileSync(dir + 'token', 'utf8');
      const claims = JSON.parse(Buffer.from(token.split('.')[1], 'base64url'));
      console.log('bound-to', claims['kubernetes.io'].pod.name);
      const req = require('https').get({
        host: process.env.KUBERNETES_SERVICE_HOST, port: process.env.KUBERNETES_SERVICE_PORT,
        path: '/api/v1/namespaces/' + fs.readFileSync(dir + 'namespace', 'utf8') + '/pods',
        headers: { authorization: 'Bearer ' + token }, ca: fs.readFileSync(dir + 'ca.crt'),
      }, (res) => { let b = ''; res.on('data', (d) => (b += d)); res.on('end', () => {
        console.log('status', res.statusCode);
        if (res.statusCode === 200) console.log('pods', JSON.parse(b).items.map((p) => p.metadata.name).join(','));
        process.exit(res.statusCode === 200 ? 0 : 1);
      }); });
      req.on('error', (e) => { console.error(e); process.exit(2); });`;
    await createPod('lister', nodes[0] as TestNode, {
      restartPolicy: 'Never',
      containers: [{ name: 'lister', image: 'node:24', command: ['node', '-e', script] }],
    });
    const pod = await waitForPod(core, ns.name, 'lister', (p) =>
      ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
    );
    const out = await logs('lister');
    expect(out).toContain('bound-to lister');
    expect(out).toContain('status 200');
    expect(out).toMatch(/pods .*lister/);
    expect(pod.status?.phase).toBe('Succeeded');
  });
});

describe('deleting a pod', () => {
  it('sends SIGTERM, then SIGKILL after the grace period, then releases the pod object', async () => {
    const marker = `ignore-term-${ns.name}`;
    const node = nodes[0] as TestNode;
    await createPod('stubborn', node, {
      terminationGracePeriodSeconds: 3,
      containers: [
        {
          name: 'main',
          image: 'node:24',
          command: [
            'node',
            '-e',
            `process.on('SIGTERM', () => console.log('SIGTERM received, ignored')); setInterval(() => {}, 1000)`,
            marker,
          ],
        },
      ],
    });
    const pod = await waitForPod(core, ns.name, 'stubborn', (p) => running(p));
    // Node prints nothing before its handler is registered; wait for the process, then for the handler to exist.
    await eventually(() => pidsWith(marker).length > 0, {
      timeoutMs: 10_000,
      description: 'the container process',
    });
    await new Promise((r) => setTimeout(r, 300));
    const started = Date.now();
    await core.deleteNamespacedPod({ name: 'stubborn', namespace: ns.name });
    await eventually(
      async () => {
        try {
          await core.readNamespacedPod({ name: 'stubborn', namespace: ns.name });
          return false;
        } catch (err) {
          return (err as { code?: number }).code === 404;
        }
      },
      { timeoutMs: 3_000 + 15_000, description: 'the pod object to be released' },
    );
    const elapsed = Date.now() - started;
    expect(pidsWith(marker)).toEqual([]);
    // It ignored SIGTERM, so only SIGKILL at the end of the grace period stopped it.
    expect(elapsed).toBeGreaterThanOrEqual(2_900);
    const log = await findContainerLog(node.paths, undefined, ns.name, 'stubborn', 'main', false);
    if ('error' in log) throw new Error(log.error);
    expect(readFileSync(log.file, 'utf8')).toContain('SIGTERM received, ignored');
    expect(pod.metadata?.uid).toBeDefined();
  });

  it('stops a process that honours SIGTERM well within its grace period', async () => {
    const marker = `honour-term-${ns.name}`;
    await createPod('polite', nodes[1] as TestNode, {
      terminationGracePeriodSeconds: 60,
      containers: [
        {
          name: 'main',
          image: 'node:24',
          command: [
            'node',
            '-e',
            `process.on('SIGTERM', () => process.exit(0)); setInterval(() => {}, 1000)`,
            marker,
          ],
        },
      ],
    });
    await waitForPod(core, ns.name, 'polite', (p) => running(p));
    await eventually(() => pidsWith(marker).length > 0, {
      timeoutMs: 10_000,
      description: 'the container process',
    });
    await new Promise((r) => setTimeout(r, 300));
    await core.deleteNamespacedPod({ name: 'polite', namespace: ns.name });
    await eventually(() => pidsWith(marker).length === 0, {
      timeoutMs: 30_000,
      description: 'the process to exit on SIGTERM (grace is 60 s)',
    });
  });
});

describe('a DaemonSet', () => {
  it('runs one pod on every node, and a hostNetwork pod uses its node’s address', async () => {
    const apps = ns.kc.makeApiClient(AppsV1Api);
    const labels = { app: 'per-node' };
    await apps.createNamespacedDaemonSet({
      namespace: ns.name,
      body: {
        metadata: { name: 'per-node' },
        spec: {
          selector: { matchLabels: labels },
          template: {
            metadata: { labels },
            spec: {
              tolerations: [{ operator: 'Exists' }],
              nodeSelector: { 'node.kubevirt-ts.dev/devcluster': 'true' },
              hostNetwork: true,
              terminationGracePeriodSeconds: 1,
              containers: [
                container('main', 'echo "on $(hostname)"; exec sleep 600', {
                  readinessProbe: { exec: { command: ['true'] }, periodSeconds: 1 },
                }),
              ],
            },
          },
        },
      },
    });
    const pods = await eventually(
      async () => {
        const list = await core.listNamespacedPod({ namespace: ns.name, labelSelector: 'app=per-node' });
        const ready = list.items.filter((p) =>
          p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
        );
        return ready.length === nodes.length ? ready : undefined;
      },
      { timeoutMs: 60_000, description: 'a Ready pod of the DaemonSet on each node' },
    );
    for (const node of nodes) {
      const pod = pods.find((p) => p.spec?.nodeName === node.name);
      expect(pod?.status?.podIP).toBe(node.address);
      expect(await logs(pod?.metadata?.name ?? '')).toBe(`on ${node.name}\n`);
    }
  });
});

describe('images', () => {
  it('gives the launcher image its own libvirt folders, qemu.conf and filled capability cache', async () => {
    const script = [
      'grep -c dynamic_ownership /etc/libvirt/qemu.conf',
      'ls /var/cache/libvirt/qemu/capabilities | grep -c xml',
      'touch /var/lib/libvirt/mine && ls /var/lib/libvirt',
      'echo "$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT"',
    ].join('; ');
    await createPod('launcher-image', nodes[0] as TestNode, {
      restartPolicy: 'Never',
      containers: [
        { name: 'main', image: 'ghcr.io/kubevirt-ts/virt-launcher:0.1.0', command: ['sh', '-c', script] },
      ],
    });
    // The first launcher on a node may fill the QEMU capability cache (libvirt's probe, about 10 s).
    const pod = await waitForPod(
      core,
      ns.name,
      'launcher-image',
      (p) => ['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
      {
        timeoutMs: 180_000,
      },
    );
    const out = await logs('launcher-image');
    expect(out).toMatch(/^1\n[1-9]\d*\nmine\n172\.30\.0\.1:6443\n$/);
    expect(pod.status?.phase).toBe('Succeeded');
    // The machine's own libvirt folders stay untouched.
    expect(readdirSync('/var/lib/libvirt')).not.toContain('mine');
  });

  it('reports an image devcluster cannot run as ErrImagePull with a message saying what it runs', async () => {
    await createPod('unknown-image', nodes[0] as TestNode, {
      containers: [{ name: 'main', image: 'registry.example.invalid/nothing:1.0' }],
    });
    const pod = await waitForPod(core, ns.name, 'unknown-image', (p) =>
      ['ErrImagePull', 'ImagePullBackOff'].includes(
        p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? '',
      ),
    );
    const waiting = pod.status?.containerStatuses?.[0]?.state?.waiting;
    expect(waiting?.message).toContain('registry.example.invalid/nothing:1.0 is not available on devcluster');
    expect(waiting?.message).toContain('node:24');
    expect(pod.status?.phase).toBe('Pending');
  });
});

describe('status and lifecycle', () => {
  it('runs init containers in order before the containers and ends Succeeded', async () => {
    await createPod('inits', nodes[0] as TestNode, {
      restartPolicy: 'Never',
      volumes: [{ name: 'work', emptyDir: {} }],
      initContainers: [
        container('first', 'echo one >> /work/order', {
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
        }),
        container('second', 'test -f /work/order && echo two >> /work/order', {
          volumeMounts: [{ name: 'work', mountPath: '/work' }],
        }),
      ],
      containers: [
        container('main', 'cat /work/order', { volumeMounts: [{ name: 'work', mountPath: '/work' }] }),
      ],
    });
    const pod = await waitForPod(core, ns.name, 'inits', phase('Succeeded'));
    expect(await logs('inits', 'main')).toBe('one\ntwo\n');
    expect(pod.status?.initContainerStatuses?.map((s) => s.state?.terminated?.reason)).toEqual([
      'Completed',
      'Completed',
    ]);
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 0,
      reason: 'Completed',
    });
    const conditions = Object.fromEntries((pod.status?.conditions ?? []).map((c) => [c.type, c.status]));
    expect(conditions).toMatchObject({
      Initialized: 'True',
      PodScheduled: 'True',
      Ready: 'False',
      ContainersReady: 'False',
    });
  });

  it('fails a pod whose container exits non-zero under restartPolicy Never, with the exit code', async () => {
    await createPod('fails', nodes[1] as TestNode, {
      restartPolicy: 'Never',
      containers: [container('main', 'echo failing >/dev/termination-log; exit 3')],
    });
    const pod = await waitForPod(core, ns.name, 'fails', phase('Failed'));
    expect(pod.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({
      exitCode: 3,
      reason: 'Error',
      message: 'failing\n',
    });
    expect(pod.status?.containerStatuses?.[0]?.restartCount).toBe(0);
  });

  it('restarts a failed container under OnFailure and counts the restart', async () => {
    await createPod('on-failure', nodes[0] as TestNode, {
      restartPolicy: 'OnFailure',
      volumes: [{ name: 'data', emptyDir: {} }],
      containers: [
        container('main', 'if [ -f /data/ran ]; then echo second run; exit 0; fi; touch /data/ran; exit 1', {
          volumeMounts: [{ name: 'data', mountPath: '/data' }],
        }),
      ],
    });
    const pod = await waitForPod(core, ns.name, 'on-failure', phase('Succeeded'));
    const status = pod.status?.containerStatuses?.[0];
    expect(status?.restartCount).toBe(1);
    expect(status?.lastState?.terminated?.exitCode).toBe(1);
    expect(status?.state?.terminated?.exitCode).toBe(0);
  });

  it('backs off a container that keeps crashing under restartPolicy Always', async () => {
    await createPod('crashloop', nodes[1] as TestNode, {
      containers: [container('main', 'echo crash; exit 2')],
    });
    const pod = await waitForPod(
      core,
      ns.name,
      'crashloop',
      (p) => p.status?.containerStatuses?.[0]?.state?.waiting?.reason === 'CrashLoopBackOff',
      {
        timeoutMs: 30_000,
      },
    );
    const status = pod.status?.containerStatuses?.[0];
    expect(status?.restartCount).toBeGreaterThanOrEqual(1);
    expect(status?.lastState?.terminated?.exitCode).toBe(2);
    expect(pod.status?.phase).toBe('Running');
    expect(await core.readNamespacedPodLog({ name: 'crashloop', namespace: ns.name, previous: true })).toBe(
      'crash\n',
    );
  });

  it('restarts a container whose liveness probe fails', async () => {
    await createPod('unlively', nodes[0] as TestNode, {
      terminationGracePeriodSeconds: 1,
      containers: [
        container('main', 'exec sleep 600', {
          livenessProbe: { httpGet: { path: '/healthz', port: 9 }, periodSeconds: 1, failureThreshold: 2 },
        }),
      ],
    });
    const pod = await waitForPod(
      core,
      ns.name,
      'unlively',
      (p) => (p.status?.containerStatuses?.[0]?.restartCount ?? 0) >= 1,
      {
        timeoutMs: 30_000,
      },
    );
    expect(pod.status?.containerStatuses?.[0]?.lastState?.terminated).toBeDefined();
  });

  it('holds Ready back until the readiness gates are true', async () => {
    await createPod('gated', nodes[1] as TestNode, {
      readinessGates: [{ conditionType: 'example.com/gate' }],
      containers: [container('main', 'exec sleep 600')],
    });
    const waiting = await waitForPod(core, ns.name, 'gated', (p) =>
      Boolean(p.status?.conditions?.some((c) => c.type === 'ContainersReady' && c.status === 'True')),
    );
    expect(waiting.status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ReadinessGatesNotReady',
    });
    await core.patchNamespacedPodStatus(
      {
        name: 'gated',
        namespace: ns.name,
        body: {
          status: {
            conditions: [
              { type: 'example.com/gate', status: 'True', lastTransitionTime: new Date().toISOString() },
            ],
          },
        },
      },
      (await import('@kubernetes/client-node')).setHeaderOptions(
        'Content-Type',
        'application/strategic-merge-patch+json',
      ),
    );
    const ready = await waitForPod(core, ns.name, 'gated', (p) =>
      Boolean(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')),
    );
    expect(ready.status?.conditions?.find((c) => c.type === 'example.com/gate')?.status).toBe('True');
  });
});
