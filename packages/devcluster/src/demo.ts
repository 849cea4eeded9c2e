// `make demo` (devcluster demo): the whole stack on this machine, the way a user meets it on a real cluster. It
// brings devcluster up with two nodes, puts the test guest into the nodes' image store, `helm install`s the chart
// (useEmulation=true: the services run as pods on the nodes, from this working tree's source), applies
// examples/vm-demo.yaml, says what it waits for until the VM runs, shows the VM's IP (status.interfaces, as
// `kubectl get vmi` does) and the guest's console with the address the guest took by DHCP, has a client pod fetch the
// guest's web page from that IP, and prints the next commands and how long each step took. Where a piece of the
// stack is missing or failing it stops and says which, with the last state it saw; it never shows a console it did
// not read nor claims a network it did not check.
import { readFile, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { ApiException, CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { binaryCache, pinnedVersions } from './binaries.ts';
import { loadKubeConfig, up } from './cluster.ts';
import { DevclusterError, errorMessage } from './errors.ts';
import {
  clientPod,
  clientResult,
  describeGuestNetwork,
  GUEST_HTTP_PORT,
  guestNetwork,
  httpUrl,
  reachCommands,
  vmiIP,
} from './demo-network.ts';
import { defaultCacheRoot } from './layout.ts';
import { ensureTestGuestImage } from './node/images.ts';
import { repoRoot as workingTree } from './node/setup.ts';
import {
  chartDir,
  installChart,
  waitForStack,
  CHART_NAMESPACE,
  CHART_RELEASE,
  TEST_GUEST_IMAGE,
} from './stack/chart.ts';
import { ConsoleSession, consoleLines, readSerialLog, serialLogFile, virtctlMain } from './stack/console.ts';
import { VmClient, waitForVmiRunning, type VmiView } from './stack/vms.ts';
import type { ClusterState } from './spec.ts';

/** The demo VM: examples/vm-demo.yaml. */
export const DEMO_VM = {
  file: join('examples', 'vm-demo.yaml'),
  namespace: 'default',
  name: 'demo-vm',
} as const;
/** What the demo VM's user-data makes the guest print (examples/vm-demo.yaml's `marker:`). */
export const DEMO_MARKER = 'hello from the kubevirt-ts demo';
/** The test guest's last boot line (packages/devcluster/src/guest/README.md). */
export const GUEST_READY_LINE = 'kubevirt-ts-guest: ready';
export const DEMO_NODES = 2;
/** Set by the Makefile before `make setup`, so a cold run's time includes building the control plane. */
export const DEMO_STARTED_ENV = 'KUBEVIRT_TS_DEMO_STARTED';

const STACK_TIMEOUT_MS = 300_000;
const VM_TIMEOUT_MS = 300_000;
const CONSOLE_TIMEOUT_MS = 120_000;
/** virt-handler reports status.interfaces once the domain runs; the e2e network test allows it 60 s. */
const IP_TIMEOUT_MS = 120_000;
/** The client pod retries for about a minute (demo-network.ts); this covers its start and those retries. */
const CLIENT_TIMEOUT_MS = 180_000;
/** The pod that fetches the guest's page in step 7; deleted once it reached the guest. */
const CLIENT_POD = `${DEMO_VM.name}-client`;
/** Boot-log lines shown from the serial log (the kernel's messages before them are many and alike). */
const BOOT_TAIL_LINES = 20;
/** A kernel log line on the console: `[    3.436363] …`. */
const KERNEL_LINE = /^\[\s*\d+\.\d+\]/;

export interface DemoOptions {
  /** Lines for the user (stderr in the CLI). */
  say: (line: string) => void;
  nodes?: number;
  repoRoot?: string;
  cacheRoot?: string;
}

interface Step {
  name: string;
  ms: number;
}

/** Cold and warm demo times of this machine, kept beside the binary cache (they outlive `make demo-down`). */
interface DemoTimes {
  cold?: { totalMs: number; at: string };
  warm?: { totalMs: number; at: string };
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

async function run(command: string, args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(command, args, { env, timeout: 120_000, maxBuffer: 8 * 1024 * 1024 }, (err, stdout, stderr) =>
      err
        ? reject(
            new DevclusterError(
              `${command} ${args.join(' ')} failed: ${(stderr || errorMessage(err)).trim()}`,
            ),
          )
        : resolve(stdout),
    );
  });
}

async function waitForNodes(kc: KubeConfig, count: number, say: (line: string) => void): Promise<string[]> {
  const core = kc.makeApiClient(CoreV1Api);
  const deadline = Date.now() + 120_000;
  let last = '';
  for (;;) {
    const nodes = (await core.listNode().catch(() => ({ items: [] }))).items;
    const ready = nodes.filter((n) =>
      n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'),
    );
    if (ready.length >= count) return ready.map((n) => n.metadata?.name ?? '?');
    const line = `waiting for ${count} Ready nodes (now ${ready.length}: ${ready.map((n) => n.metadata?.name).join(', ') || 'none'})`;
    if (line !== last) say(`  ${line}`);
    last = line;
    if (Date.now() > deadline) {
      throw new DevclusterError(
        `the devcluster nodes did not become Ready: ${line}`,
        'pnpm devcluster logs dc-node-1',
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** How a user runs virtctl from this working tree (a root script when there is one). */
async function virtctlCommand(repo: string): Promise<string> {
  const pkg = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as {
    scripts?: Record<string, string>;
  };
  return pkg.scripts?.virtctl
    ? 'pnpm -s virtctl'
    : 'node --conditions=@kubevirt-ts/source packages/virtctl/src/main.ts';
}

interface ConsoleShown {
  via: 'virtctl console' | 'serial log';
  /** Every console line the demo read (and showed, the kernel's alike boot messages counted rather than shown). */
  lines: string[];
}

/**
 * Shows the guest's console until the marker and the ready line: through `virtctl console` when virtctl exists,
 * else from the launcher's serial log on the node. Returns which one it used and the lines it read.
 */
async function showConsole(
  state: ClusterState,
  repo: string,
  vmi: VmiView,
  pod: { uid: string; node: string },
  say: (line: string) => void,
): Promise<ConsoleShown> {
  const kubeconfig = state.kubeconfigs.adminHost;
  const serialLog = serialLogFile(state.stateDir, pod.node, pod.uid);
  // The kernel's boot messages are hundreds of alike lines: the first one is shown, the rest counted.
  let kernelLines = 0;
  const print = (lines: string[]) => {
    for (const line of lines) {
      if (KERNEL_LINE.test(line)) {
        if (kernelLines++ === 0) say(`  │ ${line}`);
        continue;
      }
      if (kernelLines > 1) say(`  │ … ${kernelLines - 1} more kernel boot messages …`);
      kernelLines = kernelLines > 0 ? 1 : 0;
      say(`  │ ${line}`);
    }
  };
  if (virtctlMain(repo)) {
    say(
      `console of ${DEMO_VM.name} through \`virtctl console\` (API server → virt-api → virt-handler → launcher):`,
    );
    let pending = '';
    const session = ConsoleSession.attach(repo, DEMO_VM.namespace, DEMO_VM.name, {
      kubeconfig,
      onData: (text) => {
        const lines = consoleLines(pending + text);
        pending = lines.pop() ?? '';
        print(lines);
      },
    });
    if (session) {
      try {
        // The guest may have printed the marker before virtctl attached; Enter gets a fresh prompt either way.
        const booted = (await readSerialLog(serialLog)).includes(GUEST_READY_LINE);
        if (!booted) await session.waitFor(GUEST_READY_LINE, CONSOLE_TIMEOUT_MS);
        session.write('\r');
        const from = session.text.length;
        session.write('echo "typed into the console: $(uname -sr), $(hostname)"\r');
        await session.waitFor(/typed into the console: Linux/, 30_000, from);
        await new Promise((resolve) => setTimeout(resolve, 300));
        print(consoleLines(pending));
        pending = '';
        const lines = consoleLines(session.text);
        if (booted) {
          say(
            `(the guest had booted before virtctl attached; its boot lines, from the serial log on ${pod.node}:)`,
          );
          const log = await readSerialLog(serialLog);
          print(bootLines(log));
          lines.unshift(...consoleLines(log));
        }
        return { via: 'virtctl console', lines };
      } catch (err) {
        say(`virtctl console did not work: ${errorMessage(err)}`);
        say('falling back to the serial log on the node');
      } finally {
        await session.close();
      }
    }
  } else {
    say('virtctl is not there yet (packages/virtctl/src/main.ts); showing the serial log instead');
  }
  say(
    `console of ${DEMO_VM.name} from the launcher's serial log on ${pod.node} (${serialLog}; this bypasses virt-api):`,
  );
  const deadline = Date.now() + CONSOLE_TIMEOUT_MS;
  let text = '';
  while (!text.includes(GUEST_READY_LINE)) {
    if (Date.now() > deadline) {
      print(consoleLines(text).slice(-40));
      throw new DevclusterError(
        `the guest did not print "${GUEST_READY_LINE}" within ${CONSOLE_TIMEOUT_MS / 1000} s (VMI ${vmi.status?.phase})`,
        `the serial log is ${serialLog}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
    text = await readSerialLog(serialLog);
  }
  print(bootLines(text));
  return { via: 'serial log', lines: consoleLines(text) };
}

/** Waits until virt-handler reports the VM's IP in status.interfaces, which is what `kubectl get vmi` shows. */
async function waitForVmIP(
  vms: VmClient,
  say: (line: string) => void,
): Promise<{ ip: string; vmi: VmiView }> {
  const deadline = Date.now() + IP_TIMEOUT_MS;
  let said = false;
  for (;;) {
    const vmi = await vms.vmi(DEMO_VM.namespace, DEMO_VM.name);
    const ip = vmiIP(vmi);
    if (vmi && ip) return { ip, vmi };
    if (!said) say("  waiting for virt-handler to report the VM's address (status.interfaces)");
    said = true;
    if (Date.now() > deadline) {
      throw new DevclusterError(
        `VMI ${DEMO_VM.name} is ${vmi?.status?.phase ?? 'gone'}, but after ${IP_TIMEOUT_MS / 1000} s its status.interfaces has no ipAddress (${JSON.stringify(vmi?.status?.interfaces ?? [])})`,
        `kubectl get vmi ${DEMO_VM.name} -o yaml; kubectl logs -n ${CHART_NAMESPACE} -l kubevirt.io=virt-handler (the pod on ${vmi?.status?.nodeName ?? "the VMI's node"})`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/**
 * Runs a client pod that fetches the guest's page from `ip`, as any pod of the cluster would, and returns where it
 * ran and what it got. The pod is deleted once it reached the guest; otherwise it stays for a look.
 */
async function fetchFromPod(
  kc: KubeConfig,
  ip: string,
): Promise<{ node: string; podIP: string; result: ReturnType<typeof clientResult> }> {
  const core = kc.makeApiClient(CoreV1Api);
  const { namespace } = DEMO_VM;
  const remove = () =>
    core.deleteNamespacedPod({ name: CLIENT_POD, namespace, gracePeriodSeconds: 0 }).catch((err: unknown) => {
      if (!(err instanceof ApiException && err.code === 404)) throw err;
    });
  const gone = async () => {
    const deadline = Date.now() + 60_000;
    while (
      await core.readNamespacedPod({ name: CLIENT_POD, namespace }).then(
        () => true,
        () => false,
      )
    ) {
      if (Date.now() > deadline)
        throw new DevclusterError(`the pod ${namespace}/${CLIENT_POD} of an earlier demo is not going away`);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
  };
  await remove();
  await gone();
  await core.createNamespacedPod({
    namespace,
    body: clientPod(CLIENT_POD, httpUrl(ip, GUEST_HTTP_PORT), { app: CLIENT_POD }),
  });
  const deadline = Date.now() + CLIENT_TIMEOUT_MS;
  for (;;) {
    const pod = await core.readNamespacedPod({ name: CLIENT_POD, namespace });
    const phase = pod.status?.phase;
    if (phase === 'Succeeded' || phase === 'Failed') {
      const result = clientResult(await core.readNamespacedPodLog({ name: CLIENT_POD, namespace }));
      if (result.reached) await remove();
      return { node: pod.spec?.nodeName ?? '?', podIP: pod.status?.podIP ?? '?', result };
    }
    if (Date.now() > deadline) {
      throw new DevclusterError(
        `the client pod ${namespace}/${CLIENT_POD} did not finish within ${CLIENT_TIMEOUT_MS / 1000} s (phase ${phase ?? 'unknown'})`,
        `kubectl describe pod ${CLIENT_POD}; kubectl logs ${CLIENT_POD}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 1_000));
  }
}

/** The boot log, shortened: the kernel's first line, then the last lines (the guest's own messages and prompt). */
function bootLines(text: string): string[] {
  const lines = consoleLines(text).filter((l) => l.length > 0);
  const kernel = lines.find((l) => /Linux version/.test(l));
  const tail = lines.slice(-BOOT_TAIL_LINES);
  return kernel && !tail.includes(kernel) ? [kernel, '…', ...tail] : tail;
}

async function readTimes(file: string): Promise<DemoTimes> {
  return readFile(file, 'utf8').then(
    (t) => JSON.parse(t) as DemoTimes,
    () => ({}),
  );
}

async function controlPlaneBuiltSince(cacheRoot: string, since: number): Promise<boolean> {
  const versions = await pinnedVersions();
  const stamp = binaryCache(cacheRoot, versions.kubernetes).stampFile;
  return stat(stamp).then(
    (s) => s.mtimeMs >= since,
    () => false,
  );
}

export async function runDemo(options: DemoOptions): Promise<number> {
  try {
    return await demo(options);
  } catch (err) {
    options.say(
      '\nThe demo stopped (the reason follows). The devcluster stays up so you can look: `eval "$(pnpm -s devcluster env)"`, kubectl, `pnpm devcluster logs`; `make demo-down` stops it.',
    );
    throw err;
  }
}

async function demo(options: DemoOptions): Promise<number> {
  const { say } = options;
  const nodes = options.nodes ?? DEMO_NODES;
  const repo = options.repoRoot ?? workingTree();
  const cacheRoot = options.cacheRoot ?? defaultCacheRoot();
  const startedEnv = Number(process.env[DEMO_STARTED_ENV]);
  const started = Number.isFinite(startedEnv) && startedEnv > 0 ? startedEnv : Date.now();
  const steps: Step[] = [];
  let stepStart = Date.now();
  if (started < stepStart)
    steps.push({ name: 'toolchain and control-plane binaries (make setup)', ms: stepStart - started });
  const step = (name: string) => {
    const now = Date.now();
    steps.push({ name, ms: now - stepStart });
    stepStart = now;
  };
  const progress = (line: string) => say(`  ${line}`);

  say(`[1/7] devcluster with ${nodes} nodes`);
  const result = await up({ progress, nodes, cacheRoot });
  const state = result.state;
  const nodeCount = state.nodes?.nodes.length ?? 0;
  if (nodeCount === 0) {
    say(
      [
        'This devcluster has no nodes, so no pod (and no VM) can run on it.',
        result.alreadyRunning
          ? `It was already running without nodes: \`make demo-down\`, then \`make demo\` again.`
          : 'devcluster up did not create nodes.',
      ].join('\n'),
    );
    return 1;
  }
  const kc = loadKubeConfig(state.kubeconfigs.adminHost);
  const nodeNames = await waitForNodes(kc, nodeCount, say);
  say(`  nodes Ready: ${nodeNames.join(', ')}`);
  step(result.alreadyRunning ? 'devcluster (already running)' : 'devcluster up');

  say("[2/7] the test guest in the nodes' image store");
  const imageDir = await ensureTestGuestImage(join(cacheRoot, 'images'), TEST_GUEST_IMAGE, progress);
  say(`  ${TEST_GUEST_IMAGE} → ${imageDir}`);
  step('test guest image');

  say(`[3/7] helm install ${CHART_RELEASE} (namespace ${CHART_NAMESPACE}, useEmulation=true)`);
  const helm = join(state.binDir, 'helm');
  await installChart({
    helm,
    kubeconfig: state.kubeconfigs.adminHost,
    chartDir: chartDir(repo),
    set: { useEmulation: true },
  });
  say("  installed; the services run as pods on the devcluster nodes (this working tree's source)");
  await waitForStack(kc, { nodes: nodeNames, progress, timeoutMs: STACK_TIMEOUT_MS });
  say(
    '  virt-controller, virt-api and virt-handler are Ready; APIService v1.subresources.kubevirt.io is Available',
  );
  step('helm install, stack Ready');

  say(`[4/7] kubectl apply -f ${DEMO_VM.file}`);
  const kubectl = join(state.binDir, 'kubectl');
  const env = { ...process.env, KUBECONFIG: state.kubeconfigs.adminHost };
  const vms = new VmClient(kc);
  const replacing = Boolean(await vms.vm(DEMO_VM.namespace, DEMO_VM.name));
  if (replacing) {
    say(`  replacing the ${DEMO_VM.name} of an earlier demo, so this one boots from the start`);
    await run(
      kubectl,
      ['delete', '-n', DEMO_VM.namespace, '-f', join(repo, DEMO_VM.file), '--wait=true', '--timeout=120s'],
      env,
    );
  }
  say(
    `  ${(await run(kubectl, ['apply', '-n', DEMO_VM.namespace, '-f', join(repo, DEMO_VM.file)], env)).trim()}`,
  );
  step(replacing ? 'VM applied (after deleting the earlier demo VM)' : 'VM applied');

  say(`[5/7] waiting for ${DEMO_VM.name} to run`);
  const vmi = await waitForVmiRunning(vms, DEMO_VM.namespace, DEMO_VM.name, {
    progress,
    timeoutMs: VM_TIMEOUT_MS,
  });
  const { ip } = await waitForVmIP(vms, say);
  const snapshot = await vms.snapshot(DEMO_VM.namespace, DEMO_VM.name);
  const podUid = snapshot.pod?.metadata?.uid;
  const node = vmi.status?.nodeName ?? snapshot.pod?.spec?.nodeName;
  say(
    `  ${(await run(kubectl, ['get', 'vm,vmi', '-n', DEMO_VM.namespace, '-o', 'wide'], env)).trimEnd().replace(/\n/g, '\n  ')}`,
  );
  const launcherIP = snapshot.pod?.status?.podIP;
  say(
    `  IP ${ip} (status.interfaces[0].ipAddress)${launcherIP === ip ? `: the address of its launcher pod ${snapshot.pod?.metadata?.name ?? ''}` : launcherIP ? `; its launcher pod has ${launcherIP}` : ''}`,
  );
  step('VM Running, IP reported');

  say("[6/7] the guest's console");
  if (!podUid || !node)
    throw new DevclusterError(`VMI ${DEMO_VM.name} is Running but has no launcher pod or node`);
  const shown = await showConsole(state, repo, vmi, { uid: podUid, node }, say);
  const guest = guestNetwork(shown.lines);
  say(`  the guest's own view (its console): ${describeGuestNetwork(guest)}`);
  step(`guest booted, console (${shown.via})`);

  const url = httpUrl(ip, GUEST_HTTP_PORT);
  say(`[7/7] another pod fetches ${url} (the guest's web server, through the VM's IP)`);
  const client = await fetchFromPod(kc, ip);
  if (!client.result.reached) {
    throw new DevclusterError(
      `the pod ${CLIENT_POD} (on ${client.node}, ${client.podIP}) could not fetch ${url}: ${client.result.detail}`,
      `the pod stays for a look: kubectl logs ${CLIENT_POD}; the guest's console: virtctl console ${DEMO_VM.name}`,
    );
  }
  say(`  pod ${CLIENT_POD} on ${client.node} (${client.podIP}) got: ${client.result.body}`);
  step('guest reached from another pod');

  const totalMs = Date.now() - started;
  const cold = await controlPlaneBuiltSince(cacheRoot, started);
  const timesFile = join(cacheRoot, 'demo', 'times.json');
  const times = await readTimes(timesFile);
  times[cold ? 'cold' : 'warm'] = { totalMs, at: new Date().toISOString() };
  await mkdir(join(cacheRoot, 'demo'), { recursive: true });
  await writeFile(timesFile, `${JSON.stringify(times, null, 2)}\n`);

  const virtctl = await virtctlCommand(repo);
  say(
    [
      '',
      `The VM ${DEMO_VM.name} runs on ${node} with IP ${ip}${guest?.kind === 'lease' ? ` (inside the guest: eth0 ${guest.address}/${guest.prefix})` : ''}; a pod on ${client.node} reached its web server there. Next:`,
      '  # kubectl, helm and virtctl against this cluster:',
      '  eval "$(pnpm -s devcluster env)"',
      '  kubectl get vm,vmi -o wide',
      "  # the guest's web server from a pod of your own:",
      ...reachCommands(ip).map((c) => `  ${c}`),
      "  # the same page on this machine, through the API server (virt-api's portforward; Ctrl+C ends it):",
      `  ${virtctl} port-forward vm/${DEMO_VM.name} 8080:80   # then http://127.0.0.1:8080/`,
      '  # the console (Ctrl+] leaves it), then a graceful stop:',
      `  ${virtctl} console ${DEMO_VM.name}`,
      `  ${virtctl} stop ${DEMO_VM.name}`,
      '  # stop everything:',
      '  make demo-down',
      '',
      'Time taken:',
      ...steps.map((s) => `  ${s.name.padEnd(52)} ${seconds(s.ms).padStart(8)}`),
      `  ${'total'.padEnd(52)} ${seconds(totalMs).padStart(8)}  (${cold ? 'cold: the control plane was built in this run' : 'warm: the control plane was cached'})`,
      `  cold run: ${times.cold ? `${seconds(times.cold.totalMs)} (${times.cold.at})` : 'not measured on this machine yet'}`,
      `  warm run: ${times.warm ? `${seconds(times.warm.totalMs)} (${times.warm.at})` : 'not measured on this machine yet (run make demo again)'}`,
    ].join('\n'),
  );
  return 0;
}
