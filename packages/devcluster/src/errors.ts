// The one error type devcluster shows to people: what went wrong, where, and what to do about it.

export class DevclusterError extends Error {
  /** What to do next, printed on its own line under the message. */
  readonly hint: string | undefined;

  constructor(message: string, hint?: string, options?: ErrorOptions) {
    super(message, options);
    this.name = 'DevclusterError';
    this.hint = hint;
  }
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
