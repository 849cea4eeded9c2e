// Errors the launcher reports to the handler (through a failed command and a Warning event) instead of crashing.

/** A volume that cannot be turned into a disk; the message says which volume, what is wrong and what to do. */
export class DiskError extends Error {
  readonly volume: string;

  constructor(volume: string, message: string, options?: ErrorOptions) {
    super(`volume ${volume}: ${message}`, options);
    this.name = 'DiskError';
    this.volume = volume;
  }
}
