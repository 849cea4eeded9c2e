// Benchmark of one launcher running the test guest: time from launcher start to its ready socket, time from Sync
// to the domain Running (with libvirt's QEMU capability cache filled, and empty beside it), and the resident
// memory of the launcher's own processes (node + libvirtd + virtlogd) beside QEMU's. Runs the built launcher
// (dist/, as the image does); `pnpm bench` builds it first. Needs root (each launcher runs in a pod-like sandbox).
// Usage: pnpm --filter @kubevirt-ts/launcher bench [-- --runs N]
import { randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureCapabilityCache } from '../src/capabilities-cache.ts';
import { LauncherProcess, SerialConsole, qemuPids, testGuest, testVMI, vmiJson } from '../test/harness.ts';

const runsFlag = process.argv.indexOf('--runs');
const RUNS = runsFlag >= 0 ? Number(process.argv[runsFlag + 1]) : 5;
const MiB = 1024 * 1024;

interface Run {
  readyMs: number;
  syncToRunningMs: number;
}

interface Resident {
  /** Resident set: every page the process has in memory, shared libraries included. */
  rss: number;
  /** Proportional set: shared pages divided among the processes sharing them (what a node really pays). */
  pss: number;
}

async function resident(pid: number): Promise<Resident> {
  const rollup = await readFile(`/proc/${pid}/smaps_rollup`, 'utf8');
  const field = (name: string) => {
    const kb = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(rollup)?.[1];
    if (kb === undefined) throw new Error(`no ${name} for pid ${pid}`);
    return Number(kb) * 1024;
  };
  return { rss: field('Rss'), pss: field('Pss') };
}

/** The launcher's node process: the sandbox's shell execs node, so it keeps the spawned pid. */
function daemonPid(name: string, after: LauncherProcess): number {
  const line = after.logs.find((l) => l.daemon === name && typeof l.pid === 'number');
  if (line) return line.pid as number;
  throw new Error(`the launcher did not log the pid of ${name}`);
}

async function oneRun(
  guest: Awaited<ReturnType<typeof testGuest>>,
  seed: boolean,
  measureMemory: boolean,
  nodeOptions: string[] = [],
) {
  const uid = randomUUID();
  const name = `bench-${uid.slice(0, 8)}`;
  const launcher = await LauncherProcess.start({
    name,
    uid,
    kernelBoot: guest.kernelBootImage,
    seedCapabilities: seed,
    built: true,
    nodeOptions,
  });
  try {
    const { client, readyMs } = await launcher.ready(120_000);
    const vmi = testVMI({ name, uid, guest, boot: 'kernel', userData: `#cloud-config\nmarker: ${name}\n` });
    const synced = performance.now();
    const r = await client.sync({ vmiJson: vmiJson(vmi) }, { timeoutMs: 120_000 });
    if (!r.success) throw new Error(`Sync failed: ${r.message}`);
    await launcher.waitForDomain((d) => d?.status.status === 'Running', 120_000);
    const syncToRunningMs = performance.now() - synced;
    let memory: Record<string, Resident> | undefined;
    if (measureMemory) {
      const serial = await SerialConsole.open(join(launcher.dirs.sockets, 'serial0'));
      await serial.waitFor('kubevirt-ts-guest: ready', 120_000);
      serial.close();
      // Let the guest agent connect and the launcher settle (a GetGuestInfo and a GetStats, as the handler would).
      await client.getGuestInfo({});
      await client.getStats({});
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      const [qemu] = await qemuPids(launcher.domainName);
      if (qemu === undefined) throw new Error('no QEMU process found for the benchmark guest');
      memory = {
        node: await resident(launcher.child.pid as number),
        libvirtd: await resident(daemonPid('libvirtd', launcher)),
        virtlogd: await resident(daemonPid('virtlogd', launcher)),
        qemu: await resident(qemu),
      };
    }
    return { run: { readyMs, syncToRunningMs } satisfies Run, memory };
  } finally {
    await launcher.dispose();
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

function ms(value: number): string {
  return value >= 1000 ? `${(value / 1000).toFixed(2)} s` : `${value.toFixed(0)} ms`;
}

function table(header: string[], rows: string[][]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i] as number)).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0)
    throw new Error('the benchmark runs launchers in mount namespaces: run it as root');
  await readdir(new URL('../dist', import.meta.url)).catch(() => {
    throw new Error(
      'packages/launcher/dist is missing: run `pnpm --filter @kubevirt-ts/launcher... build` (pnpm bench does)',
    );
  });
  const guest = await testGuest();
  await ensureCapabilityCache();
  process.stderr.write(`launcher bench: ${RUNS} runs with a filled capability cache, 1 with an empty one\n`);

  // A first run warms the page cache (QEMU, libvirt, node modules) so the runs measured compare like with like.
  await oneRun(guest, true, false);
  const filled: Run[] = [];
  let memory: Record<string, Resident> | undefined;
  for (let i = 0; i < RUNS; i++) {
    const result = await oneRun(guest, true, i === RUNS - 1);
    filled.push(result.run);
    memory ??= result.memory;
    process.stderr.write(
      `  filled cache run ${i + 1}: ready ${ms(result.run.readyMs)}, Sync→Running ${ms(result.run.syncToRunningMs)}\n`,
    );
  }
  const empty = (await oneRun(guest, false, false)).run;
  process.stderr.write(
    `  empty cache run: ready ${ms(empty.readyMs)}, Sync→Running ${ms(empty.syncToRunningMs)}\n`,
  );
  // V8's lite mode (no optimizing compiler, smaller heap) trades speed the launcher does not need for memory.
  const lite = (await oneRun(guest, true, true, ['--lite-mode'])).memory;
  process.stderr.write('  memory run with node --lite-mode done\n');

  const ready = median(filled.map((r) => r.readyMs));
  const sync = median(filled.map((r) => r.syncToRunningMs));
  const out: string[] = [];
  out.push(`virt-launcher, one test guest (1 vCPU, 256 MiB, software emulation); medians of ${RUNS} runs`);
  out.push('');
  out.push(
    table(
      ['measurement', 'capability cache filled', 'capability cache empty', 'target'],
      [
        ['launcher start → launcher-sock', ms(ready), ms(empty.readyMs), ''],
        ['Sync → domain Running', ms(sync), ms(empty.syncToRunningMs), ''],
        ['together', ms(ready + sync), ms(empty.readyMs + empty.syncToRunningMs), '< 1 s (filled)'],
      ],
    ),
  );
  if (memory && lite) {
    const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
    const row = (label: string, r: Resident, note = '') => [label, mib(r.rss), mib(r.pss), note];
    const sum = (...rs: Resident[]) => ({
      rss: rs.reduce((a, r) => a + r.rss, 0),
      pss: rs.reduce((a, r) => a + r.pss, 0),
    });
    const { node, libvirtd, virtlogd, qemu } = memory as Record<
      'node' | 'libvirtd' | 'virtlogd' | 'qemu',
      Resident
    >;
    const liteNode = lite.node as Resident;
    out.push('');
    out.push(
      table(
        ['process, guest booted', 'RSS', 'PSS', 'KubeVirt (estimate) / target'],
        [
          row('node (virt-launcher)', node),
          row('node (virt-launcher) with --lite-mode', liteNode),
          row('libvirtd', libvirtd),
          row('virtlogd', virtlogd),
          row(
            'management processes together',
            sum(node, libvirtd, virtlogd),
            '190 MiB; target < 150, aim 100',
          ),
          row('  the same with node --lite-mode', sum(liteNode, libvirtd, virtlogd)),
          row('QEMU (includes the TCG translation cache)', qemu, '50 MiB (under KVM)'),
        ],
      ),
    );
    out.push(
      'RSS counts shared pages (node binary, libvirt libraries) in full; PSS divides them among the processes sharing them.',
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

await main();
