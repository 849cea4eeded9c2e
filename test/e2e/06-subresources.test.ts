// The subresources.kubevirt.io API on the installed stack (api, controller and handler as pods, the test guest under
// QEMU), for what 01-lifecycle and 03-operations do not already show: the API in discovery and `kubectl
// api-resources`; `virtctl vnc --proxy-only` reaching the guest's VNC server (a full RFB handshake up to the
// ServerInit that names the domain); RBAC (a `view` user reads the VM, `virtctl stop` is forbidden); the same calls
// from a plain HTTP client with the kubeconfig's credentials (REST and a hand-made websocket upgrade to the console);
// the console still opening and reaching the guest after a forced rotation of the CA and with it every certificate
// of virt-api and virt-handler; refused requests (409 with a reason); and `virtctl start --paused`.
import { randomBytes, X509Certificate } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import tls from 'node:tls';
import { eventually, serviceAccountKubeconfig, useTestNamespace } from '@kubevirt-ts/devcluster/testing';
import { ConsoleSession } from '@kubevirt-ts/devcluster/stack';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  GUEST_BOOT_TIMEOUT_MS,
  GUEST_READY_LINE,
  REPO_ROOT,
  SERVICES_NAMESPACE,
  ensureStack,
  startNamedTestVm,
  guestAnswers,
  kubectl,
  kubectlOk,
  virtctl,
  virtctlOk,
  type Stack,
  E2E_HOOK_TIMEOUT_MS,
  E2E_TEST_TIMEOUT_MS,
} from './support/stack.ts';

const ns = useTestNamespace('e2e-subresources');
const NAME = 'sub-vm';
const GROUP_PATH = '/apis/subresources.kubevirt.io/v1';
const FORCE_ROTATION = 'kubevirt-ts.dev/force-rotation';
const SECRETS = {
  ca: 'kubevirt-ca',
  api: 'kubevirt-virt-api-certs',
  handlerServer: 'kubevirt-virt-handler-server-certs',
  handlerClient: 'kubevirt-virt-handler-certs',
};
let stack: Stack;
let tmp: string;
let viewerKubeconfig: string;

const vmPath = (sub: string) => `${GROUP_PATH}/namespaces/${ns.name}/virtualmachines/${NAME}/${sub}`;
const vmiPath = (sub: string) => `${GROUP_PATH}/namespaces/${ns.name}/virtualmachineinstances/${NAME}/${sub}`;

/** The guest's shell on an attached console computes `a + 1` (typed again every 15 s until it answers). */
async function consoleAnswers(session: ConsoleSession, tag: string, timeoutMs = 60_000): Promise<void> {
  const a = 1000 + Math.floor(Math.random() * 1000);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const from = session.text.length;
    session.write(`\recho "${tag}: $((${a} + 1))"\r`);
    try {
      await session.waitFor(`${tag}: ${a + 1}`, 15_000, from);
      return;
    } catch (err) {
      if (session.exitCode !== undefined || Date.now() > deadline) throw err;
    }
  }
}

function attachConsole(kubeconfig = stack.kubeconfig): ConsoleSession {
  const session = ConsoleSession.attach(REPO_ROOT, ns.name, NAME, { kubeconfig });
  if (!session) throw new Error('virtctl is missing (packages/virtctl/src/main.ts)');
  return session;
}

/** The guest answers on a console opened now (retried while it cannot open, e.g. while certificates reload). */
async function freshConsoleAnswers(tag: string, timeoutMs = 120_000): Promise<void> {
  await eventually(
    async () => {
      const session = attachConsole();
      try {
        await consoleAnswers(session, tag);
        return true;
      } finally {
        await session.close();
      }
    },
    { timeoutMs, intervalMs: 2_000, description: `a console opened now to reach the guest (${tag})` },
  );
}

interface PlainResponse {
  status: number;
  body: string;
}

/** The kubeconfig's TLS material and credentials, as any HTTP client would use them. */
async function httpsOptions(): Promise<https.RequestOptions> {
  const opts: https.RequestOptions = {};
  await stack.kc.applyToHTTPSOptions(opts);
  return opts;
}

/** One request with node:https (no Kubernetes client) to the API server of the kubeconfig. */
async function plainRequest(method: string, path: string, body?: unknown): Promise<PlainResponse> {
  const opts = await httpsOptions();
  const url = new URL(stack.kc.getCurrentCluster()?.server ?? '');
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = https.request(
      {
        ...opts,
        host: url.hostname,
        port: url.port,
        method,
        path,
        headers: {
          ...opts.headers,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': 'application/json' }),
        },
        agent: false,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

/** A websocket opened by hand over node:https (RFC 6455 upgrade and framing), speaking plain.kubevirt.io. */
class PlainWebSocket {
  text = '';
  readonly protocol: string | undefined;
  private pending = Buffer.alloc(0);
  private readonly socket: Duplex;
  private constructor(socket: Duplex, protocol: string | undefined) {
    this.socket = socket;
    this.protocol = protocol;
    socket.on('data', (chunk: Buffer) => this.receive(chunk));
  }

  static async open(path: string, protocol: string): Promise<PlainWebSocket> {
    const opts = await httpsOptions();
    const url = new URL(stack.kc.getCurrentCluster()?.server ?? '');
    return new Promise((resolve, reject) => {
      const req = https.request({
        ...opts,
        host: url.hostname,
        port: url.port,
        method: 'GET',
        path,
        agent: false,
        headers: {
          ...opts.headers,
          connection: 'Upgrade',
          upgrade: 'websocket',
          'sec-websocket-version': '13',
          'sec-websocket-key': randomBytes(16).toString('base64'),
          'sec-websocket-protocol': protocol,
        },
      });
      req.on('upgrade', (res: IncomingMessage, socket: Duplex, head: Buffer) => {
        const ws = new PlainWebSocket(socket, res.headers['sec-websocket-protocol']);
        if (head.length > 0) ws.receive(head);
        resolve(ws);
      });
      req.on('response', (res: IncomingMessage) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => reject(new Error(`upgrade refused: HTTP ${res.statusCode ?? 0}: ${text}`)));
      });
      req.on('error', reject);
      req.end();
    });
  }

  /** Server frames are unmasked; data frames (text or binary, with continuations) are appended to `text`. */
  private receive(chunk: Buffer): void {
    this.pending = Buffer.concat([this.pending, chunk]);
    for (;;) {
      if (this.pending.length < 2) return;
      const opcode = this.pending[0]! & 0x0f;
      let length = this.pending[1]! & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (this.pending.length < 4) return;
        length = this.pending.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (this.pending.length < 10) return;
        length = Number(this.pending.readBigUInt64BE(2));
        offset = 10;
      }
      if (this.pending.length < offset + length) return;
      const payload = this.pending.subarray(offset, offset + length);
      this.pending = this.pending.subarray(offset + length);
      if (opcode === 0 || opcode === 1 || opcode === 2) this.text += payload.toString('utf8');
    }
  }

  /** A masked binary frame, as a client must send. */
  send(data: string, opcode = 0x2): void {
    const payload = Buffer.from(data);
    const mask = randomBytes(4);
    const header =
      payload.length < 126
        ? Buffer.from([0x80 | opcode, 0x80 | payload.length])
        : Buffer.from([0x80 | opcode, 0x80 | 126, payload.length >> 8, payload.length & 0xff]);
    const masked = Buffer.from(payload.map((b, i) => b ^ mask[i % 4]!));
    this.socket.write(Buffer.concat([header, mask, masked]));
  }

  async waitFor(needle: string, timeoutMs: number, from = 0): Promise<void> {
    await eventually(() => this.text.slice(from).includes(needle), {
      timeoutMs,
      intervalMs: 100,
      description: `${JSON.stringify(needle)} on the websocket; it carried: ${this.text.slice(-500)}`,
    });
  }

  close(): void {
    this.send('', 0x8);
    this.socket.end();
  }
}

/** Reads exactly `n` bytes from a socket. */
function readBytes(socket: net.Socket, n: number, timeoutMs = 30_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const tryRead = (): void => {
      const chunk = socket.read(n) as Buffer | null;
      if (chunk !== null) {
        cleanup();
        resolve(chunk);
      }
    };
    const onEnd = (): void => {
      cleanup();
      reject(new Error(`the VNC port closed before ${n} more bytes came`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${n} bytes from the VNC port within ${timeoutMs} ms`));
    }, timeoutMs);
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off('readable', tryRead);
      socket.off('end', onEnd);
      socket.off('close', onEnd);
    };
    socket.on('readable', tryRead);
    socket.once('end', onEnd);
    socket.once('close', onEnd);
    tryRead();
  });
}

async function secretCert(name: string): Promise<X509Certificate> {
  const secret = await stack.core.readNamespacedSecret({ name, namespace: SERVICES_NAMESPACE });
  return new X509Certificate(Buffer.from(secret.data?.['tls.crt'] ?? '', 'base64'));
}

/** The certificate a virt-handler serves on its gRPC port (the TLS handshake only; it then wants our client cert). */
function servedCertificate(host: string, port: number): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host, port, rejectUnauthorized: false, ALPNProtocols: ['h2'] }, () => {
      const raw = socket.getPeerCertificate().raw;
      socket.destroy();
      resolve(new X509Certificate(raw));
    });
    socket.on('error', reject);
  });
}

async function viewerKubeconfigFile(): Promise<string> {
  const account = 'viewer';
  const file = await serviceAccountKubeconfig(stack.kc, ns.name, account, join(tmp, 'viewer.kubeconfig'));
  await kubectlOk(stack, [
    'create',
    'rolebinding',
    'viewer-view',
    '--clusterrole=view',
    `--serviceaccount=${ns.name}:${account}`,
    '-n',
    ns.name,
  ]);
  return file;
}

const pausedCondition = async (): Promise<string | undefined> =>
  (await stack.vms.vmi(ns.name, NAME))?.status?.conditions?.find((c) => c.type === 'Paused')?.status;

beforeAll(async () => {
  stack = await ensureStack();
  tmp = mkdtempSync(join(tmpdir(), 'e2e-subresources-'));
  [, viewerKubeconfig] = await Promise.all([startNamedTestVm(stack, ns.name, NAME), viewerKubeconfigFile()]);
  // The guest booted to its shell, so later tests find it answering.
  await guestAnswers(stack, ns.name, NAME);
}, E2E_HOOK_TIMEOUT_MS);

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

describe('the subresource API on the installed stack', { timeout: E2E_TEST_TIMEOUT_MS }, () => {
  it('is registered with the API server: api-versions, api-resources and its discovery document', async () => {
    expect((await kubectlOk(stack, ['api-versions'])).split('\n')).toContain('subresources.kubevirt.io/v1');
    // kubectl api-resources lists the group's top-level resources (subresources, with a slash, it leaves out).
    const resources = await kubectlOk(stack, ['api-resources', '--api-group=subresources.kubevirt.io']);
    expect(resources).toMatch(
      /^expand-vm-spec\s+subresources\.kubevirt\.io\/v1\s+true\s+VirtualMachine\s*$/m,
    );
    const discovery = JSON.parse(await kubectlOk(stack, ['get', '--raw', GROUP_PATH])) as {
      resources: { name: string; verbs: string[] }[];
    };
    const verbs = Object.fromEntries(discovery.resources.map((r) => [r.name, r.verbs]));
    expect(verbs).toMatchObject({
      'virtualmachines/start': ['update'],
      'virtualmachines/stop': ['update'],
      'virtualmachines/restart': ['update'],
      'virtualmachineinstances/console': ['get'],
      'virtualmachineinstances/vnc': ['get'],
      'virtualmachineinstances/pause': ['update'],
      'virtualmachineinstances/unpause': ['update'],
    });
    // virt-api answers through the aggregator.
    expect(await virtctlOk(stack, ['version'])).toMatch(/^Server Version: v\d+\.\d+\.\d+/m);
  });

  it('virtctl vnc --proxy-only: the port speaks RFB with the guest’s VNC server up to its ServerInit', async () => {
    const proxy = await virtctlVncProxy();
    const socket = net.connect(proxy.port, '127.0.0.1');
    try {
      await new Promise<void>((resolve, reject) => {
        socket.once('connect', resolve);
        socket.once('error', reject);
      });
      const greeting = (await readBytes(socket, 12)).toString('latin1');
      expect(greeting).toMatch(/^RFB 003\.00\d\n$/);
      socket.write('RFB 003.008\n');
      const count = (await readBytes(socket, 1))[0]!;
      expect(count).toBeGreaterThan(0);
      const types = [...(await readBytes(socket, count))];
      expect(types).toContain(1); // None: the launcher's VNC socket is local to the pod, virt-api guards access
      socket.write(Buffer.from([1]));
      expect((await readBytes(socket, 4)).readUInt32BE(0)).toBe(0); // SecurityResult OK
      socket.write(Buffer.from([1])); // ClientInit, shared
      const init = await readBytes(socket, 24);
      const width = init.readUInt16BE(0);
      const height = init.readUInt16BE(2);
      const name = (await readBytes(socket, init.readUInt32BE(20))).toString('utf8');
      expect(width).toBeGreaterThan(0);
      expect(height).toBeGreaterThan(0);
      // QEMU names the display after the domain, <namespace>_<name>: this is the VMI's own guest.
      expect(name).toContain(`${ns.name}_${NAME}`);
    } finally {
      socket.destroy();
      await proxy.stop();
    }
  });

  it('a user bound only to view reads the VM but gets a clear forbidden from virtctl stop', async () => {
    // kube-controller-manager folds kubevirt.io:view into view asynchronously.
    const read = await eventually(
      async () => {
        const r = await kubectl(stack, ['get', 'vm', NAME, '-o', 'name', '--kubeconfig', viewerKubeconfig]);
        return r.code === 0 ? r.stdout : undefined;
      },
      { timeoutMs: 60_000, description: 'the view user to read the VM' },
    );
    expect(read.trim()).toBe(`virtualmachine.kubevirt.io/${NAME}`);
    const denied = await virtctlAs(viewerKubeconfig, ['stop', NAME, '-n', ns.name]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toContain(
      `virtctl: forbidden: you may not stop VirtualMachine ${ns.name}/${NAME}: this needs verb "update" on ` +
        `"virtualmachines/stop" in API group "subresources.kubevirt.io"`,
    );
    expect(denied.stderr).toContain(
      `User "system:serviceaccount:${ns.name}:viewer" cannot update resource "virtualmachines/stop"`,
    );
    const consoleDenied = await virtctlAs(viewerKubeconfig, ['console', NAME, '-n', ns.name]);
    expect(consoleDenied.code).toBe(1);
    expect(consoleDenied.stderr).toContain('forbidden: you may not open the console of');
    const vm = await stack.vms.vm(ns.name, NAME);
    expect(vm?.spec?.runStrategy).toBe('Always');
    expect((await stack.vms.vmi(ns.name, NAME))?.status?.phase).toBe('Running');
  });

  it('a plain HTTP client with the kubeconfig’s credentials calls the same subresources', async () => {
    // REST: a start of a running VM is refused with why; pause and unpause change the VMI; guest info answers.
    const start = await plainRequest('PUT', vmPath('start'), {});
    expect(start.status).toBe(409);
    expect((JSON.parse(start.body) as { message: string; reason: string }).message).toContain(
      'VM is already running',
    );
    const pause = await plainRequest('PUT', vmiPath('pause'), {});
    expect(pause.status, pause.body).toBeLessThan(300);
    await eventually(async () => (await pausedCondition()) === 'True', {
      timeoutMs: 60_000,
      description: 'the VMI condition Paused=True',
    });
    const again = await plainRequest('PUT', vmiPath('pause'), {});
    expect(again.status).toBe(409);
    expect(again.body).toContain('VMI is already paused');
    const unpause = await plainRequest('PUT', vmiPath('unpause'), {});
    expect(unpause.status, unpause.body).toBeLessThan(300);
    await eventually(async () => (await pausedCondition()) !== 'True', {
      timeoutMs: 60_000,
      description: 'the Paused condition to go',
    });
    const info = await eventually(
      async () => {
        const r = await plainRequest('GET', vmiPath('guestosinfo'));
        return r.status === 200 ? (JSON.parse(r.body) as { os?: { id?: string } }) : undefined;
      },
      { timeoutMs: 90_000, intervalMs: 2_000, description: 'guestosinfo to answer 200' },
    );
    expect(info.os?.id).toBe('kubevirt-ts-guest');

    // The console: a websocket upgrade by hand; the guest computes the answer, so it is not an echo.
    const ws = await PlainWebSocket.open(vmiPath('console'), 'plain.kubevirt.io');
    try {
      expect(ws.protocol).toBe('plain.kubevirt.io');
      ws.send('\r');
      const from = ws.text.length;
      ws.send('echo "plain client: $((9 * 5))"\r');
      await ws.waitFor('plain client: 45', 30_000, from);
    } finally {
      ws.close();
    }
  });

  it('after a forced rotation of the CA and every certificate, the console still opens and reaches the guest', async () => {
    const oldCa = await secretCert(SECRETS.ca);
    await kubectlOk(stack, [
      'annotate',
      'secret',
      SECRETS.ca,
      '-n',
      SERVICES_NAMESPACE,
      `${FORCE_ROTATION}=e2e`,
      '--overwrite',
    ]);
    const newCa = await eventually(
      async () => {
        const ca = await secretCert(SECRETS.ca);
        return ca.fingerprint256 !== oldCa.fingerprint256 ? ca : undefined;
      },
      { timeoutMs: 60_000, description: 'virt-controller to rotate the CA' },
    );
    for (const name of [SECRETS.api, SECRETS.handlerServer, SECRETS.handlerClient]) {
      await eventually(async () => (await secretCert(name)).checkIssued(newCa), {
        timeoutMs: 60_000,
        description: `${name} reissued under the new CA`,
      });
    }
    // The aggregator trusts the new CA for virt-api (the APIService's bundle), and virt-api answers through it.
    await eventually(
      async () => {
        const bundle = await kubectlOk(stack, [
          'get',
          'apiservice',
          'v1.subresources.kubevirt.io',
          '-o',
          'jsonpath={.spec.caBundle}',
        ]);
        return Buffer.from(bundle, 'base64').toString().includes(newCa.toString().trim());
      },
      { timeoutMs: 60_000, description: 'the new CA in the APIService caBundle' },
    );
    expect(await virtctlOk(stack, ['version'])).toMatch(/^Server Version: /m);
    // Every virt-handler serves its reissued certificate without a restart.
    const handlers = await stack.core.listNamespacedPod({
      namespace: SERVICES_NAMESPACE,
      labelSelector: 'app.kubernetes.io/component=handler',
    });
    expect(handlers.items.length).toBeGreaterThan(0);
    for (const pod of handlers.items) {
      const port = pod.spec?.containers[0]?.ports?.find((p) => p.name === 'grpc')?.containerPort;
      const ip = pod.status?.podIP;
      expect(port, `the grpc port of ${pod.metadata?.name}`).toBeDefined();
      expect(ip, `the IP of ${pod.metadata?.name}`).toBeDefined();
      await eventually(async () => (await servedCertificate(ip!, port!)).checkIssued(newCa), {
        timeoutMs: 60_000,
        description: `virt-handler ${pod.metadata?.name} to serve a certificate of the new CA`,
      });
    }
    await freshConsoleAnswers('after rotation');
  });

  it('stop, a refused second stop, then start --paused: the VMI runs paused until unpaused', async () => {
    const oldUid = (await stack.vms.vmi(ns.name, NAME))?.metadata?.uid;
    await virtctlOk(stack, ['stop', NAME, '-n', ns.name]);
    await eventually(
      async () =>
        (await stack.vms.vm(ns.name, NAME))?.status?.printableStatus === 'Stopped' &&
        (await stack.vms.vmi(ns.name, NAME)) === undefined,
      { timeoutMs: 120_000, intervalMs: 1_000, description: 'the VM to be Stopped without a VMI' },
    );
    const second = await virtctl(stack, ['stop', NAME, '-n', ns.name]);
    expect(second.code).toBe(1);
    expect(second.stderr).toContain(`cannot stop VirtualMachine ${ns.name}/${NAME}: VM is not running`);

    await virtctlOk(stack, ['start', NAME, '--paused', '-n', ns.name]);
    const vmi = await eventually(
      async () => {
        const v = await stack.vms.vmi(ns.name, NAME);
        return v?.metadata?.uid !== oldUid &&
          v?.status?.phase === 'Running' &&
          v.status.conditions?.some((c) => c.type === 'Paused' && c.status === 'True')
          ? v
          : undefined;
      },
      { timeoutMs: 240_000, intervalMs: 1_000, description: 'a new VMI, Running and Paused' },
    );
    expect(vmi.metadata?.uid).not.toBe(oldUid);
    await eventually(async () => (await stack.vms.vm(ns.name, NAME))?.status?.printableStatus === 'Paused', {
      timeoutMs: 60_000,
      description: 'the VM to show Paused',
    });
    expect((await stack.vms.vm(ns.name, NAME))?.spec?.runStrategy).toBe('Always');

    // Paused from its first instruction: the console stays silent; unpaused, the guest boots.
    const session = attachConsole();
    try {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      expect(session.text).not.toContain(GUEST_READY_LINE);
      await virtctlOk(stack, ['unpause', 'vm', NAME, '-n', ns.name]);
      await session.waitFor(GUEST_READY_LINE, GUEST_BOOT_TIMEOUT_MS);
      await consoleAnswers(session, 'unpaused');
    } finally {
      await session.close();
    }
  });
});

function virtctlAs(kubeconfig: string, args: string[]) {
  return virtctl({ ...stack, kubeconfig }, args);
}

/** `virtctl vnc --proxy-only` running: the port it printed, and a way to end it. */
async function virtctlVncProxy(): Promise<{ port: number; stop: () => Promise<void> }> {
  const { spawn } = await import('node:child_process');
  const child = spawn(
    process.execPath,
    [
      '--conditions=@kubevirt-ts/source',
      join(REPO_ROOT, 'packages', 'virtctl', 'src', 'main.ts'),
      'vnc',
      NAME,
      '--proxy-only',
      '-n',
      ns.name,
    ],
    { env: { ...process.env, KUBECONFIG: stack.kubeconfig }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await eventually(
    () => {
      if (child.exitCode !== null) throw new Error(`virtctl vnc exited (${child.exitCode}): ${stderr}`);
      const line = /^\{.*\}$/m.exec(stdout)?.[0];
      return line === undefined ? undefined : (JSON.parse(line) as { port: number }).port;
    },
    { timeoutMs: 60_000, intervalMs: 100, description: 'virtctl vnc --proxy-only to print its port' },
  );
  return {
    port,
    stop: async () => {
      if (child.exitCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
