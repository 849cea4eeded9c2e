// The `portforward/PORT[/PROTOCOL]` subresource (reference §4.4, §5.1): unlike console and VNC it does not go
// through virt-handler. virt-api dials the VMI's address on the pod network itself and carries the raw bytes of
// that one TCP connection (or the UDP datagrams, one websocket message each) over the websocket. The address is
// the pod IP the handler reports for the VMI's pod network interface in status.interfaces: with masquerade the
// launcher pod's nftables forward the listed ports from it into the guest, with bridge the guest owns it, so the
// same address serves every binding and virt-api needs no read access to pods in users' namespaces.
import dgram from 'node:dgram';
import net from 'node:net';
import { Duplex } from 'node:stream';
import type { VirtualMachine, VirtualMachineInstance } from '@kubevirt-ts/schema';
import type { SubresourceError } from './errors.ts';
import { badRequest, conflict, internalError, notFound } from './errors.ts';
import type { PortForwardProtocol, PortForwardTarget } from './request.ts';

/** A TCP connect that gets no answer (a dropped SYN) fails after this long. */
export const DIAL_TIMEOUT_MS = 10_000;

/** Where port-forward dials, and what the VMI says about the interface (for the error messages). */
export interface GuestAddress {
  ip: string;
  /** The VMI's pod network interface: its name and index in spec.domain.devices.interfaces. */
  interfaceName: string;
  interfaceIndex: number;
  /** Masquerade only: the ports the pod forwards to the guest (every port when empty). */
  masqueradePorts?: { port: number; protocol: string }[];
}

type SpecInterface = NonNullable<VirtualMachineInstance['spec']['domain']['devices']['interfaces']>[number];

/**
 * The VMI behind `virtualmachines/NAME/portforward`: KubeVirt's checks, in its words (a VM that has no VMI is "not
 * started"; a VMI of the same name that this VM does not own is not found).
 */
export function vmiOfVM(
  vm: VirtualMachine,
  vmi: VirtualMachineInstance | undefined,
  name: string,
): VirtualMachineInstance {
  if (vm.status?.created !== true) throw conflict('virtualmachine', name, 'VMI is not started');
  if (vmi === undefined) throw notFound('virtualmachineinstance', name);
  const owned = (vmi.metadata?.ownerReferences ?? []).some((ref) => ref.uid === vm.metadata?.uid);
  if (!owned) throw notFound('virtualmachineinstance', name);
  return vmi;
}

/** Refuses a VMI that cannot take a connection now: not Running (409 naming the phase), or paused (409). */
export function validateForPortForward(vmi: VirtualMachineInstance, name: string): void {
  const phase = vmi.status?.phase;
  if (phase !== 'Running') {
    throw conflict(
      'virtualmachineinstance',
      name,
      `VMI is not running (phase ${phase ?? 'unknown'}); port-forward needs a Running VMI`,
    );
  }
  const paused = (vmi.status?.conditions ?? []).some((c) => c.type === 'Paused' && c.status === 'True');
  if (paused) throw conflict('virtualmachineinstance', name, 'VMI is paused');
}

/** The address to dial: the pod IP the handler reports for the interface on the pod network. */
export function guestAddress(vmi: VirtualMachineInstance, name: string): GuestAddress {
  const podNetwork = (vmi.spec.networks ?? []).find((n) => n.pod !== undefined);
  if (podNetwork === undefined) {
    throw badRequest(
      `VMI ${name} has no pod network (spec.networks has no entry with "pod"); port-forward reaches the guest ` +
        "through the pod network's address",
    );
  }
  const interfaces: SpecInterface[] = vmi.spec.domain.devices.interfaces ?? [];
  const interfaceIndex = interfaces.findIndex((i) => i.name === podNetwork.name);
  const status = (vmi.status?.interfaces ?? []).find((i) => i.name === podNetwork.name);
  const ip = status?.ipAddresses?.[0] ?? status?.ipAddress;
  if (ip === undefined || ip === '' || net.isIP(ip) === 0) {
    throw conflict(
      'virtualmachineinstance',
      name,
      `its pod network interface ${JSON.stringify(podNetwork.name)} has no IP address in status.interfaces ` +
        'yet; virt-handler reports it once the pod network is set up',
    );
  }
  const spec = interfaces[interfaceIndex];
  const result: GuestAddress = { ip, interfaceName: podNetwork.name, interfaceIndex };
  if (spec?.masquerade !== undefined) {
    result.masqueradePorts = (spec.ports ?? []).map((p) => ({
      port: p.port,
      protocol: (p.protocol ?? 'TCP').toUpperCase(),
    }));
  }
  return result;
}

/** Whether a masquerade interface's port list leaves this port out (so the pod does not forward it). */
export function portNotForwarded(address: GuestAddress, target: PortForwardTarget): boolean {
  const ports = address.masqueradePorts;
  if (ports === undefined || ports.length === 0) return false;
  return !ports.some((p) => p.port === target.port && p.protocol === target.protocol.toUpperCase());
}

/** A failed dial in words: where, why, and for masquerade which ports the pod forwards. */
export function dialFailure(
  err: unknown,
  address: GuestAddress,
  target: PortForwardTarget,
): SubresourceError {
  const why = err instanceof Error ? err.message : String(err);
  const where = `${target.protocol.toUpperCase()} port ${target.port} of the VMI at ${address.ip}`;
  let hint = '';
  if (portNotForwarded(address, target)) {
    const listed = (address.masqueradePorts ?? []).map((p) => `${p.port}/${p.protocol}`).join(', ');
    hint =
      `; the masquerade interface ${JSON.stringify(address.interfaceName)} forwards only the ports in ` +
      `spec.domain.devices.interfaces[${address.interfaceIndex}].ports (${listed}) into the guest`;
  } else if ((err as NodeJS.ErrnoException).code === 'ECONNREFUSED') {
    hint = '; nothing in the guest accepts connections on that port';
  }
  return internalError(`dialing VM: ${where}: ${why}${hint}`);
}

/** Opens the connection port-forward carries; rejects with the dial's error. */
export type GuestDialer = (ip: string, target: PortForwardTarget) => Promise<Duplex>;

function dialTcp(ip: string, port: number, timeoutMs: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: ip, port, noDelay: true });
    const timer = setTimeout(
      () => socket.destroy(new Error(`no answer within ${timeoutMs / 1000} s`)),
      timeoutMs,
    );
    socket.once('connect', () => {
      clearTimeout(timer);
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/**
 * A connected UDP socket as a stream: each write is one datagram to the guest, each datagram from the guest one
 * chunk (object mode on the readable side keeps the boundaries). It ends only when destroyed.
 */
export class UdpStream extends Duplex {
  readonly #socket: dgram.Socket;

  constructor(socket: dgram.Socket) {
    super({ readableObjectMode: true, allowHalfOpen: false });
    this.#socket = socket;
    // UDP has no flow control: a datagram that arrives while the client is slow is queued, as the kernel would.
    socket.on('message', (msg: Buffer) => this.push(msg));
    socket.on('error', (err) => this.destroy(err));
    socket.on('close', () => this.push(null));
  }

  override _read(): void {
    // datagrams are pushed as they arrive
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.#socket.send(chunk, (err) => callback(err));
  }

  override _final(callback: (error?: Error | null) => void): void {
    // UDP has no half-close: the end of the client's side ends the flow.
    this.#socket.close();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    try {
      this.#socket.close();
    } catch {
      // already closed
    }
    callback(error);
  }
}

function dialUdp(ip: string, port: number): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(net.isIPv6(ip) ? 'udp6' : 'udp4');
    socket.once('error', reject);
    socket.connect(port, ip, () => {
      socket.off('error', reject);
      resolve(new UdpStream(socket));
    });
  });
}

/** The dialer of the service: TCP with a connect deadline, or a connected UDP socket. */
export function dialGuest(
  ip: string,
  target: PortForwardTarget,
  timeoutMs = DIAL_TIMEOUT_MS,
): Promise<Duplex> {
  const protocol: PortForwardProtocol = target.protocol;
  return protocol === 'udp' ? dialUdp(ip, target.port) : dialTcp(ip, target.port, timeoutMs);
}
