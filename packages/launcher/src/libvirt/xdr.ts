// XDR (RFC 4506) encoding and decoding for the few shapes libvirt's RPC protocol uses: 4-byte big-endian integers,
// 8-byte hypers, length-prefixed strings and opaques padded to 4 bytes, optional values ("pointers") as a boolean
// followed by the value, and variable-length arrays as a count followed by the items.

export class XdrWriter {
  private chunks: Buffer[] = [];
  private length = 0;

  private push(chunk: Buffer): this {
    this.chunks.push(chunk);
    this.length += chunk.length;
    return this;
  }

  int(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeInt32BE(value);
    return this.push(b);
  }

  uint(value: number): this {
    const b = Buffer.allocUnsafe(4);
    b.writeUInt32BE(value >>> 0);
    return this.push(b);
  }

  hyper(value: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigInt64BE(value);
    return this.push(b);
  }

  uhyper(value: bigint): this {
    const b = Buffer.allocUnsafe(8);
    b.writeBigUInt64BE(value);
    return this.push(b);
  }

  bool(value: boolean): this {
    return this.int(value ? 1 : 0);
  }

  /** Variable-length opaque: length, bytes, zero padding to a multiple of 4. */
  opaque(bytes: Uint8Array): this {
    this.uint(bytes.length);
    return this.fixedOpaque(bytes);
  }

  /** Fixed-length opaque (e.g. a 16-byte UUID): bytes and padding, no length. */
  fixedOpaque(bytes: Uint8Array): this {
    this.push(Buffer.from(bytes));
    const pad = (4 - (bytes.length % 4)) % 4;
    return pad === 0 ? this : this.push(Buffer.alloc(pad));
  }

  string(value: string): this {
    return this.opaque(Buffer.from(value, 'utf8'));
  }

  /** An optional string (libvirt's remote_string): absent is encoded as a false "pointer". */
  optionalString(value: string | undefined): this {
    if (value === undefined) return this.bool(false);
    return this.bool(true).string(value);
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.chunks, this.length);
  }
}

export class XdrError extends Error {
  constructor(message: string) {
    super(`malformed libvirt RPC message: ${message}`);
    this.name = 'XdrError';
  }
}

export class XdrReader {
  private offset = 0;
  private readonly buf: Buffer;

  constructor(buf: Buffer) {
    this.buf = buf;
  }

  private need(n: number): void {
    if (this.offset + n > this.buf.length) {
      throw new XdrError(`needs ${n} bytes at offset ${this.offset}, message has ${this.buf.length}`);
    }
  }

  int(): number {
    this.need(4);
    const v = this.buf.readInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  uint(): number {
    this.need(4);
    const v = this.buf.readUInt32BE(this.offset);
    this.offset += 4;
    return v;
  }

  hyper(): bigint {
    this.need(8);
    const v = this.buf.readBigInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  uhyper(): bigint {
    this.need(8);
    const v = this.buf.readBigUInt64BE(this.offset);
    this.offset += 8;
    return v;
  }

  double(): number {
    this.need(8);
    const v = this.buf.readDoubleBE(this.offset);
    this.offset += 8;
    return v;
  }

  bool(): boolean {
    return this.int() !== 0;
  }

  fixedOpaque(length: number): Buffer {
    const padded = length + ((4 - (length % 4)) % 4);
    this.need(padded);
    const v = this.buf.subarray(this.offset, this.offset + length);
    this.offset += padded;
    return Buffer.from(v);
  }

  opaque(): Buffer {
    return this.fixedOpaque(this.uint());
  }

  string(): string {
    return this.opaque().toString('utf8');
  }

  optional<T>(read: () => T): T | undefined {
    return this.bool() ? read() : undefined;
  }

  array<T>(read: () => T): T[] {
    const n = this.uint();
    // Each item takes at least 4 bytes: a count beyond that is a corrupt message, not a reason to allocate.
    if (n * 4 > this.buf.length - this.offset)
      throw new XdrError(`array of ${n} items in a ${this.buf.length}-byte message`);
    const items: T[] = [];
    for (let i = 0; i < n; i++) items.push(read());
    return items;
  }

  get remaining(): number {
    return this.buf.length - this.offset;
  }
}
