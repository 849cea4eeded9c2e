// The logging surface this package needs. A pino logger (the services' root or child logger) satisfies it; the
// proto package stays free of the runtime package so every service can depend on it without cycles.

export interface Logger {
  debug(obj: object, msg: string): void;
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
  error(obj: object, msg: string): void;
}

const ignore = (): void => undefined;

/** Drops everything; the default when a caller passes no logger. */
export const silentLogger: Logger = { debug: ignore, info: ignore, warn: ignore, error: ignore };
