// Leader election with two virt-controller replicas as real processes (issue 8, item 5): only the leader
// reconciles, /readyz says which replica leads, and killing the leader (SIGKILL, mid-reconcile) hands over to the
// standby without a duplicate VMI or pod.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { devclusterState, eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import type { VirtualMachine, VirtualMachineInstanceReplicaSet } from '@kubevirt-ts/schema';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { integration, needsCluster } from './support/cluster.ts';
import { Api, prepareCluster, smallVMISpec } from './support/harness.ts';

const script = fileURLToPath(new URL('./support/controller-process.ts', import.meta.url));

interface Replica {
  identity: string;
  child: ChildProcess;
  lines: Record<string, unknown>[];
  port: Promise<number>;
  exited: Promise<number | null>;
}

describe.skipIf(!integration)(`leader election between two virt-controller processes ${needsCluster}`, () => {
  const ns = useTestNamespace('ctrl-leader');
  let api: Api;
  let kubeconfig: string;
  const replicas: Replica[] = [];

  beforeAll(async () => {
    await prepareCluster(ns);
    api = new Api(ns.kc, ns.name);
    const state = await devclusterState();
    kubeconfig = state.kubeconfigs.services['virt-controller']!;
  });

  afterAll(() => {
    for (const r of replicas) r.child.kill('SIGKILL');
  });

  function start(identity: string): Replica {
    const child = spawn(
      process.execPath,
      [
        '--conditions=@kubevirt-ts/source',
        script,
        `--kubeconfig=${kubeconfig}`,
        `--namespace=${ns.name}`,
        `--identity=${identity}`,
        '--health-bind-address=127.0.0.1',
        '--log-level=info',
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const lines: Record<string, unknown>[] = [];
    const port = new Promise<number>((resolve) => {
      createInterface({ input: child.stdout }).on('line', (line) => {
        try {
          const entry = JSON.parse(line) as Record<string, unknown>;
          lines.push(entry);
          if (typeof entry.port === 'number') resolve(entry.port);
        } catch {
          lines.push({ msg: line });
        }
      });
    });
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    const r = { identity, child, lines, port, exited };
    replicas.push(r);
    return r;
  }

  const leading = (r: Replica) => r.lines.some((l) => l.msg === 'caches synced; controllers running');
  const readyz = async (r: Replica) =>
    (await fetch(`http://127.0.0.1:${await r.port}/readyz?verbose`)).text();

  it('has one leader that says so on /readyz; killing it mid-reconcile hands over without duplicates', async () => {
    const a = start('replica-a');
    const b = start('replica-b');
    const leader = await eventually(() => [a, b].find(leading), {
      timeoutMs: 60_000,
      description: 'a leader with running controllers',
    });
    const standby = leader === a ? b : a;
    expect(await readyz(leader)).toContain(`[+]leader-election ok: leader (${leader.identity})`);
    expect(
      await eventually(
        async () => {
          const text = await readyz(standby);
          return text.includes(`standby; leader is ${leader.identity}`) ? text : undefined;
        },
        { description: 'the standby to name the leader on /readyz' },
      ),
    ).toContain('readyz check passed');
    expect(leading(standby)).toBe(false);

    // Work for the leader: a replica set of 5 (created at once, in parallel) and a VM.
    await api.create<VirtualMachineInstanceReplicaSet>('virtualmachineinstancereplicasets', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachineInstanceReplicaSet',
      metadata: { name: 'pool' },
      spec: {
        replicas: 5,
        selector: { matchLabels: { app: 'pool' } },
        template: {
          metadata: { labels: { app: 'pool' } },
          spec: smallVMISpec({ nodeSelector: { 'no-node': 'x' } }),
        },
      },
    });
    await api.create<VirtualMachine>('virtualmachines', {
      apiVersion: 'kubevirt.io/v1',
      kind: 'VirtualMachine',
      metadata: { name: 'single' },
      spec: { runStrategy: 'Always', template: { spec: smallVMISpec({ nodeSelector: { 'no-node': 'x' } }) } },
    });
    // Kill the leader as soon as it is in the middle of it: some VMIs exist, not every pod yet.
    await eventually(async () => (await api.vmis()).length > 0, {
      intervalMs: 20,
      description: 'the leader to start creating VMIs',
    });
    leader.child.kill('SIGKILL');
    expect(await leader.exited).toBe(null);
    const pending = { vmis: (await api.vmis()).length, pods: (await api.pods()).length };

    await eventually(() => leading(standby), {
      timeoutMs: 60_000,
      description: 'the standby to take over (lease 6 s)',
    });
    const converged = async () => {
      const vmis = await api.vmis();
      const pods = await api.pods();
      const poolVMIs = vmis.filter((v) => v.metadata?.labels?.app === 'pool');
      const single = vmis.filter((v) => v.metadata?.name === 'single');
      const perVMI = vmis.map(
        (v) => pods.filter((p) => p.metadata?.labels?.['kubevirt.io/created-by'] === v.metadata?.uid).length,
      );
      return { pool: poolVMIs.length, single: single.length, pods: pods.length, perVMI };
    };
    await eventually(
      async () => {
        const c = await converged();
        return c.pool === 5 && c.single === 1 && c.pods === 6 && c.perVMI.every((n) => n === 1);
      },
      { timeoutMs: 90_000, description: 'exactly 5 + 1 VMIs with one pod each' },
    );
    // And it stays that way: nobody creates a duplicate later.
    for (let i = 0; i < 10; i++) {
      await new Promise((r) => setTimeout(r, 500));
      expect(await converged()).toEqual({ pool: 5, single: 1, pods: 6, perVMI: [1, 1, 1, 1, 1, 1] });
    }
    console.info(
      `killed the leader with ${pending.vmis} VMIs and ${pending.pods} pods created; the standby finished the rest`,
    );
    expect(await readyz(standby)).toContain(
      `[+]leader-election ok: leader (${standby.identity}); controllers running`,
    );
    standby.child.kill('SIGTERM');
    expect(await standby.exited).toBe(0);
  });
});
