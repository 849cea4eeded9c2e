import { describe, expect, it } from 'vitest';
import { helpText, parseCommandLine, programName } from './cli.ts';
import { UsageError } from './errors.ts';

function usageError(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

describe('parseCommandLine', () => {
  it('reads commands with kubectl’s connection flags anywhere', () => {
    expect(parseCommandLine(['-n', 'ns1', 'start', 'vm1', '--paused'])).toEqual({
      connection: { kubeconfig: undefined, context: undefined, namespace: 'ns1' },
      command: { name: 'start', target: 'vm1', paused: true, dryRun: false },
    });
    expect(
      parseCommandLine(['stop', '--kubeconfig=/k', 'vm1', '--context', 'c1', '--namespace=ns2', '--dry-run']),
    ).toEqual({
      connection: { kubeconfig: '/k', context: 'c1', namespace: 'ns2' },
      command: { name: 'stop', target: 'vm1', gracePeriod: undefined, dryRun: true },
    });
  });

  it('takes Go-style boolean values', () => {
    expect(parseCommandLine(['start', 'vm', '--paused=false']).command).toMatchObject({ paused: false });
    expect(parseCommandLine(['start', 'vm', '--paused=true']).command).toMatchObject({ paused: true });
    expect(usageError(['start', 'vm', '--paused=maybe'])).toBe(
      '--paused takes true or false, not "maybe"; usage: virtctl start VM [--paused] [--dry-run]',
    );
  });

  it('needs --force and --grace-period together, as KubeVirt’s virtctl', () => {
    expect(parseCommandLine(['stop', 'vm', '--grace-period=0', '--force']).command).toMatchObject({
      gracePeriod: 0,
    });
    expect(parseCommandLine(['restart', 'vm', '--force', '--grace-period', '0']).command).toMatchObject({
      name: 'restart',
      gracePeriod: 0,
    });
    expect(usageError(['stop', 'vm', '--grace-period=0'])).toBe(
      'Must both use --force=true and set --grace-period.',
    );
    expect(usageError(['restart', 'vm', '--force'])).toBe(
      'Must both use --force=true and set --grace-period.',
    );
    expect(usageError(['stop', 'vm', '--force', '--grace-period=soon'])).toContain('takes a whole number');
  });

  it('reads pause/unpause with a kind, console with a timeout, vnc with proxy flags', () => {
    expect(parseCommandLine(['pause', 'VM', 'a']).command).toEqual({
      name: 'pause',
      kind: 'vm',
      target: 'a',
      dryRun: false,
    });
    expect(parseCommandLine(['unpause', 'virtualmachineinstance', 'a']).command).toMatchObject({
      kind: 'vmi',
    });
    expect(parseCommandLine(['console', 'a']).command).toEqual({
      name: 'console',
      target: 'a',
      timeoutMinutes: 5,
    });
    expect(parseCommandLine(['console', 'a', '--timeout=1']).command).toMatchObject({ timeoutMinutes: 1 });
    expect(parseCommandLine(['vnc', 'a', '--proxy-only', '--port', '5901']).command).toEqual({
      name: 'vnc',
      target: 'a',
      proxyOnly: true,
      port: 5901,
      address: '127.0.0.1',
    });
    expect(parseCommandLine(['version']).command).toEqual({ name: 'version' });
  });

  it('shows help for no arguments, -h, help and COMMAND --help', () => {
    expect(parseCommandLine([]).command).toEqual({ name: 'help', topic: undefined });
    expect(parseCommandLine(['--help']).command).toEqual({ name: 'help', topic: undefined });
    expect(parseCommandLine(['help', 'stop']).command).toEqual({ name: 'help', topic: 'stop' });
    expect(parseCommandLine(['console', '-h']).command).toEqual({ name: 'help', topic: 'console' });
    expect(helpText('stop', 'virtctl')).toContain(
      'virtctl stop VM [--grace-period=SECONDS --force] [--dry-run]',
    );
    expect(helpText(undefined, 'kubectl virt')).toContain('kubectl virt COMMAND');
  });

  it('refuses what it does not know, suggesting the near miss', () => {
    expect(usageError(['strat', 'vm'])).toBe(
      'unknown command "strat" (did you mean start?); run "virtctl help"',
    );
    expect(usageError(['start', 'vm', '--pasued'])).toContain(
      'unknown flag --pasued for "start" (did you mean paused?)',
    );
    expect(usageError(['start'])).toContain('"start" takes one VM name, got none');
    expect(usageError(['start', 'a', 'b'])).toContain('got a b');
    expect(usageError(['pause', 'pod', 'a'])).toContain('takes vm or vmi as its first argument, not "pod"');
    expect(usageError(['-n', 'x'])).toContain('no command given');
    expect(usageError(['vnc', 'a', '--port=70000'])).toContain('--port must be between 0 and 65535');
  });
});

describe('expose', () => {
  it('reads the kind, the name and the Service flags, with KubeVirt’s defaults', () => {
    expect(
      parseCommandLine(['expose', 'vm', 'masq-vm', '--port', '8000', '--target-port=80', '-n', 'ns1']),
    ).toEqual({
      connection: { kubeconfig: undefined, context: undefined, namespace: 'ns1' },
      command: {
        name: 'expose',
        kind: 'vm',
        target: 'masq-vm',
        options: {
          serviceName: undefined,
          port: 8000,
          targetPort: 80,
          portName: undefined,
          protocol: 'TCP',
          type: 'ClusterIP',
          clusterIP: undefined,
          externalIP: undefined,
          ipFamilies: [],
          ipFamilyPolicy: undefined,
        },
      },
    });
    expect(
      parseCommandLine([
        'expose',
        'VirtualMachineInstance',
        'a',
        '--name=ssh',
        '--port=22',
        '--target-port=ssh',
        '--protocol=udp',
        '--port-name=p',
        '--type=nodeport',
        '--cluster-ip=None',
        '--external-ip=192.0.2.1',
        '--ip-family=IPv4,IPv6',
        '--ip-family-policy=RequireDualStack',
      ]).command,
    ).toEqual({
      name: 'expose',
      kind: 'vmi',
      target: 'a',
      options: {
        serviceName: 'ssh',
        port: 22,
        targetPort: 'ssh',
        portName: 'p',
        protocol: 'UDP',
        type: 'NodePort',
        clusterIP: 'None',
        externalIP: '192.0.2.1',
        ipFamilies: ['IPv4', 'IPv6'],
        ipFamilyPolicy: 'RequireDualStack',
      },
    });
    expect(parseCommandLine(['expose', 'vmirs', 'rs']).command).toMatchObject({
      kind: 'vmirs',
      options: { port: undefined },
    });
  });

  it('refuses a wrong kind, a bad port, flags that need --port, and unknown types, naming the flag', () => {
    expect(usageError(['expose', 'pod', 'a', '--port=1'])).toBe(
      '"expose" takes vm, vmi or vmirs as its first argument, not "pod"; usage: virtctl expose vm|vmi|vmirs NAME ' +
        '[--port=PORT [--target-port=PORT]] [--type=ClusterIP|NodePort|LoadBalancer] [--name=SERVICE] [FLAGS]',
    );
    expect(usageError(['expose', 'vm'])).toContain(
      '"expose" takes a kind (vm, vmi or vmirs) and a name, got vm',
    );
    expect(usageError(['expose', 'vm', 'a', '--port=0'])).toBe('--port must be between 1 and 65535, got 0');
    expect(usageError(['expose', 'vm', 'a', '--port=http'])).toBe('--port takes a whole number, not "http"');
    expect(usageError(['expose', 'vm', 'a', '--target-port=80'])).toBe(
      '--target-port describes --port, which is missing; pass --port too (without --port the Service serves the ' +
        'ports the pod network interface lists)',
    );
    expect(usageError(['expose', 'vm', 'a', '--protocol=UDP'])).toMatch(/^--protocol describes --port/);
    expect(usageError(['expose', 'vm', 'a', '--port=1', '--type=ExternalName'])).toBe(
      '--type ExternalName is not supported: a Service of that type selects no pods',
    );
    expect(usageError(['expose', 'vm', 'a', '--port=1', '--target-port=Web'])).toMatch(
      /^--target-port takes a port number \(1 to 65535\) or a port name/,
    );
    expect(usageError(['expose', 'vm', 'a', '--name='])).toBe('--name must not be empty');
    expect(usageError(['expose', 'vm', 'a', '--nmae=x'])).toContain(
      'unknown flag --nmae for "expose" (did you mean name?)',
    );
  });

  it('has help that explains the selector and every flag', () => {
    const help = helpText('expose', 'virtctl');
    expect(help).toContain('vmi.kubevirt.io/id');
    for (const flag of ['--name', '--port', '--target-port', '--protocol', '--type', '--cluster-ip']) {
      expect(help).toContain(`  ${flag} `);
    }
    expect(helpText(undefined, 'virtctl')).toMatch(/^ {2}expose +Expose a VM, VMI or VMI replica set/m);
  });
});

describe('programName', () => {
  it('is "kubectl virt" when run as the kubectl plugin', () => {
    expect(programName('/usr/local/bin/kubectl-virt')).toBe('kubectl virt');
    expect(programName('/x/node_modules/.bin/virtctl')).toBe('virtctl');
  });
});
