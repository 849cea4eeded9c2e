// The DHCP server of a masquerade interface (KubeVirt's launcher runs one per pod-network NIC): a UDP socket on
// port 67 in the launcher pod's network namespace, answering only the guest's MAC. The handler prepared the bridge
// the guest's tap hangs on, with the gateway address; replies go to that range's broadcast address, which the
// bridge carries to the guest whether or not it has taken its address yet.
import { createSocket, type Socket } from 'node:dgram';
import type { Logger } from '@kubevirt-ts/runtime';
import { answer, DHCP_CLIENT_PORT, DHCP_SERVER_PORT, MessageType, type Lease } from './dhcp.ts';

export interface DhcpServerOptions {
  mac: string;
  lease: Lease;
  log: Logger;
  /** Port to listen on (67; tests use another). */
  port?: number;
  /** Address to bind (all by default). */
  address?: string;
  /** Where replies go (the range's broadcast address; tests use loopback). */
  replyTo?: string;
  replyPort?: number;
}

const NAMES: Record<number, string> = {
  [MessageType.offer]: 'offer',
  [MessageType.ack]: 'ack',
  [MessageType.nak]: 'nak',
};

export class DhcpServer {
  readonly #o: DhcpServerOptions;
  #socket: Socket | undefined;

  constructor(options: DhcpServerOptions) {
    this.#o = options;
  }

  get listening(): boolean {
    return this.#socket !== undefined;
  }

  /** The port it listens on, once started. */
  get port(): number | undefined {
    return this.#socket?.address().port;
  }

  async start(): Promise<void> {
    if (this.#socket) return;
    const socket = createSocket({ type: 'udp4', reuseAddr: true });
    socket.on('message', (msg, rinfo) => this.#onMessage(socket, msg, rinfo.address));
    socket.on('error', (err) => this.#o.log.warn({ err }, 'DHCP server socket error'));
    await new Promise<void>((resolve, reject) => {
      socket.once('error', reject);
      socket.bind(this.#o.port ?? DHCP_SERVER_PORT, this.#o.address ?? '0.0.0.0', () => {
        socket.off('error', reject);
        resolve();
      });
    });
    socket.setBroadcast(true);
    this.#socket = socket;
    this.#o.log.info(
      {
        mac: this.#o.mac,
        address: this.#o.lease.address,
        router: this.#o.lease.router,
        dns: this.#o.lease.dns,
      },
      'DHCP server listening for the guest',
    );
  }

  #onMessage(socket: Socket, msg: Buffer, from: string): void {
    let reply;
    try {
      reply = answer(msg, this.#o.mac, this.#o.lease);
    } catch (err) {
      this.#o.log.warn({ err }, 'cannot answer a DHCP request');
      return;
    }
    if (reply === undefined) return;
    // A renewing client has its address and asks from it; a new one has none yet: broadcast on the bridge.
    const to = this.#o.replyTo ?? (from !== '0.0.0.0' && from !== '' ? from : this.#o.lease.broadcast);
    socket.send(reply.packet, this.#o.replyPort ?? DHCP_CLIENT_PORT, to, (err) => {
      if (err) this.#o.log.warn({ err, to }, 'cannot send a DHCP reply');
      else this.#o.log.info({ to, type: NAMES[reply.type] }, 'DHCP reply sent to the guest');
    });
  }

  async close(): Promise<void> {
    const socket = this.#socket;
    this.#socket = undefined;
    if (socket) await new Promise<void>((resolve) => socket.close(() => resolve()));
  }
}
