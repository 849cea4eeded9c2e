import { execFile, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseCommandLine } from './cli.ts';
import { UsageError, VirtctlError } from './errors.ts';
import {
  parseSshTarget,
  proxyCommand,
  runLocalClient,
  scpArguments,
  shellQuote,
  sshArguments,
  type ScpOptions,
  type SshOptions,
} from './ssh.ts';

const MAIN = path.join(import.meta.dirname, 'main.ts');
const VIRTCTL = ['/usr/bin/node', '--conditions=@kubevirt-ts/source', '/src/virtctl/main.ts'];
const PROXY = '/usr/bin/node --conditions=@kubevirt-ts/source /src/virtctl/main.ts port-forward --stdio=true';

function usageError(argv: string[]): string {
  try {
    parseCommandLine(argv);
  } catch (err) {
    if (err instanceof UsageError) return err.message;
    throw err;
  }
  throw new Error(`expected ${argv.join(' ')} to be refused`);
}

function ssh(argv: string[]): SshOptions {
  const { command } = parseCommandLine(['ssh', ...argv]);
  if (command.name !== 'ssh') throw new Error(`parsed as ${command.name}`);
  return command.options;
}

function scp(argv: string[]): ScpOptions {
  const { command } = parseCommandLine(['scp', ...argv]);
  if (command.name !== 'scp') throw new Error(`parsed as ${command.name}`);
  return command.options;
}

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'virtctl-ssh-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});

describe('virtctl ssh: the command line', () => {
  it('reads KubeVirt’s flags: user, identity, port, command, local ssh options, known hosts', () => {
    expect(
      ssh([
        'root@vm/web.team-a',
        '-i',
        '/keys/id',
        '-p',
        '2222',
        '-c',
        'cat /etc/hostname',
        '--local-ssh-opts=-o StrictHostKeyChecking=no',
        '-t-oUserKnownHostsFile=/dev/null',
        '--known-hosts',
        '/k/hosts',
      ]),
    ).toEqual({
      user: 'root',
      identityFile: '/keys/id',
      port: 2222,
      command: 'cat /etc/hostname',
      localSshOpts: ['-o StrictHostKeyChecking=no', '-oUserKnownHostsFile=/dev/null'],
      knownHosts: '/k/hosts',
      target: { kind: 'vm', name: 'web', namespace: 'team-a' },
    });
    expect(ssh(['vmi/web', '--username=fedora', '--identity-file=/id'])).toEqual({
      user: 'fedora',
      identityFile: '/id',
      port: 22,
      command: undefined,
      localSshOpts: [],
      knownHosts: undefined,
      target: { kind: 'vmi', name: 'web', namespace: undefined },
    });
    expect(parseSshTarget('me@virtualmachineinstance/db/prod')).toEqual({
      user: 'me',
      target: { kind: 'vmi', name: 'db', namespace: 'prod' },
    });
  });

  it('refuses what is wrong, naming it', () => {
    expect(usageError(['ssh'])).toMatch(/^"ssh" takes one target, got none/);
    expect(usageError(['ssh', 'vm/web', 'uptime'])).toMatch(
      /^"ssh" takes one target, got vm\/web uptime \(quote a command and pass it with -c\)/,
    );
    expect(usageError(['ssh', '@vm/web'])).toBe('expected a user name before "@" in "@vm/web"');
    expect(usageError(['ssh', 'root@'])).toBe('expected TYPE/NAME after "@" in "root@"');
    expect(usageError(['ssh', 'root@pod/web'])).toMatch(/^unsupported resource type "pod"/);
    expect(usageError(['ssh', 'vm/web', '-p', '70000'])).toBe(
      '--port must be a number from 1 to 65535, got "70000"',
    );
    expect(usageError(['ssh', 'root@vm/web', '-l', 'admin'])).toBe(
      'the user is given twice: "root" in the target and "admin" with --username; give one',
    );
    expect(usageError(['ssh', 'vm/web.a', '-n', 'b'])).toBe(
      'the namespace is given twice: "a" in "vm/web.a" and "b" with -n; give one',
    );
    expect(usageError(['ssh', 'vm/web', '--identity-file='])).toBe('--identity-file must not be empty');
    // As with any flag, a value that starts with a dash goes after "=" (pflag would also take the next word).
    expect(usageError(['ssh', 'vm/web', '--local-ssh-opts', '-A'])).toMatch(/use '--local-ssh-opts=-XYZ'/);
  });
});

describe('virtctl ssh: the local ssh command', () => {
  it('runs ssh with this virtctl’s port-forward --stdio as its ProxyCommand, then the user’s options', () => {
    expect(
      sshArguments(
        ssh([
          'root@vm/web',
          '-i',
          '/keys/id',
          '-c',
          'cat /etc/hostname',
          '--local-ssh-opts=-o StrictHostKeyChecking=no',
          '--known-hosts=/k/hosts',
        ]),
        'team-a',
        { kubeconfig: '/home/me/kube config', context: 'prod' },
        VIRTCTL,
      ),
    ).toEqual([
      '-o',
      `ProxyCommand=${PROXY} vm/web.team-a 22 --kubeconfig '/home/me/kube config' --context prod`,
      '-o',
      'UserKnownHostsFile=/k/hosts',
      '-o StrictHostKeyChecking=no',
      '-i',
      '/keys/id',
      'root@vm.web.team-a',
      'cat /etc/hostname',
    ]);
  });

  it('takes the namespace from the target before the context’s; a dotted name uses TYPE/NAME/NAMESPACE', () => {
    expect(sshArguments(ssh(['vmi/web.other', '-p', '2022']), 'team-a', {}, VIRTCTL)).toEqual([
      '-o',
      `ProxyCommand=${PROXY} vmi/web.other 2022`,
      'vmi.web.other',
    ]);
    expect(sshArguments(ssh(['vm/web.v2/prod']), 'team-a', {}, VIRTCTL)).toEqual([
      '-o',
      `ProxyCommand=${PROXY} vm/web.v2/prod 22`,
      'vm.web.v2.prod',
    ]);
  });

  it('quotes the ProxyCommand for the shell and doubles % for ssh’s token expansion', () => {
    expect(shellQuote('/usr/bin/node')).toBe('/usr/bin/node');
    expect(shellQuote("it's $HOME")).toBe(`'it'\\''s $HOME'`);
    expect(
      proxyCommand(['/opt/100% node'], { kubeconfig: '/k%h' }, { kind: 'vm', name: 'a', namespace: 'b' }, 22),
    ).toBe("'/opt/100%% node' port-forward --stdio=true vm/a.b 22 --kubeconfig /k%%h");
  });

  it('the quoted words reach a program as they were, through a real shell', async () => {
    const words = ['/a b/node', "it's", '$HOME', '`x`', 'a"b', '*', '--flag=v w', ''];
    const { stdout } = await promisify(execFile)('sh', [
      '-c',
      `printf '%s\\n' ${words.map(shellQuote).join(' ')}`,
    ]);
    expect(stdout.split('\n').slice(0, -1)).toEqual(words);
  });
});

describe('virtctl scp', () => {
  it('copies to or from the guest path in [USER@]TYPE/NAME[.NAMESPACE]:PATH', () => {
    const up = scp(['-r', '--preserve', './dir', 'root@vm/web.team-a:/tmp/x', '-i', '/id']);
    expect(up).toMatchObject({
      toGuest: true,
      local: './dir',
      remotePath: '/tmp/x',
      user: 'root',
      recursive: true,
      preserve: true,
      target: { kind: 'vm', name: 'web', namespace: 'team-a' },
    });
    expect(scpArguments(up, 'default', {}, VIRTCTL)).toEqual([
      '-o',
      `ProxyCommand=${PROXY} vm/web.team-a 22`,
      '-i',
      '/id',
      '-r',
      '-p',
      '--',
      './dir',
      'root@vm.web.team-a:/tmp/x',
    ]);
    const down = scp(['vmi/db:/var/log/messages', 'C:messages', '--local-ssh-opts=-O']);
    expect(scpArguments(down, 'prod', {}, VIRTCTL)).toEqual([
      '-o',
      `ProxyCommand=${PROXY} vmi/db.prod 22`,
      '-O',
      '--',
      'vmi.db.prod:/var/log/messages',
      'C:messages',
    ]);
  });

  it('needs exactly one guest path', () => {
    expect(usageError(['scp', 'a', 'b'])).toMatch(/^one of source and destination must be in the guest/);
    expect(usageError(['scp', 'vm/a:/x', 'vm/b:/y'])).toMatch(
      /^one of source and destination must be in the guest/,
    );
    expect(usageError(['scp', 'vm/a:/x'])).toMatch(/^"scp" takes a source and a destination, got vm\/a:\/x/);
  });
});

describe('running the local client', () => {
  const io = () => {
    const stdout = new PassThrough();
    const stderr = new PassThrough();
    let out = '';
    let err = '';
    stdout.on('data', (c: Buffer) => (out += c.toString()));
    stderr.on('data', (c: Buffer) => (err += c.toString()));
    return { io: { stdin: new PassThrough(), stdout, stderr }, text: () => ({ out, err }) };
  };

  it('resolves with the client’s exit code and passes its output through', async () => {
    const { io: streams, text } = io();
    expect(await runLocalClient('sh', ['-c', 'echo out; echo err >&2; exit 7'], streams)).toBe(7);
    expect(text()).toEqual({ out: 'out\n', err: 'err\n' });
  });

  it('says how to install a missing client', async () => {
    const { io: streams } = io();
    const err = await runLocalClient('no-such-ssh-client', [], streams).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VirtctlError);
    expect((err as Error).message).toMatch(/"no-such-ssh-client" client is not installed .*openssh-client/);
  });

  it('real ssh runs the ProxyCommand through the shell with its words intact', async () => {
    // The proxy records its arguments and exits: ssh then fails the connection (255), which is the point.
    const recorder = path.join(dir, 'record proxy.mjs');
    const record = path.join(dir, 'argv.json');
    fs.writeFileSync(
      recorder,
      `import fs from 'node:fs';\nfs.writeFileSync(${JSON.stringify(record)}, JSON.stringify(process.argv.slice(2)));\n`,
    );
    const options = ssh([
      'root@vm/web.team-a',
      '-p',
      '2200',
      '-t-F',
      '--local-ssh-opts=/dev/null',
      '--local-ssh-opts=-oBatchMode=yes',
      '-c',
      'true',
    ]);
    const { io: streams } = io();
    const code = await runLocalClient(
      'ssh',
      sshArguments(options, 'default', { kubeconfig: "/it's 100%/kubeconfig" }, [process.execPath, recorder]),
      streams,
    );
    expect(code).toBe(255);
    expect(JSON.parse(fs.readFileSync(record, 'utf8'))).toEqual([
      'port-forward',
      '--stdio=true',
      'vm/web.team-a',
      '2200',
      '--kubeconfig',
      "/it's 100%/kubeconfig",
    ]);
  });

  it('virtctl ssh runs this same virtctl as the proxy, with the kubeconfig, and exits with ssh’s code', async () => {
    // A kubeconfig whose API server does not listen: the proxy (virtctl port-forward) fails to reach it and says
    // so on stderr; ssh then reports the closed connection and exits 255.
    const kubeconfig = path.join(dir, 'kubeconfig');
    fs.writeFileSync(
      kubeconfig,
      JSON.stringify({
        apiVersion: 'v1',
        kind: 'Config',
        clusters: [
          { name: 'c', cluster: { server: 'http://127.0.0.1:9', 'insecure-skip-tls-verify': true } },
        ],
        users: [{ name: 'u', user: { token: 't' } }],
        contexts: [{ name: 'main', context: { cluster: 'c', user: 'u', namespace: 'team-a' } }],
        'current-context': 'main',
      }),
    );
    const child = spawn(
      process.execPath,
      [
        '--conditions=@kubevirt-ts/source',
        MAIN,
        'ssh',
        'root@vm/web',
        '--kubeconfig',
        kubeconfig,
        '--local-ssh-opts=-F/dev/null',
        '--local-ssh-opts=-oBatchMode=yes',
        '-c',
        'true',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, KUBECONFIG: '' } },
    );
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise((resolve) => child.once('close', resolve));
    expect(code).toBe(255);
    expect(stderr).toContain('cannot reach the Kubernetes API server at http://127.0.0.1:9');
  }, 60_000);
});
