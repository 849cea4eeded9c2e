// Benchmark of one launcher running the test guest: time from launcher start to its ready socket, time from Sync
// to the domain Running (with libvirt's QEMU capability cache filled, and empty beside it), and the resident
// memory of the launcher's own processes (node + libvirtd + virtlogd) beside QEMU's, for plain `node` and for the
// node flags the image starts the launcher with (image/node-flags) side by side, plus any `--compare "FLAGS"`.
// Runs the built launcher (dist/, as the image does); `pnpm bench` builds it first. Needs root (each launcher runs
// in a pod-like sandbox).
// Usage: pnpm --filter @kubevirt-ts/launcher bench [--runs N] [--compare "--max-semi-space-size=1" …]
import { randomUUID } from 'node:crypto';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { ensureCapabilityCache } from '../src/capabilities-cache.ts';
import {
  LauncherProcess,
  SerialConsole,
  imageNodeFlags,
  qemuPids,
  testGuest,
  testVMI,
  vmiJson,
} from '../test/harness.ts';

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

/** A way of starting the launcher's node process, compared side by side in one run. */
interface Config {
  label: string;
  flags: string[];
}

/** `--compare "FLAGS"` (repeatable): more node flag sets to measure beside plain node and the image's flags. */
async function configs(): Promise<Config[]> {
  const out: Config[] = [{ label: 'plain node', flags: [] }];
  const image = await imageNodeFlags();
  if (image.length > 0) out.push({ label: `image: ${image.join(' ')}`, flags: image });
  process.argv.forEach((arg, i) => {
    if (arg !== '--compare') return;
    const flags = (process.argv[i + 1] ?? '').split(/\s+/).filter(Boolean);
    if (!out.some((c) => c.flags.join(' ') === flags.join(' ')))
      out.push({ label: flags.join(' ') || 'plain node', flags });
  });
  return out;
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
  const compared = await configs();
  const imageFlags = compared[1]?.label.startsWith('image:') ? compared[1].flags : [];
  process.stderr.write(
    `launcher bench: ${RUNS} runs of each of ${compared.map((c) => c.label).join(', ')} (filled capability ` +
      'cache, interleaved), and 1 with an empty cache\n',
  );

  // A first run warms the page cache (QEMU, libvirt, node modules) so the runs measured compare like with like.
  await oneRun(guest, true, false, imageFlags);
  const runs = compared.map((): Run[] => []);
  const memory = compared.map((): Record<string, Resident> | undefined => undefined);
  // Interleaved, so that whatever else the machine does in the meantime weighs on every configuration alike.
  for (let i = 0; i < RUNS; i++) {
    for (const [c, config] of compared.entries()) {
      const result = await oneRun(guest, true, i === RUNS - 1, config.flags);
      runs[c]?.push(result.run);
      memory[c] ??= result.memory;
      process.stderr.write(
        `  ${config.label}, run ${i + 1}: ready ${ms(result.run.readyMs)}, Sync→Running ${ms(result.run.syncToRunningMs)}\n`,
      );
    }
  }
  const empty = (await oneRun(guest, false, false, imageFlags)).run;
  process.stderr.write(
    `  empty cache run: ready ${ms(empty.readyMs)}, Sync→Running ${ms(empty.syncToRunningMs)}\n`,
  );

  const mib = (b: number) => `${(b / MiB).toFixed(1)} MiB`;
  const ready = (c: number) => median((runs[c] ?? []).map((r) => r.readyMs));
  const sync = (c: number) => median((runs[c] ?? []).map((r) => r.syncToRunningMs));
  const out: string[] = [];
  out.push(`virt-launcher, one test guest (1 vCPU, 256 MiB, software emulation); medians of ${RUNS} runs`);
  out.push('');
  out.push(
    table(
      ['node flags', 'start → launcher-sock', 'Sync → Running', 'together', 'target'],
      [
        ...compared.map((config, c) => [
          config.label,
          ms(ready(c)),
          ms(sync(c)),
          ms(ready(c) + sync(c)),
          c === 0 ? '< 1 s (filled cache)' : '',
        ]),
        [
          `${imageFlags.length > 0 ? 'image flags' : 'plain node'}, capability cache empty (1 run)`,
          ms(empty.readyMs),
          ms(empty.syncToRunningMs),
          ms(empty.readyMs + empty.syncToRunningMs),
          '',
        ],
      ],
    ),
  );
  const sum = (...rs: Resident[]) => ({
    rss: rs.reduce((a, r) => a + r.rss, 0),
    pss: rs.reduce((a, r) => a + r.pss, 0),
  });
  const rows: string[][] = [];
  let daemons: Resident | undefined;
  let qemu: Resident | undefined;
  for (const [c, config] of compared.entries()) {
    const m = memory[c] as Record<'node' | 'libvirtd' | 'virtlogd' | 'qemu', Resident> | undefined;
    if (!m) continue;
    daemons ??= sum(m.libvirtd, m.virtlogd);
    qemu ??= m.qemu;
    const all = sum(m.node, m.libvirtd, m.virtlogd);
    rows.push([
      `virt-launcher's node (${config.label})`,
      mib(m.node.rss),
      mib(m.node.pss),
      `${mib(all.rss)} / ${mib(all.pss)}`,
    ]);
  }
  if (daemons && qemu) {
    out.push('');
    out.push(
      table(
        ['process, guest booted', 'RSS', 'PSS', 'management together RSS / PSS (+ libvirtd, virtlogd)'],
        [
          ...rows,
          ['libvirtd + virtlogd', mib(daemons.rss), mib(daemons.pss), ''],
          ['QEMU (includes the TCG translation cache)', mib(qemu.rss), mib(qemu.pss), 'apart'],
        ],
      ),
    );
    out.push(
      'Targets for the management processes: KubeVirt estimates 190 MiB; ours < 150 MiB, aim 100 MiB. RSS counts ' +
        'shared pages (node binary, libvirt libraries) in full; PSS divides them among the processes sharing them.',
    );
  }
  process.stdout.write(out.join('\n') + '\n');
}

await main();
