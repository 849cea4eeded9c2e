// The process's root logger: JSON lines on stdout with `{service, version, node}` on every line, ISO timestamps,
// level labels, and redaction of credentials and guest secrets. Components derive child loggers from it; library
// code takes a Logger parameter instead of importing a global one.
import os from 'node:os';
import { pino, stdSerializers, stdTimeFunctions, type DestinationStream, type Logger } from 'pino';

export type { Logger } from 'pino';

export const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof logLevels)[number];

/**
 * Paths pino blanks out wherever they appear at these positions. They cover bearer tokens and Authorization headers
 * (kubeconfig users, HTTP requests), Secret payloads, and cloud-init user/network data in VMI and VM specs (which
 * routinely carry passwords and SSH keys). Redaction is a safety net: log objects through `k8sRef`, never whole.
 */
const cloudInitKeys = ['userData', 'userDataBase64', 'networkData', 'networkDataBase64'];
const cloudInitSources = ['cloudInitNoCloud', 'cloudInitConfigDrive'];
const volumeLists = ['spec.volumes[*]', 'spec.template.spec.volumes[*]'];

export const redactPaths: readonly string[] = [
  'token',
  '*.token',
  'bearerToken',
  '*.bearerToken',
  'password',
  '*.password',
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'headers.Authorization',
  '*.headers.Authorization',
  'user.token',
  '*.user.token',
  'stringData',
  '*.stringData',
  'secret.data',
  '*.secret.data',
  ...cloudInitKeys.flatMap((k) => [k, `*.${k}`]),
  ...volumeLists.flatMap((list) =>
    cloudInitSources.flatMap((src) =>
      cloudInitKeys.flatMap((k) => [`${list}.${src}.${k}`, `*.${list}.${src}.${k}`]),
    ),
  ),
];

export const redactCensor = '[REDACTED]';

export interface LoggerOptions {
  service: string;
  version: string;
  /** The node this process runs on; defaults to $NODE_NAME, then the host name. */
  node?: string;
  level?: LogLevel;
  /** Where lines go; defaults to stdout (synchronous writes, so nothing is lost on exit). */
  destination?: DestinationStream;
}

export function createLogger(opts: LoggerOptions): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: {
        service: opts.service,
        version: opts.version,
        node: opts.node ?? process.env.NODE_NAME ?? os.hostname(),
      },
      timestamp: stdTimeFunctions.isoTime,
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: stdSerializers.err, error: stdSerializers.err },
      redact: { paths: [...redactPaths], censor: redactCensor },
    },
    opts.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** A logger that writes nothing, for tests and for library defaults. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}

/** The minimal shape of any Kubernetes object, as far as logging cares. */
export interface ObjectLike {
  kind?: string | undefined;
  metadata?:
    { name?: string | undefined; namespace?: string | undefined; uid?: string | undefined } | undefined;
}

export interface ObjectRef {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
}

/** `{kind, namespace, name, uid}` of an object: how objects appear in logs (never the whole object). */
export function k8sRef(obj: ObjectLike, kind?: string): ObjectRef {
  const ref: ObjectRef = {};
  const k = obj.kind ?? kind;
  if (k) ref.kind = k;
  if (obj.metadata?.namespace) ref.namespace = obj.metadata.namespace;
  if (obj.metadata?.name) ref.name = obj.metadata.name;
  if (obj.metadata?.uid) ref.uid = obj.metadata.uid;
  return ref;
}

/** A child logger bound to one object, for everything logged while handling it. */
export function objectLogger(log: Logger, obj: ObjectLike, kind?: string): Logger {
  return log.child(k8sRef(obj, kind));
}

/** A short description of any thrown value, for places where a full `err` serialization is too much. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return typeof err === 'string' ? err : JSON.stringify(err);
}
