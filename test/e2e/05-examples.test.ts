// Every manifest in examples/ boots as it is: applied with kubectl into a test namespace, each VM started (with
// virtctl when the manifest creates it stopped), every VMI it leads to Running and its guest answering on the
// console; then deleted, and its VMIs and launcher pods gone. Together the examples cover the volume types
// kubevirt-ts supports: containerDisk, kernel boot from a container image, cloud-init NoCloud, emptyDisk, and
// instancetypes with preferences. Two examples at a time: most of an example's time is waiting (pod start, libvirt,
// the console), which overlaps well, while more guests booting at once would crowd two cores.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import {
  REPO_ROOT,
  VM_RUNNING_TIMEOUT_MS,
  ensureStack,
  guestAnswers,
  kubectlOk,
  launcherPods,
  virtctlOk,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';

const ns = useTestNamespace('e2e-examples');
let stack: Stack;

beforeAll(async () => {
  stack = await ensureStack();
}, E2E_HOOK_TIMEOUT_MS);

interface Doc {
  kind: string;
  metadata: { name: string };
  spec?: {
    runStrategy?: string;
    running?: boolean;
    replicas?: number;
    selector?: { matchLabels?: Record<string, string> };
  };
}

const dir = join(REPO_ROOT, 'examples');
const files = readdirSync(dir)
  .filter((f) => f.endsWith('.yaml'))
  .sort();

/** Examples in flight at once (each test waits for a slot, so its timeout covers the wait too). */
const EXAMPLES_AT_ONCE = 2;
let inFlight = 0;
const queue: (() => void)[] = [];

async function inSlot<T>(body: () => Promise<T>): Promise<T> {
  if (inFlight < EXAMPLES_AT_ONCE) inFlight++;
  else await new Promise<void>((resolve) => queue.push(resolve));
  try {
    return await body();
  } finally {
    // Hand the slot to the next waiting example, or free it.
    const next = queue.shift();
    if (next) next();
    else inFlight--;
  }
}

async function bootExample(file: string): Promise<void> {
  const path = join(dir, file);
  const docs = parseAllDocuments(readFileSync(path, 'utf8')).map((d) => d.toJS() as Doc);
  await kubectlOk(stack, ['apply', '-n', ns.name, '-f', path]);
  /** VMI names (or a selector with a count) that must be Running. */
  const expectations: { names: string[]; selector?: string; count?: number } = { names: [] };
  for (const doc of docs) {
    if (doc.kind === 'VirtualMachine') {
      const stopped = doc.spec?.runStrategy === 'Halted' || doc.spec?.running === false;
      if (stopped) await virtctlOk(stack, ['start', doc.metadata.name, '-n', ns.name]);
      expectations.names.push(doc.metadata.name);
    } else if (doc.kind === 'VirtualMachineInstance') {
      expectations.names.push(doc.metadata.name);
    } else if (doc.kind === 'VirtualMachineInstanceReplicaSet') {
      const labels = doc.spec?.selector?.matchLabels ?? {};
      expectations.selector = Object.entries(labels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      expectations.count = doc.spec?.replicas ?? 1;
    }
  }
  /** This example's VMIs: by name, and the replica set's by its selector. */
  const exampleVmis = async () => {
    const named = await Promise.all(expectations.names.map((name) => stack.vms.vmi(ns.name, name)));
    const selected =
      expectations.selector === undefined ? [] : await stack.vms.vmis(ns.name, expectations.selector);
    return [...named.filter((v) => v !== undefined), ...selected];
  };
  await eventually(
    async () => {
      for (const name of expectations.names) {
        if ((await stack.vms.vmi(ns.name, name))?.status?.phase !== 'Running') return false;
      }
      if (expectations.selector !== undefined) {
        const vmis = await stack.vms.vmis(ns.name, expectations.selector);
        if (vmis.filter((v) => v.status?.phase === 'Running').length !== expectations.count) return false;
      }
      return true;
    },
    {
      timeoutMs: VM_RUNNING_TIMEOUT_MS,
      intervalMs: 2_000,
      description: `every VMI of ${file} to be Running`,
    },
  );
  const vmis = await exampleVmis();
  expect(vmis.length).toBe(expectations.names.length + (expectations.count ?? 0));
  for (const vmi of vmis) await guestAnswers(stack, ns.name, vmi.metadata?.name ?? '');
  const uids = vmis.map((v) => v.metadata?.uid ?? '');
  await kubectlOk(stack, ['delete', '-n', ns.name, '-f', path, '--wait=false']);
  await eventually(
    async () => {
      if ((await exampleVmis()).length > 0) return false;
      for (const uid of uids) {
        const pods = await launcherPods(stack, ns.name, uid);
        if (pods.some((p) => p.status?.phase !== 'Succeeded' && p.status?.phase !== 'Failed')) return false;
      }
      return true;
    },
    {
      timeoutMs: 180_000,
      intervalMs: 2_000,
      description: `${file}'s VMIs and launcher pods to be gone`,
    },
  );
}

describe('examples/', { timeout: E2E_TEST_TIMEOUT_MS, concurrent: true }, () => {
  it('has manifests to boot', () => {
    expect(files.length).toBeGreaterThan(0);
  });

  for (const file of files) {
    it(`${file} boots`, () => inSlot(() => bootExample(file)));
  }
});
