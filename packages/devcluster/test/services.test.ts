// Services on devcluster: each node's real kube-proxy carries ClusterIPs and NodePorts, and CoreDNS behind the
// kube-dns Service answers the cluster domain, which pods use through the resolv.conf their node agent writes.
// Runs under `devcluster test` (make integration), which brings up the control plane and two nodes; the test
// runner itself sits in the cluster's network namespace.
import { Resolver } from 'node:dns/promises';
import type { V1Pod } from '@kubernetes/client-node';
import { beforeAll, describe, expect, it } from 'vitest';
import { NETWORK, PORTS } from '../src/layout.ts';
import {
  devclusterNodes,
  eventually,
  onNode,
  useTestNamespace,
  waitForPod,
  type TestNode,
} from '../src/testing.ts';

const ns = useTestNamespace('services');
let nodes: TestNode[];

const SERVER_LABELS = { app: 'echo' };
const SERVER = `require('http').createServer((q, s) => s.end('hello from ' + require('os').hostname())).listen(8080)`;

/** Fetches each URL in TARGETS (retrying while kube-proxy and CoreDNS catch up), prints what answered. */
const CLIENT = `
const targets = process.env.TARGETS.split(' ');
(async () => {
  for (const target of targets) {
    let last;
    for (let i = 0; i < 60; i++) {
      try {
        const res = await fetch('http://' + target + '/', { signal: AbortSignal.timeout(2000) });
        console.log('OK ' + target + ' ' + (await res.text()));
        last = undefined;
        break;
      } catch (err) {
        last = err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    if (last) { console.log('FAIL ' + target + ' ' + (last.cause?.code ?? last.message)); process.exitCode = 1; }
  }
})();`;

const ended = (pod: V1Pod) => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
const ready = (pod: V1Pod) =>
  pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

async function podLog(name: string): Promise<string> {
  return ns.core.readNamespacedPodLog({ name, namespace: ns.name });
}

let clusterIp: string;
let nodePort: number;

beforeAll(async () => {
  nodes = await devclusterNodes(ns.kc, 2);
  await ns.core.createNamespacedPod({
    namespace: ns.name,
    body: {
      metadata: { name: 'echo-server', labels: SERVER_LABELS },
      spec: {
        ...onNode(nodes[0]!.name),
        terminationGracePeriodSeconds: 2,
        containers: [
          {
            name: 'server',
            image: 'node:24',
            command: ['node', '-e', SERVER],
            ports: [{ containerPort: 8080 }],
            readinessProbe: { tcpSocket: { port: 8080 }, periodSeconds: 1 },
          },
        ],
      },
    },
  });
  const service = await ns.core.createNamespacedService({
    namespace: ns.name,
    body: {
      metadata: { name: 'echo' },
      spec: { selector: SERVER_LABELS, ports: [{ name: 'http', port: 80, targetPort: 8080 }] },
    },
  });
  const nodePortService = await ns.core.createNamespacedService({
    namespace: ns.name,
    body: {
      metadata: { name: 'echo-np' },
      spec: {
        type: 'NodePort',
        selector: SERVER_LABELS,
        ports: [{ name: 'http', port: 80, targetPort: 8080 }],
      },
    },
  });
  clusterIp = service.spec?.clusterIP ?? '';
  nodePort = nodePortService.spec?.ports?.[0]?.nodePort ?? 0;
  await waitForPod(ns.core, ns.name, 'echo-server', ready, {
    timeoutMs: 120_000,
    description: 'the echo server to be Ready',
  });
}, 180_000);

describe('Services through kube-proxy and CoreDNS', () => {
  it('runs a kube-proxy on every node, healthy on the node’s address', async () => {
    for (const node of nodes) {
      const url = `http://${node.address}:${PORTS.kubeProxyHealthz}/healthz`;
      const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
      expect(res.status, url).toBe(200);
      expect(await res.json()).toMatchObject({ healthy: true, nodeEligible: true });
    }
  });

  it('puts kube-dns at the service range’s 10th address', async () => {
    const dns = await ns.core.readNamespacedService({ name: 'kube-dns', namespace: 'kube-system' });
    expect(dns.spec?.clusterIP).toBe(NETWORK.clusterDnsIp);
    expect(dns.spec?.ports?.map((p) => `${p.port}/${p.protocol}`).sort()).toEqual(['53/TCP', '53/UDP']);
  });

  it('reaches a server on node 1 from pods on both nodes by ClusterIP, full and short DNS name', async () => {
    const fqdn = `echo.${ns.name}.svc.${NETWORK.clusterDomain}`;
    const targets = [clusterIp, fqdn, 'echo'];
    const clients = nodes.slice(0, 2).map((node, i) => ({ name: `client-${i + 1}`, node }));
    for (const client of clients) {
      await ns.core.createNamespacedPod({
        namespace: ns.name,
        body: {
          metadata: { name: client.name },
          spec: {
            ...onNode(client.node.name),
            restartPolicy: 'Never',
            containers: [
              {
                name: 'client',
                image: 'node:24',
                command: ['sh', '-c', 'cat /etc/resolv.conf && exec node -e "$CLIENT"'],
                env: [
                  { name: 'TARGETS', value: targets.join(' ') },
                  { name: 'CLIENT', value: CLIENT },
                ],
              },
            ],
          },
        },
      });
    }
    for (const client of clients) {
      const pod = await waitForPod(ns.core, ns.name, client.name, ended, {
        timeoutMs: 120_000,
        description: `${client.name} on ${client.node.name} to finish`,
      });
      const log = await podLog(client.name);
      expect(log, `${client.name} on ${client.node.name}`).toContain(`nameserver ${NETWORK.clusterDnsIp}`);
      expect(log).toContain(
        `search ${ns.name}.svc.${NETWORK.clusterDomain} svc.${NETWORK.clusterDomain} ${NETWORK.clusterDomain}`,
      );
      expect(log).toContain('options ndots:5');
      for (const target of targets) expect(log).toContain(`OK ${target} hello from echo-server`);
      expect(pod.status?.phase, log).toBe('Succeeded');
    }
  }, 300_000);

  it('answers the cluster domain at the kube-dns address, and only for names that exist', async () => {
    const resolver = new Resolver({ timeout: 2_000, tries: 2 });
    resolver.setServers([NETWORK.clusterDnsIp]);
    const fqdn = `echo.${ns.name}.svc.${NETWORK.clusterDomain}`;
    const addresses = await eventually(() => resolver.resolve4(fqdn), {
      timeoutMs: 60_000,
      description: `${fqdn} to resolve through ${NETWORK.clusterDnsIp}`,
    });
    expect(addresses).toEqual([clusterIp]);
    await expect(resolver.resolve4(`missing.${ns.name}.svc.${NETWORK.clusterDomain}`)).rejects.toMatchObject({
      code: 'ENOTFOUND',
    });
  });

  it('serves a NodePort on every node’s address, from the cluster namespace', async () => {
    expect(nodePort).toBeGreaterThan(0);
    for (const node of nodes.slice(0, 2)) {
      const url = `http://${node.address}:${nodePort}/`;
      const body = await eventually(
        async () => (await fetch(url, { signal: AbortSignal.timeout(2_000) })).text(),
        { timeoutMs: 60_000, description: `${url} to answer` },
      );
      expect(body).toBe('hello from echo-server');
    }
  });
});
