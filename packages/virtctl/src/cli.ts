// virtctl's command line: the commands and flags of KubeVirt's virtctl that kubevirt-ts serves, plus kubectl's
// connection flags (--kubeconfig, --context, -n/--namespace), parsed into one Invocation. Boolean flags also take
// `=true`/`=false`, as Go's flag package (and so KubeVirt's virtctl) allows.
import { parseArgs } from 'node:util';
import { UsageError } from './errors.ts';
import type { ConnectionFlags } from './client.ts';
import {
  exposeKind,
  parseIPFamilies,
  parseIPFamilyPolicy,
  parseProtocol,
  parseServiceType,
  parseTargetPort,
  type ExposeKind,
  type ExposeOptions,
} from './expose.ts';
import { parsePort, parseTarget, type ForwardedPort, type PortForwardTarget } from './portforward.ts';
import { SCP_COMMAND, SSH_COMMAND, scpOptions, sshOptions, type ScpOptions, type SshOptions } from './ssh.ts';

export type Command =
  | { name: 'start'; target: string; paused: boolean; dryRun: boolean }
  | { name: 'stop' | 'restart'; target: string; gracePeriod: number | undefined; dryRun: boolean }
  | { name: 'pause' | 'unpause'; kind: 'vm' | 'vmi'; target: string; dryRun: boolean }
  | { name: 'softreboot' | 'guestosinfo'; target: string }
  | { name: 'console'; target: string; timeoutMinutes: number }
  | { name: 'vnc'; target: string; proxyOnly: boolean; port: number; address: string }
  | { name: 'expose'; kind: ExposeKind; target: string; options: ExposeOptions }
  | {
      name: 'port-forward';
      target: PortForwardTarget;
      ports: ForwardedPort[];
      address: string;
      stdio: boolean;
    }
  | { name: 'ssh'; options: SshOptions }
  | { name: 'scp'; options: ScpOptions }
  | { name: 'version' }
  | { name: 'help'; topic: string | undefined };

export interface Invocation {
  connection: ConnectionFlags;
  command: Command;
}

type OptionSpec = { type: 'string' | 'boolean'; short?: string; multiple?: boolean };

const GLOBAL: Record<string, OptionSpec> = {
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  namespace: { type: 'string', short: 'n' },
  help: { type: 'boolean', short: 'h' },
};

const COMMANDS: Record<
  string,
  { usage: string; summary: string; details?: string; options: Record<string, OptionSpec> }
> = {
  start: {
    usage: 'start VM [--paused] [--dry-run]',
    summary: 'Start a virtual machine.',
    options: { paused: { type: 'boolean' }, 'dry-run': { type: 'boolean' } },
  },
  stop: {
    usage: 'stop VM [--grace-period=SECONDS --force] [--dry-run]',
    summary: 'Stop a virtual machine.',
    options: {
      'grace-period': { type: 'string' },
      force: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
    },
  },
  restart: {
    usage: 'restart VM [--grace-period=0 --force] [--dry-run]',
    summary: 'Restart a virtual machine.',
    options: {
      'grace-period': { type: 'string' },
      force: { type: 'boolean' },
      'dry-run': { type: 'boolean' },
    },
  },
  pause: {
    usage: 'pause vm|vmi NAME [--dry-run]',
    summary: 'Pause a virtual machine (its state stays in memory).',
    options: { 'dry-run': { type: 'boolean' } },
  },
  unpause: {
    usage: 'unpause vm|vmi NAME [--dry-run]',
    summary: 'Unpause a paused virtual machine.',
    options: { 'dry-run': { type: 'boolean' } },
  },
  softreboot: {
    usage: 'softreboot VMI',
    summary: 'Reboot the guest through its agent or ACPI.',
    options: {},
  },
  guestosinfo: {
    usage: 'guestosinfo VMI',
    summary: 'Print what the guest agent reports about the operating system.',
    options: {},
  },
  console: {
    usage: 'console VMI [--timeout=MINUTES]',
    summary: 'Connect to the serial console of a virtual machine instance (Ctrl+] leaves).',
    options: { timeout: { type: 'string' } },
  },
  vnc: {
    usage: 'vnc VMI [--proxy-only] [--port=PORT] [--address=ADDRESS]',
    summary: 'Open a VNC connection to a virtual machine instance.',
    options: { 'proxy-only': { type: 'boolean' }, port: { type: 'string' }, address: { type: 'string' } },
  },
  expose: {
    usage:
      'expose vm|vmi|vmirs NAME [--port=PORT [--target-port=PORT]] [--type=ClusterIP|NodePort|LoadBalancer] ' +
      '[--name=SERVICE] [FLAGS]',
    summary: 'Expose a VM, VMI or VMI replica set as a new Service.',
    details:
      'The Service selects the launcher pod of the VM or VMI by its vmi.kubevirt.io/id label (a replica set’s\n' +
      'pods by its selector’s matchLabels) and is owned by the object it exposes.\n\n' +
      'Flags:\n' +
      '  --name NAME              the Service’s name (default: the name of the object exposed)\n' +
      '  --port PORT              the port the Service serves on (default: the ports the VM’s pod network\n' +
      '                           interface lists, named port-1, port-2, ...)\n' +
      '  --target-port PORT|NAME  the port of the VM behind --port (default: the same as --port)\n' +
      '  --protocol TCP|UDP       the protocol of --port (default TCP)\n' +
      '  --port-name NAME         the name of --port in the Service\n' +
      '  --type TYPE              ClusterIP (default), NodePort or LoadBalancer\n' +
      '  --cluster-ip IP          the ClusterIP to ask for; None for a headless Service\n' +
      '  --external-ip IP         an external IP the Service also accepts traffic on\n' +
      '  --ip-family FAMILIES     IPv4, IPv6, IPv4,IPv6 or IPv6,IPv4\n' +
      '  --ip-family-policy P     SingleStack, PreferDualStack (the default for two families) or RequireDualStack\n',
    options: {
      name: { type: 'string' },
      port: { type: 'string' },
      'target-port': { type: 'string' },
      protocol: { type: 'string' },
      'port-name': { type: 'string' },
      type: { type: 'string' },
      'cluster-ip': { type: 'string' },
      'external-ip': { type: 'string' },
      'ip-family': { type: 'string' },
      'ip-family-policy': { type: 'string' },
    },
  },
  'port-forward': {
    usage: 'port-forward [--address=ADDRESS] [--stdio] TYPE/NAME[.NAMESPACE] PORT[:GUESTPORT][/PROTOCOL]...',
    summary: 'Forward local ports to a virtual machine (through the API server).',
    details:
      'TYPE is vm or vmi; the namespace comes from NAME.NAMESPACE, TYPE/NAME/NAMESPACE, -n, or the context.\n' +
      'A port is LOCAL[:GUEST][/PROTOCOL] or [PROTOCOL/]LOCAL[:GUEST] (KubeVirt’s form); PROTOCOL is tcp (the\n' +
      'default) or udp; :GUEST alone listens on a free local port. Every local connection gets its own tunnel\n' +
      'through the portforward subresource (verb "get" on virtualmachines/portforward or\n' +
      'virtualmachineinstances/portforward). A masquerade interface forwards only the ports it lists.\n\n' +
      'Flags:\n' +
      '  --address ADDRESS  the local address to listen on (default 127.0.0.1)\n' +
      '  --stdio            connect stdin and stdout to the one PORT given (as ssh’s ProxyCommand); messages\n' +
      '                     go to stderr only\n\n' +
      'Examples:\n' +
      '  virtctl port-forward vm/web 8080:80       # http://127.0.0.1:8080 is the guest’s port 80\n' +
      '  virtctl port-forward vmi/dns.team-a 5353:53/udp\n' +
      '  ssh -o ProxyCommand="virtctl port-forward --stdio=true vm/web.team-a 22" user@web\n',
    options: { address: { type: 'string' }, stdio: { type: 'boolean' } },
  },
  ssh: SSH_COMMAND,
  scp: SCP_COMMAND,
  version: { usage: 'version', summary: 'Print the client and server versions.', options: {} },
  help: { usage: 'help [COMMAND]', summary: 'Show help for virtctl or one of its commands.', options: {} },
};

/** `virtctl`, or `kubectl virt` when run as the kubectl plugin. */
export function programName(argv1: string | undefined = process.argv[1]): string {
  return /kubectl-virt(\.[cm]?js)?$/.test(argv1 ?? '') ? 'kubectl virt' : 'virtctl';
}

export function helpText(topic?: string, program = programName()): string {
  const connection =
    'Connection flags (as kubectl):\n' +
    '  --kubeconfig PATH   the kubeconfig to use (default: $KUBECONFIG, then ~/.kube/config)\n' +
    '  --context NAME      the kubeconfig context to use\n' +
    '  -n, --namespace NS  the namespace of the VM (default: the context’s, then "default")\n';
  const spec = topic === undefined ? undefined : COMMANDS[topic];
  if (spec !== undefined && topic !== undefined) {
    const details = spec.details === undefined ? '' : `${spec.details}\n`;
    return `${spec.summary}\n\nUsage:\n  ${program} ${spec.usage}\n\n${details}${connection}`;
  }
  const width = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  const lines = Object.entries(COMMANDS).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return (
    `${program} controls KubeVirt virtual machines (kubevirt-ts).\n\n` +
    `Usage:\n  ${program} COMMAND [ARGS] [FLAGS]\n\nCommands:\n${lines.join('\n')}\n\n${connection}\n` +
    `Run "${program} help COMMAND" for a command's flags.\n`
  );
}

/** Levenshtein distance, for "did you mean". */
function distance(a: string, b: string): number {
  const row = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    let previous = row[0] ?? 0;
    row[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const current = row[j] ?? 0;
      row[j] = Math.min(current + 1, (row[j - 1] ?? 0) + 1, previous + (a[i - 1] === b[j - 1] ? 0 : 1));
      previous = current;
    }
  }
  return row[b.length] ?? 0;
}

function suggest(word: string, known: string[]): string {
  const best = known.map((k) => ({ k, d: distance(word, k) })).sort((x, y) => x.d - y.d)[0];
  return best !== undefined && best.d <= 2 ? ` (did you mean ${best.k}?)` : '';
}

/** Rewrites `--flag=true` to `--flag` and drops `--flag=false` for boolean flags. */
function normalizeBooleans(args: string[], booleans: Set<string>): string[] {
  const out: string[] = [];
  for (const arg of args) {
    const match = /^--([^=]+)=(.*)$/.exec(arg);
    if (match !== null && booleans.has(match[1] ?? '')) {
      const value = (match[2] ?? '').toLowerCase();
      if (value === 'true') out.push(`--${match[1]}`);
      else if (value !== 'false')
        throw new UsageError(`--${match[1]} takes true or false, not ${JSON.stringify(match[2])}`);
      continue;
    }
    out.push(arg);
  }
  return out;
}

function integer(flag: string, raw: string | undefined, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  if (!/^-?\d+$/.test(raw))
    throw new UsageError(`--${flag} takes a whole number, not ${JSON.stringify(raw)}`);
  const n = Number(raw);
  if (n < min || n > max) throw new UsageError(`--${flag} must be between ${min} and ${max}, got ${n}`);
  return n;
}

/** The flags of `expose`, checked: what is wrong names the flag. */
function exposeOptions(values: Record<string, string | boolean | undefined>): ExposeOptions {
  const text = (key: string): string | undefined => {
    const value = values[key] as string | undefined;
    return value === '' ? undefined : value;
  };
  if (values.name === '') throw new UsageError('--name must not be empty');
  const port = integer('port', text('port'), 1, 65535);
  if (port === undefined) {
    for (const needsPort of ['target-port', 'protocol', 'port-name']) {
      if (text(needsPort) !== undefined) {
        throw new UsageError(
          `--${needsPort} describes --port, which is missing; pass --port too (without --port the Service ` +
            'serves the ports the pod network interface lists)',
        );
      }
    }
  }
  const raw = {
    targetPort: text('target-port'),
    protocol: text('protocol'),
    type: text('type'),
    ipFamily: text('ip-family'),
    ipFamilyPolicy: text('ip-family-policy'),
  };
  return {
    serviceName: text('name'),
    port,
    targetPort: raw.targetPort === undefined ? undefined : parseTargetPort(raw.targetPort),
    portName: text('port-name'),
    protocol: raw.protocol === undefined ? 'TCP' : parseProtocol(raw.protocol),
    type: raw.type === undefined ? 'ClusterIP' : parseServiceType(raw.type),
    clusterIP: text('cluster-ip'),
    externalIP: text('external-ip'),
    ipFamilies: raw.ipFamily === undefined ? [] : parseIPFamilies(raw.ipFamily),
    ipFamilyPolicy: raw.ipFamilyPolicy === undefined ? undefined : parseIPFamilyPolicy(raw.ipFamilyPolicy),
  };
}

/**
 * Parses argv (without node and the script) into what to do; throws UsageError. `program` is how messages name
 * the tool (`virtctl`, or `kubectl virt` as the plugin).
 */
export function parseCommandLine(argv: string[], program = programName()): Invocation {
  // The command is the first word that is not a flag or the value of a connection flag.
  let index = -1;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (['--kubeconfig', '--context', '--namespace', '-n'].includes(arg)) {
      i++;
      continue;
    }
    if (!arg.startsWith('-')) {
      index = i;
      break;
    }
  }
  const name = index === -1 ? undefined : argv[index];
  if (name === undefined) {
    if (argv.length === 0 || argv.includes('-h') || argv.includes('--help')) {
      return { connection: {}, command: { name: 'help', topic: undefined } };
    }
    throw new UsageError(`no command given; run "${program} help" for the commands`);
  }
  const spec = COMMANDS[name];
  if (spec === undefined) {
    throw new UsageError(
      `unknown command "${name}"${suggest(name, Object.keys(COMMANDS))}; run "${program} help"`,
    );
  }
  const rest = [...argv.slice(0, index), ...argv.slice(index + 1)];
  const options = { ...GLOBAL, ...spec.options };
  const booleans = new Set(
    Object.entries(options)
      .filter(([, o]) => o.type === 'boolean')
      .map(([k]) => k),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: normalizeBooleans(rest, booleans),
      options,
      allowPositionals: true,
      strict: true,
    });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    const unknown = /Unknown option '(-{1,2})([^']+)'/.exec(message);
    if (unknown !== null) {
      const flag = unknown[2] ?? '';
      throw new UsageError(
        `unknown flag ${unknown[1]}${flag} for "${name}"${suggest(flag, Object.keys(options))}; ` +
          `usage: ${program} ${spec.usage}`,
      );
    }
    throw new UsageError(`${message}; usage: ${program} ${spec.usage}`);
  }
  const values = parsed.values as Record<string, string | boolean | undefined>;
  const positionals = parsed.positionals;
  const connection: ConnectionFlags = {
    kubeconfig: values.kubeconfig as string | undefined,
    context: values.context as string | undefined,
    namespace: values.namespace as string | undefined,
  };
  if (values.help === true || name === 'help') {
    return { connection, command: { name: 'help', topic: name === 'help' ? positionals[0] : name } };
  }
  const expect = (count: number, what: string): string[] => {
    if (positionals.length !== count) {
      throw new UsageError(
        `"${name}" takes ${what}, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}; ` +
          `usage: ${program} ${spec.usage}`,
      );
    }
    return positionals;
  };
  const flag = (key: string) => values[key];
  const dryRun = flag('dry-run') === true;
  switch (name) {
    case 'start':
      return {
        connection,
        command: { name, target: expect(1, 'one VM name')[0] ?? '', paused: flag('paused') === true, dryRun },
      };
    case 'stop':
    case 'restart': {
      const target = expect(1, 'one VM name')[0] ?? '';
      const gracePeriod = integer('grace-period', flag('grace-period') as string | undefined, -1, 2 ** 31);
      const force = flag('force') === true;
      if ((gracePeriod !== undefined) !== force) {
        throw new UsageError('Must both use --force=true and set --grace-period.');
      }
      return { connection, command: { name, target, gracePeriod, dryRun } };
    }
    case 'pause':
    case 'unpause': {
      const [kindWord, target] = expect(2, 'a kind (vm or vmi) and a name');
      const kind = (kindWord ?? '').toLowerCase();
      const resolved =
        kind === 'vm' || kind === 'vms' || kind === 'virtualmachine' || kind === 'virtualmachines'
          ? 'vm'
          : kind === 'vmi' ||
              kind === 'vmis' ||
              kind === 'virtualmachineinstance' ||
              kind === 'virtualmachineinstances'
            ? 'vmi'
            : undefined;
      if (resolved === undefined) {
        throw new UsageError(
          `"${name}" takes vm or vmi as its first argument, not "${kindWord}"; usage: ${program} ${spec.usage}`,
        );
      }
      return { connection, command: { name, kind: resolved, target: target ?? '', dryRun } };
    }
    case 'softreboot':
    case 'guestosinfo':
      return { connection, command: { name, target: expect(1, 'one VMI name')[0] ?? '' } };
    case 'console':
      return {
        connection,
        command: {
          name,
          target: expect(1, 'one VMI name')[0] ?? '',
          timeoutMinutes: integer('timeout', flag('timeout') as string | undefined, 0, 24 * 60) ?? 5,
        },
      };
    case 'vnc':
      return {
        connection,
        command: {
          name,
          target: expect(1, 'one VMI name')[0] ?? '',
          proxyOnly: flag('proxy-only') === true,
          port: integer('port', flag('port') as string | undefined, 0, 65535) ?? 0,
          address: (flag('address') as string | undefined) ?? '127.0.0.1',
        },
      };
    case 'expose': {
      const [kindWord, target] = expect(2, 'a kind (vm, vmi or vmirs) and a name');
      const kind = exposeKind(kindWord ?? '');
      if (kind === undefined) {
        throw new UsageError(
          `"expose" takes vm, vmi or vmirs as its first argument, not "${kindWord}"; usage: ${program} ${spec.usage}`,
        );
      }
      return { connection, command: { name, kind, target: target ?? '', options: exposeOptions(values) } };
    }
    case 'port-forward': {
      if (positionals.length < 2) {
        throw new UsageError(
          `"port-forward" takes a target and at least one port, got ${positionals.length === 0 ? 'none' : positionals.join(' ')}; ` +
            `usage: ${program} ${spec.usage}`,
        );
      }
      const [targetWord = '', ...portWords] = positionals;
      const target = parseTarget(targetWord);
      if (
        target.namespace !== undefined &&
        connection.namespace !== undefined &&
        target.namespace !== connection.namespace
      ) {
        throw new UsageError(
          `the namespace is given twice: ${JSON.stringify(target.namespace)} in ${JSON.stringify(targetWord)} and ` +
            `${JSON.stringify(connection.namespace)} with -n; give one`,
        );
      }
      const ports = portWords.map(parsePort);
      const stdio = flag('stdio') === true;
      if (stdio && ports.length !== 1) {
        throw new UsageError(`--stdio forwards exactly one port, got ${ports.length}`);
      }
      const address = (flag('address') as string | undefined) ?? '127.0.0.1';
      if (address === '') throw new UsageError('--address must not be empty');
      return { connection, command: { name, target, ports, address, stdio } };
    }
    case 'ssh':
      return { connection, command: { name, options: sshOptions(values, positionals, connection) } };
    case 'scp':
      return { connection, command: { name, options: scpOptions(values, positionals, connection) } };
    case 'version':
      expect(0, 'no arguments');
      return { connection, command: { name } };
    default:
      throw new UsageError(`unknown command "${name}"`);
  }
}
