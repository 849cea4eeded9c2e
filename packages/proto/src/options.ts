// The one place that knows how .proto files become JavaScript objects. The runtime loader (loader.ts) and the type
// generator (scripts/generate.ts) both read these options: if they differed, the generated types would lie about the
// objects grpc-js hands us.
import type { Options } from '@grpc/proto-loader';

/**
 * proto-loader options shared by the runtime loader and `proto-loader-gen-types`.
 * - camelCase field names (`vmi_json` → `vmiJson`), as TypeScript code expects;
 * - enums as their names (`'ADDED'`), so logs and switches read well;
 * - 64-bit integers as strings (no `Long` objects; the contracts avoid 64-bit fields anyway);
 * - defaults filled in on decode, so a received message has every scalar and repeated field set;
 * - oneofs report which member is set (`kind: 'open' | 'data'`).
 * `bytes` stay Buffers (the proto-loader default).
 */
export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const satisfies Options;

/** Every .proto file of the package, relative to the proto root (the package's `proto/` folder). */
export const PROTO_FILES = [
  'kubevirt_ts/info/v1/info.proto',
  'kubevirt_ts/launcher/v1/launcher.proto',
  'kubevirt_ts/notify/v1/notify.proto',
  'kubevirt_ts/handler/v1/handler.proto',
] as const;
