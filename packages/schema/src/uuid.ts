// Name-based (version 5, SHA-1) UUIDs, RFC 9562 §5.5: the stable firmware UUID of a VM is derived from its name,
// so it survives restarts and recreation without being stored anywhere else.
import { createHash } from 'node:crypto';

/**
 * KubeVirt's namespace UUID for firmware UUIDs derived from a VM name (CalculateLegacyUUID in KubeVirt's VM
 * controller). Using the same namespace gives a VM the same SMBIOS UUID here as under KubeVirt, so a guest that
 * keys licences or machine IDs on it sees no change when it moves between the two.
 */
export const FIRMWARE_UUID_NAMESPACE = '6a1a24a1-4061-4607-8bf4-a3963d0c5895';

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function isUUID(value: string): boolean {
  return UUID_PATTERN.test(value);
}

/** A version 5 UUID of `name` within `namespace` (itself a UUID). */
export function uuidV5(namespace: string, name: string): string {
  if (!isUUID(namespace)) throw new Error(`uuidV5: namespace ${namespace} is not a UUID`);
  const hash = createHash('sha1')
    .update(Buffer.from(namespace.replaceAll('-', ''), 'hex'))
    .update(name, 'utf8')
    .digest();
  const bytes = hash.subarray(0, 16);
  bytes[6] = ((bytes[6] as number) & 0x0f) | 0x50;
  bytes[8] = ((bytes[8] as number) & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** The firmware UUID KubeVirt gives a VM (and the VMIs it starts) from the VM's name. */
export function firmwareUUIDFromName(name: string): string {
  return uuidV5(FIRMWARE_UUID_NAMESPACE, name);
}
