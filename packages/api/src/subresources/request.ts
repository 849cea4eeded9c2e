// Reading a subresource request: which object and action the path names, the RBAC verb it needs (the way
// kube-apiserver derives it, so a SubjectAccessReview asks what the aggregator already asked), and the options in
// its query and body (KubeVirt's StartOptions, StopOptions, RestartOptions, PauseOptions), and the port and
// protocol of a port-forward path.
import { VERSION_PATH } from '../discovery.ts';
import { badRequest, SubresourceError } from './errors.ts';

export type SubresourceResource = 'virtualmachines' | 'virtualmachineinstances';

export interface SubresourcePath {
  namespace: string;
  resource: SubresourceResource;
  name: string;
  /** `start`, `console`, `vnc/screenshot`, ... (everything after the name). */
  subresource: string;
}

const PREFIX = `${VERSION_PATH}/namespaces/`;

/** Whether a path is under the namespaced part of subresources.kubevirt.io/v1 (what this module serves). */
export function isNamespacedSubresourcePath(path: string): boolean {
  return path.startsWith(PREFIX);
}

/**
 * The parts of `/apis/subresources.kubevirt.io/v1/namespaces/NS/(virtualmachines|virtualmachineinstances)/NAME/SUB`,
 * or undefined when the path has another shape.
 */
export function parseSubresourcePath(path: string): SubresourcePath | undefined {
  if (!isNamespacedSubresourcePath(path)) return undefined;
  const parts = path.slice(PREFIX.length).split('/');
  if (parts.length < 4) return undefined;
  const [namespace, resource, name, ...rest] = parts;
  if (resource !== 'virtualmachines' && resource !== 'virtualmachineinstances') return undefined;
  let decoded: string[];
  try {
    decoded = [namespace ?? '', name ?? '', ...rest].map((p) => decodeURIComponent(p));
  } catch {
    return undefined;
  }
  const [ns, objectName, ...sub] = decoded;
  if (!ns || !objectName || sub.length === 0 || sub.some((s) => s === '')) return undefined;
  return { namespace: ns, resource, name: objectName, subresource: sub.join('/') };
}

/** kube-apiserver's verb for a request on a named object (GET is `get`, PUT is `update`, ...). */
export function rbacVerb(method: string): string | undefined {
  switch (method.toUpperCase()) {
    case 'GET':
    case 'HEAD':
      return 'get';
    case 'PUT':
      return 'update';
    case 'POST':
      return 'create';
    case 'PATCH':
      return 'patch';
    case 'DELETE':
      return 'delete';
    default:
      return undefined;
  }
}

/** What the subresource endpoints accept, by `resource/subresource`: the HTTP method, and whether it streams. */
export const ROUTES = {
  'virtualmachines/start': { method: 'PUT', stream: false },
  'virtualmachines/stop': { method: 'PUT', stream: false },
  'virtualmachines/restart': { method: 'PUT', stream: false },
  'virtualmachineinstances/pause': { method: 'PUT', stream: false },
  'virtualmachineinstances/unpause': { method: 'PUT', stream: false },
  'virtualmachineinstances/softreboot': { method: 'PUT', stream: false },
  'virtualmachineinstances/guestosinfo': { method: 'GET', stream: false },
  'virtualmachineinstances/console': { method: 'GET', stream: true },
  'virtualmachineinstances/vnc': { method: 'GET', stream: true },
  'virtualmachines/portforward': { method: 'GET', stream: true },
  'virtualmachineinstances/portforward': { method: 'GET', stream: true },
} as const;

/**
 * The subresource RBAC knows: kube-apiserver takes the path segment after the name (`portforward` of
 * `portforward/22/tcp`, `vnc` of `vnc/screenshot`), so that is what a SubjectAccessReview asks about.
 */
export function rbacSubresource(path: SubresourcePath): string {
  return path.subresource.split('/')[0] ?? path.subresource;
}

/** The route key of a path: `portforward/PORT[/PROTOCOL]` is one route whatever the port. */
function routeKey(path: SubresourcePath): string {
  const sub = rbacSubresource(path) === 'portforward' ? 'portforward' : path.subresource;
  return `${path.resource}/${sub}`;
}

export type Route = keyof typeof ROUTES;

/** The route a parsed path names, or an error saying why it is not served (404) or not with this method (405). */
export function routeOf(path: SubresourcePath, method: string, upgrade: boolean): Route {
  const key = routeKey(path);
  if (!(key in ROUTES)) {
    throw new SubresourceError(
      404,
      'NotFound',
      `${path.resource}/${path.subresource} is not served by kubevirt-ts (yet); ` +
        `served here: ${Object.keys(ROUTES).join(', ')}`,
    );
  }
  const route = key as Route;
  const spec = ROUTES[route];
  if (spec.method !== method.toUpperCase()) {
    throw new SubresourceError(
      405,
      'MethodNotAllowed',
      `${key} takes ${spec.method}${spec.stream ? ' with a websocket upgrade' : ''}, not ${method}`,
    );
  }
  if (spec.stream && !upgrade) {
    throw badRequest(
      `${key} is a websocket stream: send a GET with "Upgrade: websocket" (subprotocol plain.kubevirt.io), ` +
        'as `virtctl console`, `virtctl vnc` and `virtctl port-forward` do',
    );
  }
  return route;
}

export type PortForwardProtocol = 'tcp' | 'udp';

export interface PortForwardTarget {
  port: number;
  protocol: PortForwardProtocol;
}

/** The guest port and protocol of `portforward/PORT[/PROTOCOL]` (protocol tcp when absent, as in KubeVirt). */
export function portForwardTarget(subresource: string): PortForwardTarget {
  const [, rawPort, rawProtocol, ...extra] = subresource.split('/');
  const shape = 'the path ends in .../portforward/PORT or .../portforward/PORT/PROTOCOL';
  if (rawPort === undefined || rawPort === '') throw badRequest(`port must not be empty: ${shape}`);
  if (extra.length > 0) {
    throw new SubresourceError(404, 'NotFound', `${subresource} is not a port-forward path: ${shape}`);
  }
  const port = /^\d{1,5}$/.test(rawPort) ? Number(rawPort) : NaN;
  if (!(port >= 1 && port <= 65535)) {
    throw badRequest(`port must be a number from 1 to 65535, got ${JSON.stringify(rawPort)}`);
  }
  const protocol = (rawProtocol ?? 'tcp').toLowerCase();
  if (protocol !== 'tcp' && protocol !== 'udp') {
    throw badRequest(`protocol must be tcp or udp, got ${JSON.stringify(rawProtocol)}`);
  }
  return { port, protocol };
}

export interface StartOptions {
  paused: boolean;
  dryRun: boolean;
}

export interface StopOptions {
  /** New terminationGracePeriodSeconds of the running VMI (a faster, or forced, stop). */
  gracePeriod: number | undefined;
  dryRun: boolean;
}

export interface RestartOptions {
  /** Only 0 (force) is supported, as in KubeVirt. */
  gracePeriodSeconds: number | undefined;
  dryRun: boolean;
}

export interface DryRunOptions {
  dryRun: boolean;
}

type Query = URLSearchParams;
type Body = Record<string, unknown>;

/** Parses a request body: empty is `{}`, anything else must be a JSON object. */
export function parseBody(raw: Buffer): Body {
  const text = raw.toString('utf8').trim();
  if (text === '') return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw badRequest(
      `Can not unmarshal Request body to struct, error: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw badRequest('the request body must be a JSON object, e.g. {"dryRun": ["All"]}');
  }
  return parsed as Body;
}

/** `dryRun` from the body (a list, as in the Kubernetes API) or the query (`?dryRun=All`); only `All` exists. */
function dryRunOf(body: Body, query: Query): boolean {
  const values: unknown[] = [];
  const fromBody = body.dryRun;
  if (fromBody !== undefined && fromBody !== null) {
    if (!Array.isArray(fromBody)) throw badRequest('dryRun must be a list of strings, e.g. ["All"]');
    values.push(...(fromBody as unknown[]));
  }
  values.push(...query.getAll('dryRun'));
  for (const v of values) {
    if (v !== 'All') {
      throw badRequest(`dryRun: Unsupported value: ${JSON.stringify(v)}: supported values: "All"`);
    }
  }
  return values.length > 0;
}

function booleanOf(body: Body, query: Query, key: string): boolean {
  const fromBody = body[key];
  if (fromBody !== undefined && fromBody !== null) {
    if (typeof fromBody !== 'boolean') throw badRequest(`${key} must be true or false`);
    return fromBody;
  }
  const q = query.get(key);
  if (q === null) return false;
  if (q === '' || q === 'true') return true;
  if (q === 'false') return false;
  throw badRequest(`query parameter ${key} must be true or false, got ${JSON.stringify(q)}`);
}

function integerOf(body: Body, query: Query, key: string): number | undefined {
  const fromBody = body[key];
  let value: unknown = fromBody;
  if (fromBody === undefined || fromBody === null) {
    const q = query.get(key);
    if (q === null) return undefined;
    value = /^-?\d+$/.test(q) ? Number(q) : q;
  }
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) {
    throw badRequest(`${key} must be a whole number of seconds, got ${JSON.stringify(value)}`);
  }
  return value;
}

export function startOptions(body: Body, query: Query): StartOptions {
  return { paused: booleanOf(body, query, 'paused'), dryRun: dryRunOf(body, query) };
}

export function stopOptions(body: Body, query: Query): StopOptions {
  const gracePeriod = integerOf(body, query, 'gracePeriod');
  if (gracePeriod !== undefined && gracePeriod < 0) {
    throw badRequest(`gracePeriod must be 0 or more seconds, got ${gracePeriod}`);
  }
  return { gracePeriod, dryRun: dryRunOf(body, query) };
}

export function restartOptions(body: Body, query: Query): RestartOptions {
  const gracePeriodSeconds = integerOf(body, query, 'gracePeriodSeconds');
  if (gracePeriodSeconds !== undefined && gracePeriodSeconds > 0) {
    throw badRequest('For force restart, only gracePeriod=0 is supported for now');
  }
  if (gracePeriodSeconds !== undefined && gracePeriodSeconds < 0) {
    throw badRequest('gracePeriod has to be greater or equal to 0');
  }
  return { gracePeriodSeconds, dryRun: dryRunOf(body, query) };
}

export function dryRunOptions(body: Body, query: Query): DryRunOptions {
  return { dryRun: dryRunOf(body, query) };
}
