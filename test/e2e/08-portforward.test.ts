// `virtctl port-forward` through the installed stack: API server → virt-api's `portforward` subresource → virt-api
// dials the VMI's pod IP → the launcher pod's masquerade rules → the test guest's web server on port 80. A local
// listener answers HTTP GETs with the guest's page, each connection through its own tunnel; `--stdio` carries an
// HTTP request from stdin and the answer to stdout (what `virtctl ssh` builds on) with nothing else on stdout; a
// port the masquerade interface does not list, a stopped VM and a missing VMI fail with errors that say why; the
// chart's aggregated roles give port-forward to edit and admin but not to view.
import { spawn, type ChildProcess } from 'node:child_process';
import http from 'node:http';
import net from 'node:net';
import { join } from 'node:path';
import { AuthorizationV1Api } from '@kubernetes/client-node';
import { eventually, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { runVirtctl } from '@kubevirt-ts/devcluster/stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
  GUEST_BOOT_TIMEOUT_MS,
  REPO_ROOT,
  ensureStack,
  SERVICES_NAMESPACE,
  kubectlOk,
  testVm,
  virtctl,
  waitRunning,
  type Stack,
} from './support/stack.ts';
import { podNetworkVm } from './support/network.ts';

const ns = useTestNamespace('e2e-portforward');
const VM = 'pf-vm';
const HOSTNAME = 'pf-guest';
const PAGE = `kubevirt-ts-guest ${HOSTNAME}`;
let stack: Stack;
const children: ChildProcess[] = [];

/** The test guest with a masquerade interface that forwards only port 80 (its httpd also listens on 8080). */
const masqueradeVm = () =>
  podNetworkVm(
    VM,
    { masquerade: {}, ports: [{ name: 'http', port: 80 }] },
    `#cloud-config\nhostname: ${HOSTNAME}\n`,
  );

/** `virtctl port-forward ARGS` left running: what it printed so far, and how to stop it. */
function startPortForward(args: string[]): { child: ChildProcess; out: () => string; err: () => string } {
  const child = spawn(
    process.execPath,
    [
      '--conditions=@kubevirt-ts/source',
      join(REPO_ROOT, 'packages', 'virtctl', 'src', 'main.ts'),
      'port-forward',
      ...args,
    ],
    { env: { ...process.env, KUBECONFIG: stack.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
  return { child, out: () => out, err: () => err };
}

function stop(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null) return Promise.resolve(child.exitCode);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGINT');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  return exited.finally(() => clearTimeout(timer));
}

/** One HTTP GET to the local end of the forward: status and body, or the error. */
function get(port: number): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ error: e.message }));
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 30 s')));
    req.on('error', (e) => resolve({ error: e.message }));
  });
}

/** kubevirt_portforward_active_tunnels for the VM, summed over the virt-api pods' /metrics. */
async function activeTunnels(): Promise<number> {
  const pods = await stack.core.listNamespacedPod({
    namespace: SERVICES_NAMESPACE,
    labelSelector: 'kubevirt.io=virt-api',
  });
  let total = 0;
  for (const pod of pods.items) {
    const port = pod.spec?.containers
      .flatMap((c) => c.ports ?? [])
      .find((p) => p.name === 'health')?.containerPort;
    if (pod.status?.phase !== 'Running' || !pod.status.podIP || port === undefined) continue;
    const text = await fetch(`http://${pod.status.podIP}:${port}/metrics`).then((r) => r.text());
    const line = text
      .split('\n')
      .find((l) => l.startsWith(`kubevirt_portforward_active_tunnels{namespace="${ns.name}",name="${VM}"}`));
    total += line === undefined ? 0 : Number(line.split(' ').pop());
  }
  return total;
}

function portForwardStdio(target: string, port: string, input: string) {
  return runVirtctl(REPO_ROOT, ['port-forward', '--stdio=true', target, port], {
    kubeconfig: stack.kubeconfig,
    timeoutMs: 90_000,
    input,
  });
}

beforeAll(async () => {
  stack = await ensureStack();
  await kubectlOk(stack, ['apply', '-n', ns.name, '-f', '-'], stringify(masqueradeVm()));
  await waitRunning(stack, ns.name, VM);
}, E2E_HOOK_TIMEOUT_MS);

afterAll(async () => {
  await Promise.all(children.map((c) => stop(c)));
});

describe('virtctl port-forward to a masquerade VM', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('a local port answers HTTP GETs with the guest’s page, each connection through its own tunnel', async () => {
    const forward = startPortForward([`vm/${VM}.${ns.name}`, ':80']);
    const port = await eventually(
      () => {
        if (forward.child.exitCode !== null) {
          throw new Error(`virtctl port-forward exited (${forward.child.exitCode}): ${forward.err()}`);
        }
        const match = /^Forwarding from 127\.0\.0\.1:(\d+) -> 80$/m.exec(forward.out());
        return Promise.resolve(match === null ? undefined : Number(match[1]));
      },
      { timeoutMs: 60_000, intervalMs: 200, description: 'virtctl port-forward to listen' },
    );
    // The guest boots under software emulation: until its httpd listens, each connection is refused at the guest
    // and virtctl says so on stderr; then the page arrives.
    const first = await eventually(
      async () => {
        const r = await get(port);
        return 'status' in r && r.status === 200 ? r : undefined;
      },
      {
        timeoutMs: GUEST_BOOT_TIMEOUT_MS,
        intervalMs: 2_000,
        description: `the guest's page through 127.0.0.1:${port}`,
      },
    );
    expect(first.body.trim()).toBe(PAGE);
    const again = await Promise.all([get(port), get(port)]);
    expect(again).toEqual([
      { status: 200, body: `${PAGE}\n` },
      { status: 200, body: `${PAGE}\n` },
    ]);
    // An open connection is one tunnel in virt-api's metrics, and none once it closes.
    const held = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => held.once('connect', resolve));
    await eventually(async () => ((await activeTunnels()) === 1 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 500,
      description: 'kubevirt_portforward_active_tunnels to count the open connection',
    });
    held.end();
    await eventually(async () => ((await activeTunnels()) === 0 ? true : undefined), {
      timeoutMs: 30_000,
      intervalMs: 500,
      description: 'kubevirt_portforward_active_tunnels to drop back to 0',
    });
    expect(await stop(forward.child)).toBe(0);
  });

  it('--stdio carries a request from stdin and the answer to stdout, and nothing else on stdout', async () => {
    const r = await portForwardStdio(`vm/${VM}.${ns.name}`, '80', 'GET / HTTP/1.0\r\nHost: guest\r\n\r\n');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^HTTP\/1\.[01] 200 OK\r\n/);
    expect(r.stdout.endsWith(`\r\n\r\n${PAGE}\n`)).toBe(true);
    // The VMI form and KubeVirt's TYPE/NAME/NAMESPACE reach the same guest.
    const viaVmi = await portForwardStdio(`vmi/${VM}/${ns.name}`, '80/tcp', 'GET / HTTP/1.0\r\n\r\n');
    expect(viaVmi.stdout).toContain(PAGE);
  });

  it('a port the masquerade interface does not list fails, naming the interface’s port list', async () => {
    const r = await portForwardStdio(`vm/${VM}.${ns.name}`, '8080', 'GET / HTTP/1.0\r\n\r\n');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(
      `cannot forward TCP port 8080 of VirtualMachine ${ns.name}/${VM}: dialing VM:`,
    );
    expect(r.stderr).toContain(
      'the masquerade interface "default" forwards only the ports in spec.domain.devices.interfaces[0].ports (80/TCP)',
    );
  });
});

describe('port-forward refusals and RBAC', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('a stopped VM answers 409 "VMI is not started", with how to start it; a missing VMI is not found', async () => {
    await kubectlOk(stack, ['apply', '-n', ns.name, '-f', '-'], stringify(testVm('pf-stopped', 'Halted')));
    const r = await portForwardStdio(`vm/pf-stopped.${ns.name}`, '80', '');
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe(
      `virtctl: cannot forward TCP port 80 of VirtualMachine ${ns.name}/pf-stopped: VMI is not started (the VM ` +
        `is not running; start it with: virtctl start pf-stopped -n ${ns.name})\n`,
    );
    const missing = await virtctl(stack, ['port-forward', '--stdio', `vmi/pf-stopped.${ns.name}`, '80']);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `VirtualMachineInstance "pf-stopped" not found in namespace "${ns.name}"`,
    );
    const badPort = await virtctl(stack, ['port-forward', `vm/${VM}.${ns.name}`, '70000']);
    expect(badPort.code).toBe(2);
    expect(badPort.stderr).toContain('the port in "70000" must be a number from 1 to 65535, got "70000"');
  });

  it('edit and admin may port-forward to VMs and VMIs, view may not', async () => {
    for (const role of ['view', 'edit', 'admin']) {
      await stack.core.createNamespacedServiceAccount({
        namespace: ns.name,
        body: { metadata: { name: `pf-${role}` } },
      });
      await kubectlOk(stack, [
        'create',
        'rolebinding',
        `pf-${role}`,
        `--clusterrole=${role}`,
        `--serviceaccount=${ns.name}:pf-${role}`,
        '-n',
        ns.name,
      ]);
    }
    // A SubjectAccessReview asks what the API server's authorizer answers (`kubectl auth can-i` cannot name a
    // resource that exists only as subresources of an aggregated group).
    const authorization = stack.kc.makeApiClient(AuthorizationV1Api);
    const canI = async (role: string, resource: string): Promise<string> => {
      const review = await authorization.createSubjectAccessReview({
        body: {
          apiVersion: 'authorization.k8s.io/v1',
          kind: 'SubjectAccessReview',
          spec: {
            user: `system:serviceaccount:${ns.name}:pf-${role}`,
            groups: ['system:serviceaccounts', `system:serviceaccounts:${ns.name}`, 'system:authenticated'],
            resourceAttributes: {
              namespace: ns.name,
              verb: 'get',
              group: 'subresources.kubevirt.io',
              resource,
              subresource: 'portforward',
              name: VM,
            },
          },
        },
      });
      return review.status?.allowed === true ? 'yes' : 'no';
    };
    // kube-controller-manager folds the kubevirt.io roles into admin, edit and view asynchronously.
    await eventually(async () => ((await canI('edit', 'virtualmachines')) === 'yes' ? true : undefined), {
      timeoutMs: 60_000,
      intervalMs: 1_000,
      description: 'edit to be allowed virtualmachines/portforward',
    });
    for (const resource of ['virtualmachines', 'virtualmachineinstances']) {
      expect(await canI('edit', resource), `edit ${resource}`).toBe('yes');
      expect(await canI('admin', resource), `admin ${resource}`).toBe('yes');
      expect(await canI('view', resource), `view ${resource}`).toBe('no');
    }
  });
});
