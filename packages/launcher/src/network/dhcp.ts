// DHCPv4 (RFC 2131/2132) for the one guest of a masquerade interface: decoding the guest's DISCOVER/REQUEST and
// building the OFFER/ACK/NAK that hands it its fixed address, as KubeVirt's launcher does for the pod network
// (pkg/network/dhcp). Pure: the server (dhcp-server.ts) owns the socket.

export const DHCP_SERVER_PORT = 67;
export const DHCP_CLIENT_PORT = 68;
const MAGIC_COOKIE = 0x63825363;
const FIXED_LENGTH = 236;
/** KubeVirt hands out its leases forever: the address never changes while the VMI lives. */
export const INFINITE_LEASE = 0xffffffff;

export const MessageType = {
  discover: 1,
  offer: 2,
  request: 3,
  decline: 4,
  ack: 5,
  nak: 6,
  release: 7,
  inform: 8,
} as const;

const OPTION = {
  pad: 0,
  subnetMask: 1,
  router: 3,
  dns: 6,
  hostname: 12,
  domainName: 15,
  mtu: 26,
  broadcast: 28,
  requestedIp: 50,
  leaseTime: 51,
  messageType: 53,
  serverId: 54,
  domainSearch: 119,
  end: 255,
} as const;

export interface DhcpRequest {
  op: number;
  xid: number;
  flags: number;
  ciaddr: string;
  giaddr: string;
  /** Client MAC, lower case aa:bb:…. */
  mac: string;
  messageType: number | undefined;
  requestedIp: string | undefined;
  serverId: string | undefined;
  /** The raw chaddr field, echoed back. */
  chaddr: Buffer;
}

/** What the guest gets. */
export interface Lease {
  /** The guest's address. */
  address: string;
  netmask: string;
  /** Default gateway (none when the pod had no default route). */
  router?: string | undefined;
  /** The address the server answers from (its identifier): the gateway for masquerade, a link-local one for bridge. */
  serverId: string;
  broadcast: string;
  dns: string[];
  search: string[];
  hostname?: string | undefined;
  mtu?: number | undefined;
}

function ipToBuffer(ip: string): Buffer {
  const parts = ip.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255))
    throw new Error(`not an IPv4 address: ${ip}`);
  return Buffer.from(parts);
}

function bufferToIp(b: Buffer): string {
  return [...b.subarray(0, 4)].join('.');
}

/** Decodes a BOOTREQUEST; undefined for anything that is not a well-formed DHCP message. */
export function decodeRequest(packet: Buffer): DhcpRequest | undefined {
  if (packet.length < FIXED_LENGTH + 4) return undefined;
  if (packet.readUInt32BE(FIXED_LENGTH) !== MAGIC_COOKIE) return undefined;
  const op = packet.readUInt8(0);
  const htype = packet.readUInt8(1);
  const hlen = packet.readUInt8(2);
  if (op !== 1 || htype !== 1 || hlen !== 6) return undefined;
  const chaddr = Buffer.from(packet.subarray(28, 44));
  const mac = [...chaddr.subarray(0, 6)].map((b) => b.toString(16).padStart(2, '0')).join(':');
  const request: DhcpRequest = {
    op,
    xid: packet.readUInt32BE(4),
    flags: packet.readUInt16BE(10),
    ciaddr: bufferToIp(packet.subarray(12, 16)),
    giaddr: bufferToIp(packet.subarray(24, 28)),
    mac,
    messageType: undefined,
    requestedIp: undefined,
    serverId: undefined,
    chaddr,
  };
  let i = FIXED_LENGTH + 4;
  while (i < packet.length) {
    const code = packet.readUInt8(i);
    if (code === OPTION.end) break;
    if (code === OPTION.pad) {
      i += 1;
      continue;
    }
    if (i + 1 >= packet.length) return undefined;
    const len = packet.readUInt8(i + 1);
    const value = packet.subarray(i + 2, i + 2 + len);
    if (value.length !== len) return undefined;
    if (code === OPTION.messageType && len === 1) request.messageType = value.readUInt8(0);
    else if (code === OPTION.requestedIp && len === 4) request.requestedIp = bufferToIp(value);
    else if (code === OPTION.serverId && len === 4) request.serverId = bufferToIp(value);
    i += 2 + len;
  }
  return request;
}

/** RFC 1035 names without compression, as option 119 (RFC 3397) carries them. */
export function encodeDomainSearch(domains: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (const domain of domains) {
    for (const label of domain.split('.').filter((l) => l !== '')) {
      const bytes = Buffer.from(label, 'ascii');
      if (bytes.length > 63) throw new Error(`DNS label too long in search domain ${domain}`);
      parts.push(Buffer.from([bytes.length]), bytes);
    }
    parts.push(Buffer.from([0]));
  }
  return Buffer.concat(parts);
}

function option(code: number, value: Buffer): Buffer[] {
  // An option longer than 255 bytes is split into several of the same code (RFC 3396).
  const out: Buffer[] = [];
  for (let off = 0; off < value.length || off === 0; off += 255) {
    const chunk = value.subarray(off, off + 255);
    out.push(Buffer.from([code, chunk.length]), chunk);
    if (value.length === 0) break;
  }
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0);
  return b;
}

/** Builds the server's BOOTREPLY of `type` (offer, ack or nak) to `request`. */
export function encodeReply(request: DhcpRequest, type: number, lease: Lease): Buffer {
  const header = Buffer.alloc(FIXED_LENGTH + 4);
  header.writeUInt8(2, 0); // BOOTREPLY
  header.writeUInt8(1, 1); // Ethernet
  header.writeUInt8(6, 2);
  header.writeUInt32BE(request.xid, 4);
  header.writeUInt16BE(request.flags, 10);
  if (type !== MessageType.nak) {
    ipToBuffer(lease.address).copy(header, 16); // yiaddr
    ipToBuffer(lease.serverId).copy(header, 20); // siaddr
  }
  ipToBuffer(request.giaddr).copy(header, 24);
  request.chaddr.copy(header, 28);
  header.writeUInt32BE(MAGIC_COOKIE, FIXED_LENGTH);
  const options: Buffer[] = [
    ...option(OPTION.messageType, Buffer.from([type])),
    ...option(OPTION.serverId, ipToBuffer(lease.serverId)),
  ];
  if (type !== MessageType.nak) {
    options.push(
      ...option(OPTION.leaseTime, u32(INFINITE_LEASE)),
      ...option(OPTION.subnetMask, ipToBuffer(lease.netmask)),
      ...option(OPTION.broadcast, ipToBuffer(lease.broadcast)),
    );
    if (lease.router !== undefined) options.push(...option(OPTION.router, ipToBuffer(lease.router)));
    if (lease.dns.length > 0) options.push(...option(OPTION.dns, Buffer.concat(lease.dns.map(ipToBuffer))));
    if (lease.search.length > 0) {
      options.push(...option(OPTION.domainName, Buffer.from(lease.search[0] ?? '', 'ascii')));
      options.push(...option(OPTION.domainSearch, encodeDomainSearch(lease.search)));
    }
    if (lease.hostname !== undefined && lease.hostname !== '')
      options.push(...option(OPTION.hostname, Buffer.from(lease.hostname.slice(0, 63), 'ascii')));
    if (lease.mtu !== undefined) {
      const mtu = Buffer.alloc(2);
      mtu.writeUInt16BE(lease.mtu);
      options.push(...option(OPTION.mtu, mtu));
    }
  }
  options.push(Buffer.from([OPTION.end]));
  const packet = Buffer.concat([header, ...options]);
  // Some clients drop replies shorter than a BOOTP message (300 bytes).
  return packet.length >= 300 ? packet : Buffer.concat([packet, Buffer.alloc(300 - packet.length)]);
}

export type DhcpAnswer = { type: number; packet: Buffer } | undefined;

/**
 * The server's answer to one packet, for the guest of MAC `mac`: DISCOVER → OFFER; REQUEST for its address (or a
 * renewal) → ACK; REQUEST for another address, or one meant for another server → NAK or nothing; anything else,
 * or another MAC (the pod network's other pods share the link), → nothing.
 */
export function answer(packet: Buffer, mac: string, lease: Lease): DhcpAnswer {
  const request = decodeRequest(packet);
  if (request === undefined || request.mac !== mac.toLowerCase()) return undefined;
  switch (request.messageType) {
    case MessageType.discover:
      return { type: MessageType.offer, packet: encodeReply(request, MessageType.offer, lease) };
    case MessageType.request: {
      if (request.serverId !== undefined && request.serverId !== lease.serverId) return undefined;
      const wanted = request.requestedIp ?? (request.ciaddr !== '0.0.0.0' ? request.ciaddr : undefined);
      const type = wanted === undefined || wanted === lease.address ? MessageType.ack : MessageType.nak;
      return { type, packet: encodeReply(request, type, lease) };
    }
    default:
      return undefined;
  }
}

/** Name servers (IPv4) and search domains of a resolv.conf, which the guest gets as its own. */
export function parseResolvConf(text: string): { dns: string[]; search: string[] } {
  const dns: string[] = [];
  let search: string[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.replace(/[#;].*$/, '').trim();
    const [key, ...values] = line.split(/\s+/);
    if (key === 'nameserver' && values[0] !== undefined && /^\d+\.\d+\.\d+\.\d+$/.test(values[0]))
      dns.push(values[0]);
    else if (key === 'search' || key === 'domain') search = values.filter((v) => v !== '');
  }
  return { dns, search };
}
