// SSH into a VM, end to end. The test guest runs an SSH server (dropbear) when it has a NIC and lets root in with
// the keys of its cloud-init `ssh_authorized_keys`. First the guest's side alone: ssh from the test runner (inside
// the cluster's network namespace) to the launcher pod's IP, which the masquerade interface forwards to the guest.
// Then `virtctl ssh`, which runs the local ssh client with `virtctl port-forward --stdio` as its ProxyCommand, so
// the connection goes through the API server and virt-api: the guest's host name comes back, the remote command's
// exit code is virtctl's, `virtctl scp` copies a file each way (SFTP), and a key the guest does not know is
// refused. Runs after 08-portforward, which covers the tunnel itself.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
  GUEST_BOOT_TIMEOUT_MS,
  ensureStack,
  kubectlOk,
  launcherPods,
  virtctl,
  waitRunning,
  type CommandResult,
  type Stack,
} from './support/stack.ts';
import { podNetworkVm } from './support/network.ts';

const ns = useTestNamespace('e2e-ssh');
const VM = 'ssh-vm';
const HOSTNAME = 'ssh-guest';
let stack: Stack;
let keys = '';
let podIP = '';

/** ssh options for a throwaway guest: its host key is new on every boot, and only the given key is offered. */
const CLIENT_OPTIONS = [
  '-o StrictHostKeyChecking=no',
  '-o UserKnownHostsFile=/dev/null',
  '-o IdentitiesOnly=yes',
  '-o BatchMode=yes',
  '-o ConnectTimeout=20',
  '-o LogLevel=ERROR',
];

function sshVm(publicKey: string): Record<string, unknown> {
  const userData = ['#cloud-config', `hostname: ${HOSTNAME}`, 'ssh_authorized_keys:', `  - ${publicKey}`, ''];
  return podNetworkVm(VM, { masquerade: {} }, userData.join('\n'));
}

/** The machine's ssh client, straight to an address; resolves with its exit code and output. */
function plainSsh(args: string[]): Promise<CommandResult> {
  return new Promise((resolve) => {
    execFile('ssh', args, { timeout: 60_000 }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

function virtctlSsh(key: string, extra: string[]): ReturnType<typeof virtctl> {
  return virtctl(
    stack,
    [
      'ssh',
      `root@vm/${VM}`,
      '-n',
      ns.name,
      '-i',
      join(keys, key),
      ...CLIENT_OPTIONS.map((o) => `--local-ssh-opts=${o}`),
      ...extra,
    ],
    90_000,
  );
}

function virtctlScp(source: string, destination: string): ReturnType<typeof virtctl> {
  return virtctl(
    stack,
    [
      'scp',
      '-n',
      ns.name,
      '-i',
      join(keys, 'id'),
      ...CLIENT_OPTIONS.map((o) => `--local-ssh-opts=${o}`),
      source,
      destination,
    ],
    90_000,
  );
}

beforeAll(async () => {
  stack = await ensureStack();
  keys = await mkdtemp(join(tmpdir(), 'e2e-ssh-keys-'));
  for (const name of ['id', 'wrong']) {
    await promisify(execFile)('ssh-keygen', [
      '-q',
      '-t',
      'ed25519',
      '-N',
      '',
      '-C',
      `e2e-${name}`,
      '-f',
      join(keys, name),
    ]);
  }
  const publicKey = (await readFile(join(keys, 'id.pub'), 'utf8')).trim();
  await kubectlOk(stack, ['apply', '-n', ns.name, '-f', '-'], stringify(sshVm(publicKey)));
  const vmi = await waitRunning(stack, ns.name, VM);
  const [pod] = await launcherPods(stack, ns.name, vmi.metadata?.uid ?? '');
  podIP = pod?.status?.podIP ?? '';
}, E2E_HOOK_TIMEOUT_MS);

afterAll(async () => {
  if (keys !== '') await rm(keys, { recursive: true, force: true });
});

describe('ssh into a VM', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('the guest’s SSH server lets root in with the key from its user-data, on the pod IP', async () => {
    expect(podIP).toMatch(/^\d+\.\d+\.\d+\.\d+$/);
    // The guest boots under software emulation after the VMI is Running: retry until its server answers.
    const result = await eventually(
      async () => {
        const r = await plainSsh([
          ...CLIENT_OPTIONS.flatMap((o) => o.split(' ')),
          '-i',
          join(keys, 'id'),
          `root@${podIP}`,
          'cat /etc/hostname',
        ]);
        if (r.code !== 0) throw new Error(`ssh root@${podIP} exited ${r.code}: ${r.stderr.trim()}`);
        return r;
      },
      { timeoutMs: GUEST_BOOT_TIMEOUT_MS, intervalMs: 3_000, description: `ssh to the guest on ${podIP}:22` },
    );
    expect(result.stdout.trim()).toBe(HOSTNAME);
  });

  it('virtctl ssh runs a command in the guest through the API server and exits with its code', async () => {
    // The guest answers (the test above). devcluster gives a pod the MAC its IP derives (podMac), so virt-api, which
    // may have talked to an earlier pod with this IP, has no stale neighbour entry to wait out.
    const hostname = await virtctlSsh('id', ['-c', 'cat /etc/hostname']);
    expect({ code: hostname.code, stdout: hostname.stdout.trim() }, hostname.stderr).toEqual({
      code: 0,
      stdout: HOSTNAME,
    });
    const failing = await virtctlSsh('id', ['--command', 'echo about to fail; exit 3']);
    expect({ code: failing.code, stdout: failing.stdout }, failing.stderr).toEqual({
      code: 3,
      stdout: 'about to fail\n',
    });
  });

  it('virtctl scp copies a file into the guest and one out of it (SFTP, through the API server)', async () => {
    const local = join(keys, 'upload.txt');
    await writeFile(local, `uploaded through virtctl scp to ${VM}\n`);
    const up = await virtctlScp(local, `root@vm/${VM}.${ns.name}:/tmp/upload.txt`);
    expect(up.code, up.stderr).toBe(0);
    const readBack = await virtctlSsh('id', ['-c', 'cat /tmp/upload.txt']);
    expect(readBack.stdout).toBe(`uploaded through virtctl scp to ${VM}\n`);
    const down = await virtctlScp(`root@vm/${VM}:/etc/hostname`, join(keys, 'hostname.txt'));
    expect(down.code, down.stderr).toBe(0);
    expect((await readFile(join(keys, 'hostname.txt'), 'utf8')).trim()).toBe(HOSTNAME);
  });

  it('virtctl ssh with a key the guest does not know is refused', async () => {
    const refused = await virtctlSsh('wrong', ['-c', 'cat /etc/hostname']);
    expect(refused.code).toBe(255);
    expect(refused.stdout).toBe('');
    expect(refused.stderr).toMatch(/Permission denied \(publickey\)/);
  });
});
