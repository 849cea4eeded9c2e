// A node agent that restarts (through the supervisor, as after a crash) finds its running pods again from its
// records: the same container keeps running, nothing is started twice, and the pod can still be stopped.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { restartComponent } from '../src/control.ts';
import {
  devclusterNodes,
  devclusterState,
  eventually,
  onNode,
  running,
  useTestNamespace,
  waitForPod,
  type TestNode,
} from '../src/testing.ts';

const ns = useTestNamespace('node-agent');
let node: TestNode;

beforeAll(async () => {
  [node] = (await devclusterNodes(ns.kc, 1)) as [TestNode];
});

/** Pids of the container's own command (node … MARKER), not of the shell layers that start it. */
function commandPids(marker: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(join('/proc', entry, 'cmdline'), 'utf8').split('\0');
      if (argv.at(-2) === marker || argv.at(-1) === marker) {
        if (!argv.some((a) => a.includes('vitest')) && argv[0]?.endsWith('node')) out.push(Number(entry));
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return out;
}

describe('the node agent', () => {
  it('adopts its running pods after a restart and starts nothing twice', async () => {
    const marker = `survivor-${ns.name}`;
    await ns.core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'survivor' },
        spec: {
          ...onNode(node.name),
          terminationGracePeriodSeconds: 2,
          containers: [
            {
              name: 'web',
              image: 'node:24',
              command: [
                'node',
                '-e',
                `require('http').createServer((q, s) => s.end('alive')).listen(8080)`,
                marker,
              ],
              readinessProbe: { httpGet: { path: '/', port: 8080 }, periodSeconds: 1 },
            },
          ],
        },
      },
    });
    const before = await waitForPod(ns.core, ns.name, 'survivor', (p) =>
      Boolean(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')),
    );
    const pidsBefore = commandPids(marker);
    expect(pidsBefore).toHaveLength(1);

    const state = await devclusterState();
    await restartComponent(state.controlSocket, node.name);

    // The restarted agent has synced the pod: Ready again (readiness is probed anew), same container.
    const after = await waitForPod(
      ns.core,
      ns.name,
      'survivor',
      (p) =>
        Boolean(p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')) && running(p),
    );
    expect(after.status?.containerStatuses?.[0]?.containerID).toBe(
      before.status?.containerStatuses?.[0]?.containerID,
    );
    expect(after.status?.containerStatuses?.[0]?.restartCount).toBe(0);
    expect(after.status?.podIP).toBe(before.status?.podIP);
    expect(commandPids(marker)).toEqual(pidsBefore);
    expect(await (await fetch(`http://${after.status?.podIP}:8080/`)).text()).toBe('alive');

    // And it still stops what it adopted.
    await ns.core.deleteNamespacedPod({ name: 'survivor', namespace: ns.name });
    await eventually(() => commandPids(marker).length === 0, {
      timeoutMs: 2_000 + 15_000,
      description: 'the adopted process to stop',
    });
  });
});
