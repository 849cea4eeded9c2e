// The subresources.kubevirt.io/v1 endpoints of virt-api (reference §5.1), behind the aggregation layer: each
// request is authenticated by the server (front-proxy certificate), authorized here with a SubjectAccessReview,
// then either written to the VM by virt-api itself (start, stop, restart: state-change.ts decides the patch) or
// handed to the virt-handler of the VMI's node over handler.v1 (pause, unpause, softreboot, guestosinfo, and the
// console and VNC byte streams, which arrive as websocket upgrades). Port-forward is also a websocket, but virt-api
// dials the guest itself (portforward.ts).
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import { RpcError, statusName, type HandlerConnection } from '@kubevirt-ts/proto';
import { gauge, type Logger, type Registry } from '@kubevirt-ts/runtime';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import type { WebSocket } from 'ws';
import { accessDenied, type Authorizer } from './authorizer.ts';
import {
  SubresourceError,
  asSubresourceError,
  badRequest,
  conflict,
  forbidden,
  internalError,
  notFound,
} from './errors.ts';
import { handlerFailure, type HandlerDialer, type HandlerEndpoint, type HandlerLocator } from './handler.ts';
import {
  dialFailure,
  dialGuest,
  guestAddress,
  validateForPortForward,
  vmiOfVM,
  type GuestDialer,
} from './portforward.ts';
import {
  dryRunOptions,
  parseBody,
  parseSubresourcePath,
  portForwardTarget,
  rbacSubresource,
  rbacVerb,
  restartOptions,
  routeOf,
  startOptions,
  stopOptions,
  type Route,
  type SubresourcePath,
} from './request.ts';
import { planRestart, planStart, planStop, type StateChangePlan } from './state-change.ts';
import type { ObjectStore } from './store.ts';
import { acceptUpgrade, bridge, closeReason, createWebSocketServer, rejectUpgrade } from './websocket.ts';

/** Who is asking, as the front proxy said. */
export interface RequestUser {
  user: string;
  groups: string[];
  extra: Record<string, string[]>;
}

export interface SubresourceApiOptions {
  /** VMs and VMIs: KubernetesObjectStore in the service. */
  store: ObjectStore;
  log: Logger;
  authorizer: Authorizer;
  locator: Pick<HandlerLocator, 'find'>;
  dialer: Pick<HandlerDialer, 'connect'>;
  /** Opens port-forward connections to guests; default: TCP/UDP to the VMI's pod IP (portforward.ts). */
  dialGuest?: GuestDialer;
  registry?: Registry;
  /** Largest options body accepted. Default 64 KiB (they are a few bytes). */
  maxBodyBytes?: number;
}

const VM_NOT_RUNNING = 'VM is not running';
const VMI_NOT_RUNNING = 'VMI is not running';

function hasCondition(vmi: VirtualMachineInstance, type: string, status?: string): boolean {
  return (vmi.status?.conditions ?? []).some(
    (c) => c.type === type && (status === undefined || c.status === status),
  );
}

function readBody(req: IncomingMessage, limit: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new SubresourceError(413, 'RequestEntityTooLarge', `request body over ${limit} bytes`));
        req.destroy();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function send(res: ServerResponse, code: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(code, { 'content-length': 0 });
    res.end();
    return;
  }
  const text = JSON.stringify(body);
  res.writeHead(code, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/** Checks before proxying to the handler (KubeVirt's validate functions), by route. */
type Validation = (vmi: VirtualMachineInstance, name: string) => void;

const validations: Partial<Record<Route, Validation>> = {
  'virtualmachineinstances/pause': (vmi, name) => {
    if (vmi.status?.phase !== 'Running') throw conflict('virtualmachineinstance', name, VM_NOT_RUNNING);
    const probe = vmi.spec.livenessProbe as { guestAgentPing?: unknown } | undefined;
    if (probe !== undefined && probe.guestAgentPing === undefined) {
      throw forbidden(
        'virtualmachineinstance',
        name,
        'Pausing VMIs with a non-GuestAgentPing LivenessProbe is not supported',
      );
    }
    if (hasCondition(vmi, 'Paused')) throw conflict('virtualmachineinstance', name, 'VMI is already paused');
  },
  'virtualmachineinstances/unpause': (vmi, name) => {
    if (vmi.status?.phase !== 'Running') throw conflict('virtualmachineinstance', name, VMI_NOT_RUNNING);
    if (!hasCondition(vmi, 'Paused')) throw conflict('virtualmachineinstance', name, 'VMI is not paused');
  },
  'virtualmachineinstances/softreboot': (vmi, name) => {
    if (vmi.status?.phase !== 'Running') throw conflict('virtualmachineinstance', name, VM_NOT_RUNNING);
    if (hasCondition(vmi, 'Paused', 'True')) throw conflict('virtualmachineinstance', name, 'VMI is paused');
    const acpi = vmi.spec.domain.features?.acpi?.enabled;
    if (!hasCondition(vmi, 'AgentConnected') && acpi === false) {
      throw conflict(
        'virtualmachineinstance',
        name,
        'VMI neither have the agent connected nor the ACPI feature enabled',
      );
    }
  },
  'virtualmachineinstances/guestosinfo': (vmi, name) => {
    if (vmi.status?.phase !== 'Running') throw conflict('virtualmachineinstance', name, VMI_NOT_RUNNING);
    if (!hasCondition(vmi, 'AgentConnected')) {
      throw conflict('virtualmachineinstance', name, 'VMI does not have guest agent connected');
    }
  },
  'virtualmachineinstances/console': (vmi, name) => {
    if (vmi.spec.domain.devices.autoattachSerialConsole === false) {
      throw badRequest('No serial consoles are present.');
    }
    if (vmi.status?.phase === 'Failed')
      throw conflict('virtualmachineinstance', name, 'VMI is in failed status');
    if (vmi.status?.phase !== 'Running') throw badRequest(VMI_NOT_RUNNING);
  },
  'virtualmachineinstances/vnc': (vmi) => {
    if (vmi.spec.domain.devices.autoattachGraphicsDevice === false) {
      throw badRequest('No graphics devices are present.');
    }
    if (vmi.status?.phase !== 'Running') throw badRequest(VMI_NOT_RUNNING);
  },
};

export class SubresourceApi {
  readonly #o: SubresourceApiOptions;
  readonly #log: Logger;
  readonly #wss = createWebSocketServer();
  readonly #sessions = new Set<WebSocket>();
  readonly #active: ((labels: { namespace: string; vmi: string }, delta: number) => void) | undefined;
  readonly #activeVnc: ((labels: { namespace: string; vmi: string }, delta: number) => void) | undefined;
  readonly #activeTunnels: ((labels: { namespace: string; name: string }, delta: number) => void) | undefined;

  constructor(opts: SubresourceApiOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ component: 'subresources' });
    if (opts.registry !== undefined) {
      const consoles = gauge(opts.registry, {
        name: 'kubevirt_console_active_connections',
        help: 'Open serial console connections, by VMI',
        labelNames: ['namespace', 'vmi'],
      });
      const vncs = gauge(opts.registry, {
        name: 'kubevirt_vnc_active_connections',
        help: 'Open VNC connections, by VMI',
        labelNames: ['namespace', 'vmi'],
      });
      // KubeVirt's name and labels, so its dashboards and alerts read ours.
      const tunnels = gauge(opts.registry, {
        name: 'kubevirt_portforward_active_tunnels',
        help: 'Open port-forward tunnels (websockets carrying one guest connection each), by namespace and VMI name',
        labelNames: ['namespace', 'name'],
      });
      this.#active = (labels, delta) => consoles.inc(labels, delta);
      this.#activeVnc = (labels, delta) => vncs.inc(labels, delta);
      this.#activeTunnels = (labels, delta) => tunnels.inc(labels, delta);
    }
  }

  /** Open console/VNC/port-forward sessions. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Ends every open console/VNC/port-forward session (shutdown): the clients see the websocket close. */
  closeSessions(): void {
    for (const ws of this.#sessions) ws.close(1001, 'virt-api is shutting down');
  }

  /** A plain (non-upgrade) request under /apis/subresources.kubevirt.io/v1/namespaces/. */
  async handle(req: IncomingMessage, res: ServerResponse, who: RequestUser): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'https://virt-api');
    let path: SubresourcePath | undefined;
    try {
      path = this.#parse(url.pathname);
      const route = routeOf(path, method, false);
      await this.#authorize(who, path, method);
      const body = method === 'PUT' ? parseBody(await readBody(req, this.#o.maxBodyBytes ?? 65_536)) : {};
      const log = this.#log.child({
        user: who.user,
        namespace: path.namespace,
        name: path.name,
        action: path.subresource,
      });
      switch (route) {
        case 'virtualmachines/start': {
          const opts = startOptions(body, url.searchParams);
          await this.#changeState(path, log, (vm, vmi) => planStart(vm, vmi, opts), opts.dryRun);
          return send(res, 202);
        }
        case 'virtualmachines/stop': {
          const opts = stopOptions(body, url.searchParams);
          await this.#changeState(path, log, (vm, vmi) => planStop(vm, vmi, opts), opts.dryRun);
          return send(res, 202);
        }
        case 'virtualmachines/restart': {
          const opts = restartOptions(body, url.searchParams);
          await this.#changeState(path, log, (vm, vmi) => planRestart(vm, vmi, opts), opts.dryRun);
          return send(res, 202);
        }
        case 'virtualmachineinstances/pause':
        case 'virtualmachineinstances/unpause':
        case 'virtualmachineinstances/softreboot': {
          const { dryRun } = dryRunOptions(body, url.searchParams);
          await this.#command(path, route, dryRun, log);
          return send(res, 200);
        }
        case 'virtualmachineinstances/guestosinfo':
          return send(res, 200, await this.#guestOSInfo(path, log));
        case 'virtualmachineinstances/console':
        case 'virtualmachineinstances/vnc':
        case 'virtualmachineinstances/portforward':
        case 'virtualmachines/portforward':
          throw badRequest(`${route} needs a websocket upgrade`);
      }
    } catch (err) {
      const error = asSubresourceError(err);
      if (error.code >= 500) {
        this.#log.error(
          { user: who.user, path: url.pathname, method, error: error.message },
          'subresource request failed',
        );
      }
      if (!res.headersSent) send(res, error.code, error.toStatus());
    }
  }

  /** A websocket upgrade (console, vnc, portforward). */
  async upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, who: RequestUser): Promise<void> {
    const method = req.method ?? 'GET';
    const url = new URL(req.url ?? '/', 'https://virt-api');
    let connection: HandlerConnection | undefined;
    let guest: Duplex | undefined;
    let ws: WebSocket | undefined;
    try {
      const path = this.#parse(url.pathname);
      const route = routeOf(path, method, true);
      await this.#authorize(who, path, method);
      if (route === 'virtualmachineinstances/portforward' || route === 'virtualmachines/portforward') {
        const log = this.#log.child({
          user: who.user,
          namespace: path.namespace,
          name: path.name,
          action: 'portforward',
        });
        const opened = await this.#dialPortForward(path, route, log);
        guest = opened.stream;
        // As KubeVirt's: the dial comes first, so a refused port is an HTTP status, not an empty tunnel.
        ws = await acceptUpgrade(this.#wss, req, socket, head);
        const labels = { namespace: path.namespace, name: opened.vmiName };
        await this.#session(
          ws,
          guest,
          log,
          (delta) => this.#activeTunnels?.(labels, delta),
          (err) => err.message,
        );
        return;
      }
      const vmi = await this.#getVMI(path.namespace, path.name);
      validations[route]?.(vmi, path.name);
      const endpoint = await this.#endpointFor(vmi, path.name);
      connection = await this.#o.dialer.connect(endpoint, path.name);
      ws = await acceptUpgrade(this.#wss, req, socket, head);
      const ref = { namespace: path.namespace, name: path.name, uid: vmi.metadata?.uid ?? '' };
      const stream = route === 'virtualmachineinstances/vnc' ? connection.vnc(ref) : connection.console(ref);
      const log = this.#log.child({
        user: who.user,
        namespace: path.namespace,
        name: path.name,
        action: path.subresource,
        handler: endpoint.pod,
      });
      const gaugeOf = route === 'virtualmachineinstances/vnc' ? this.#activeVnc : this.#active;
      const labels = { namespace: path.namespace, vmi: path.name };
      // The close reason has 123 bytes: the handler's status and words, not the RPC path and address.
      await this.#session(
        ws,
        stream,
        log,
        (delta) => gaugeOf?.(labels, delta),
        (err) => (err instanceof RpcError ? `${statusName(err.code)}: ${err.details}` : err.message),
      );
    } catch (err) {
      const error = asSubresourceError(err);
      if (error.code >= 500) {
        this.#log.error(
          { user: who.user, path: url.pathname, error: error.message },
          'stream request failed',
        );
      }
      // Before the handshake the client gets an HTTP status; after it, only a websocket close can tell it why.
      if (ws !== undefined) ws.close(1011, closeReason(error.message));
      else if (socket.writable) rejectUpgrade(socket, error.toStatus());
      if (ws === undefined) guest?.destroy();
    } finally {
      connection?.close();
    }
  }

  /** portforward: the VMI (through its VM for `virtualmachines/...`), checked, and the guest's port dialed. */
  async #dialPortForward(
    path: SubresourcePath,
    route: Route,
    log: Logger,
  ): Promise<{ stream: Duplex; vmiName: string }> {
    const target = portForwardTarget(path.subresource);
    let vmi: VirtualMachineInstance;
    if (route === 'virtualmachines/portforward') {
      const vm = await this.#o.store.getVM(path.namespace, path.name);
      vmi = vmiOfVM(vm, await this.#o.store.findVMI(path.namespace, path.name), path.name);
    } else {
      vmi = await this.#getVMI(path.namespace, path.name);
    }
    const vmiName = vmi.metadata?.name ?? path.name;
    validateForPortForward(vmi, vmiName);
    const address = guestAddress(vmi, vmiName);
    const details = { port: target.port, protocol: target.protocol, address: address.ip };
    try {
      const stream = await (this.#o.dialGuest ?? dialGuest)(address.ip, target);
      log.info(details, 'guest port dialed');
      return { stream, vmiName };
    } catch (err) {
      // A 500 as in KubeVirt; upgrade() logs it with the path, which names the port.
      throw dialFailure(err, address, target);
    }
  }

  async #session(
    ws: WebSocket,
    stream: Duplex,
    log: Logger,
    count: (delta: number) => void,
    describe: (err: Error) => string,
  ): Promise<void> {
    this.#sessions.add(ws);
    count(1);
    log.info('stream opened');
    try {
      const result = await bridge(ws, stream, describe);
      log.info(
        {
          ended: result.ended,
          bytesIn: result.bytesIn,
          bytesOut: result.bytesOut,
          ...(result.error === undefined ? {} : { error: result.error.message }),
        },
        'stream closed',
      );
    } finally {
      this.#sessions.delete(ws);
      count(-1);
    }
  }

  #parse(pathname: string): SubresourcePath {
    const path = parseSubresourcePath(pathname);
    if (path === undefined) {
      throw new SubresourceError(
        404,
        'NotFound',
        `the server could not find the requested resource ${pathname}; subresource paths look like ` +
          '/apis/subresources.kubevirt.io/v1/namespaces/NS/virtualmachines/NAME/start',
      );
    }
    return path;
  }

  async #authorize(who: RequestUser, path: SubresourcePath, method: string): Promise<void> {
    const verb = rbacVerb(method);
    if (verb === undefined) throw badRequest(`unknown HTTP method ${method}`);
    const request = {
      ...who,
      namespace: path.namespace,
      verb,
      resource: path.resource,
      subresource: rbacSubresource(path),
      name: path.name,
    };
    const decision = await this.#o.authorizer.authorize(request);
    if (!decision.allowed) {
      this.#log.info(
        {
          user: who.user,
          verb,
          resource: `${path.resource}/${rbacSubresource(path)}`,
          namespace: path.namespace,
          name: path.name,
        },
        'access denied',
      );
      throw accessDenied(request, decision.reason);
    }
  }

  async #getVMI(namespace: string, name: string): Promise<VirtualMachineInstance> {
    const vmi = await this.#o.store.findVMI(namespace, name);
    if (vmi === undefined) throw notFound('virtualmachineinstance', name);
    return vmi;
  }

  /** start/stop/restart: read the VM and its VMI, decide, then write the grace period and the VM patch. */
  async #changeState(
    path: SubresourcePath,
    log: Logger,
    plan: (vm: VirtualMachine, vmi: VirtualMachineInstance | undefined) => StateChangePlan,
    dryRun: boolean,
  ): Promise<void> {
    const { namespace, name } = path;
    const store = this.#o.store;
    const vm = await store.getVM(namespace, name);
    const vmi = await store.findVMI(namespace, name);
    const decided = plan(vm, vmi);
    // A dry run goes through the API server's own dry run: admission runs, nothing is stored.
    if (decided.vmiGrace !== undefined) {
      await store.patchVMI(namespace, name, decided.vmiGrace.ops, { dryRun });
    }
    try {
      await store.patchVM(namespace, name, decided.vm.ops, {
        dryRun,
        status: decided.vm.target === 'status',
      });
    } catch (err) {
      if (decided.vmiGrace !== undefined) {
        try {
          await store.patchVMI(namespace, name, decided.vmiGrace.rollback, { dryRun });
        } catch (rollbackErr) {
          log.warn(
            { error: asSubresourceError(rollbackErr).message },
            'could not restore the VMI terminationGracePeriodSeconds after the VM patch failed',
          );
        }
      }
      throw err;
    }
    log.info(
      { target: decided.vm.target, ops: decided.vm.ops.filter((o) => o.op !== 'test'), dryRun },
      'VM state change requested',
    );
  }

  async #endpointFor(vmi: VirtualMachineInstance, name: string): Promise<HandlerEndpoint> {
    const phase = vmi.status?.phase;
    const node = vmi.status?.nodeName;
    if ((phase !== 'Running' && phase !== 'Scheduled') || node === undefined || node === '') {
      throw conflict(
        'virtualmachineinstance',
        name,
        `Unable to connect to VirtualMachineInstance because phase is ${phase ?? '(none)'} instead of Running or Scheduled`,
      );
    }
    return this.#o.locator.find(node);
  }

  /** pause, unpause, softreboot: validated here, carried out by the handler. */
  async #command(path: SubresourcePath, route: Route, dryRun: boolean, log: Logger): Promise<void> {
    if (route === 'virtualmachineinstances/unpause') {
      // A snapshot holds the guest paused; unpausing under it would spoil the snapshot (KubeVirt refuses too).
      let vm: VirtualMachine | undefined;
      try {
        vm = await this.#o.store.getVM(path.namespace, path.name);
      } catch (err) {
        if (!(err instanceof SubresourceError && err.code === 404)) throw err;
      }
      if (vm?.status?.snapshotInProgress !== undefined) {
        throw conflict('virtualmachine', path.name, 'VM snapshot is in progress');
      }
    }
    const vmi = await this.#getVMI(path.namespace, path.name);
    validations[route]?.(vmi, path.name);
    const endpoint = await this.#endpointFor(vmi, path.name);
    if (dryRun) {
      log.info({ dryRun }, 'VMI command validated (dry run)');
      return;
    }
    const connection = await this.#o.dialer.connect(endpoint, path.name);
    const ref = { namespace: path.namespace, name: path.name, uid: vmi.metadata?.uid ?? '' };
    try {
      const response =
        route === 'virtualmachineinstances/pause'
          ? await connection.pause(ref)
          : route === 'virtualmachineinstances/unpause'
            ? await connection.unpause(ref)
            : await connection.softReboot(ref);
      if (!response.success) {
        throw internalError(
          `virt-handler ${endpoint.pod} could not ${path.subresource} the VMI: ${response.message}`,
        );
      }
      log.info({ handler: endpoint.pod }, 'VMI command done');
    } catch (err) {
      throw handlerFailure(err, endpoint, path.name);
    } finally {
      connection.close();
    }
  }

  async #guestOSInfo(path: SubresourcePath, log: Logger): Promise<unknown> {
    const vmi = await this.#getVMI(path.namespace, path.name);
    validations['virtualmachineinstances/guestosinfo']?.(vmi, path.name);
    const endpoint = await this.#endpointFor(vmi, path.name);
    const connection = await this.#o.dialer.connect(endpoint, path.name);
    try {
      const response = await connection.guestOSInfo({
        namespace: path.namespace,
        name: path.name,
        uid: vmi.metadata?.uid ?? '',
      });
      if (!response.success) {
        throw internalError(
          `virt-handler ${endpoint.pod} could not read the guest agent info: ${response.message}`,
        );
      }
      const text = Buffer.from(response.guestOsInfoJson).toString('utf8');
      let info: unknown;
      try {
        info = text === '' ? {} : (JSON.parse(text) as unknown);
      } catch {
        throw internalError(`virt-handler ${endpoint.pod} sent guest agent info that is not JSON`);
      }
      log.debug({ handler: endpoint.pod }, 'guest OS info read');
      return info;
    } catch (err) {
      throw handlerFailure(err, endpoint, path.name);
    } finally {
      connection.close();
    }
  }
}
