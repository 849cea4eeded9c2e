// A container's environment and command line as the kubelet builds them: the service variables first, then
// envFrom in order, then env in order, each value expanded against what was defined before it (`$(VAR)`; `$$`
// escapes), with fieldRef/resourceFieldRef/configMapKeyRef/secretKeyRef resolved. Also the downward API values
// the downwardAPI volume shares. Pure: the caller fetches the ConfigMaps and Secrets first.
import type {
  V1ConfigMap,
  V1Container,
  V1ObjectFieldSelector,
  V1Pod,
  V1ResourceFieldSelector,
  V1Secret,
} from '@kubernetes/client-node';

/** A problem that keeps the container from being created: the kubelet's CreateContainerConfigError. */
export class ContainerConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContainerConfigError';
  }
}

/** Expands `$(NAME)` references from `vars`; `$$` is a literal `$`; unknown or unclosed references stay as written. */
export function expandReferences(input: string, vars: ReadonlyMap<string, string>): string {
  let out = '';
  for (let i = 0; i < input.length; i++) {
    const ch = input[i];
    if (ch !== '$' || i + 1 >= input.length) {
      out += ch;
      continue;
    }
    const next = input[i + 1];
    if (next === '$') {
      out += '$';
      i += 1;
    } else if (next === '(') {
      const close = input.indexOf(')', i + 2);
      if (close < 0) {
        out += input.slice(i);
        break;
      }
      const name = input.slice(i + 2, close);
      const value = vars.get(name);
      out += value ?? `$(${name})`;
      i = close;
    } else {
      out += ch;
    }
  }
  return out;
}

const BINARY_SUFFIXES: Record<string, number> = {
  Ki: 2 ** 10,
  Mi: 2 ** 20,
  Gi: 2 ** 30,
  Ti: 2 ** 40,
  Pi: 2 ** 50,
  Ei: 2 ** 60,
};
const DECIMAL_SUFFIXES: Record<string, number> = {
  n: 1e-9,
  u: 1e-6,
  m: 1e-3,
  '': 1,
  k: 1e3,
  M: 1e6,
  G: 1e9,
  T: 1e12,
  P: 1e15,
  E: 1e18,
};

/** A Kubernetes quantity (`500m`, `128Mi`, `1e3`, `2`) as a number. */
export function parseQuantity(value: string | number): number {
  if (typeof value === 'number') return value;
  const m = /^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)([a-zA-Z]*)$/.exec(value.trim());
  if (!m) throw new Error(`${JSON.stringify(value)} is not a quantity`);
  const number = Number(m[1]);
  const suffix = m[2] ?? '';
  const factor = BINARY_SUFFIXES[suffix] ?? DECIMAL_SUFFIXES[suffix];
  if (factor === undefined || Number.isNaN(number))
    throw new Error(`${JSON.stringify(value)} is not a quantity`);
  return number * factor;
}

export interface DownwardContext {
  pod: V1Pod;
  nodeName: string;
  hostIP: string;
  podIP: string | undefined;
  /** The node's allocatable cpu/memory/ephemeral-storage: a resource field's value when the container sets no limit. */
  nodeAllocatable: Record<string, string>;
}

const ANNOTATION_OR_LABEL = /^metadata\.(labels|annotations)\['(.+)'\]$/;

function mapAsLines(map: Record<string, string> | undefined): string {
  return Object.keys(map ?? {})
    .sort()
    .map((k) => `${k}=${JSON.stringify(map?.[k] ?? '')}`)
    .join('\n');
}

/** The value of a fieldRef (env var or downwardAPI file). */
export function fieldValue(ref: V1ObjectFieldSelector, ctx: DownwardContext): string {
  const meta = ctx.pod.metadata ?? {};
  const path = ref.fieldPath;
  const keyed = ANNOTATION_OR_LABEL.exec(path);
  if (keyed) {
    const map = keyed[1] === 'labels' ? meta.labels : meta.annotations;
    return map?.[keyed[2] ?? ''] ?? '';
  }
  switch (path) {
    case 'metadata.name':
      return meta.name ?? '';
    case 'metadata.namespace':
      return meta.namespace ?? '';
    case 'metadata.uid':
      return meta.uid ?? '';
    case 'metadata.labels':
      return mapAsLines(meta.labels);
    case 'metadata.annotations':
      return mapAsLines(meta.annotations);
    case 'spec.nodeName':
      return ctx.nodeName;
    case 'spec.serviceAccountName':
      return ctx.pod.spec?.serviceAccountName ?? 'default';
    case 'status.hostIP':
    case 'status.hostIPs':
      return ctx.hostIP;
    case 'status.podIP':
    case 'status.podIPs':
      return ctx.podIP ?? '';
    default:
      throw new ContainerConfigError(`fieldRef ${path} is not supported`);
  }
}

/** The value of a resourceFieldRef: the container's limit (or request), else the node's allocatable, over the divisor. */
export function resourceFieldValue(
  ref: V1ResourceFieldSelector,
  containers: V1Container[],
  ctx: DownwardContext,
): string {
  const container = ref.containerName ? containers.find((c) => c.name === ref.containerName) : containers[0];
  if (!container)
    throw new ContainerConfigError(
      `resourceFieldRef names container ${ref.containerName}, which the pod does not have`,
    );
  const [kind, resource] = ref.resource.split('.', 2) as [string, string | undefined];
  if ((kind !== 'limits' && kind !== 'requests') || !resource) {
    throw new ContainerConfigError(`resourceFieldRef resource ${ref.resource} is not supported`);
  }
  const own =
    kind === 'limits' ? container.resources?.limits?.[resource] : container.resources?.requests?.[resource];
  const fallback = kind === 'limits' ? ctx.nodeAllocatable[resource] : '0';
  const raw = own ?? fallback ?? '0';
  const divisor = parseQuantity(ref.divisor ?? (resource === 'cpu' ? '1' : '1'));
  return String(Math.ceil(parseQuantity(raw) / divisor));
}

export interface EnvSources {
  configMaps: ReadonlyMap<string, V1ConfigMap>;
  secrets: ReadonlyMap<string, V1Secret>;
}

function secretValue(secret: V1Secret, key: string): string | undefined {
  const data = secret.data?.[key];
  if (data !== undefined) return Buffer.from(data, 'base64').toString('utf8');
  return secret.stringData?.[key];
}

/** Names the container's env refers to, so the caller can fetch them before envFor(). */
export function envReferences(container: V1Container): { configMaps: Set<string>; secrets: Set<string> } {
  const configMaps = new Set<string>();
  const secrets = new Set<string>();
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef?.name) configMaps.add(from.configMapRef.name);
    if (from.secretRef?.name) secrets.add(from.secretRef.name);
  }
  for (const env of container.env ?? []) {
    if (env.valueFrom?.configMapKeyRef?.name) configMaps.add(env.valueFrom.configMapKeyRef.name);
    if (env.valueFrom?.secretKeyRef?.name) secrets.add(env.valueFrom.secretKeyRef.name);
  }
  return { configMaps, secrets };
}

/**
 * The container's environment, in the kubelet's order of precedence (later wins): `base` (image env and service
 * variables), envFrom, env. Throws ContainerConfigError for a reference that must exist and does not.
 */
export function envFor(
  container: V1Container,
  base: Record<string, string>,
  sources: EnvSources,
  ctx: DownwardContext,
): Map<string, string> {
  const vars = new Map<string, string>(Object.entries(base));
  const containers = [...(ctx.pod.spec?.initContainers ?? []), ...(ctx.pod.spec?.containers ?? [])];
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) {
      const cm = sources.configMaps.get(from.configMapRef.name ?? '');
      if (!cm) {
        if (from.configMapRef.optional) continue;
        throw new ContainerConfigError(`configmap "${from.configMapRef.name}" not found`);
      }
      for (const [k, v] of Object.entries(cm.data ?? {})) vars.set(`${prefix}${k}`, v);
    }
    if (from.secretRef) {
      const secret = sources.secrets.get(from.secretRef.name ?? '');
      if (!secret) {
        if (from.secretRef.optional) continue;
        throw new ContainerConfigError(`secret "${from.secretRef.name}" not found`);
      }
      for (const k of Object.keys(secret.data ?? {})) vars.set(`${prefix}${k}`, secretValue(secret, k) ?? '');
    }
  }
  for (const env of container.env ?? []) {
    const from = env.valueFrom;
    if (!from) {
      vars.set(env.name, expandReferences(env.value ?? '', vars));
      continue;
    }
    if (from.fieldRef) vars.set(env.name, fieldValue(from.fieldRef, ctx));
    else if (from.resourceFieldRef) {
      vars.set(
        env.name,
        resourceFieldValue({ containerName: container.name, ...from.resourceFieldRef }, containers, ctx),
      );
    } else if (from.configMapKeyRef) {
      const ref = from.configMapKeyRef;
      const value = sources.configMaps.get(ref.name ?? '')?.data?.[ref.key];
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(
          `couldn't find key ${ref.key} in ConfigMap ${ctx.pod.metadata?.namespace}/${ref.name}`,
        );
      }
      vars.set(env.name, value);
    } else if (from.secretKeyRef) {
      const ref = from.secretKeyRef;
      const secret = sources.secrets.get(ref.name ?? '');
      const value = secret ? secretValue(secret, ref.key) : undefined;
      if (value === undefined) {
        if (ref.optional) continue;
        throw new ContainerConfigError(
          `couldn't find key ${ref.key} in Secret ${ctx.pod.metadata?.namespace}/${ref.name}`,
        );
      }
      vars.set(env.name, value);
    } else {
      throw new ContainerConfigError(`env ${env.name}: this kind of valueFrom is not supported`);
    }
  }
  return vars;
}

/**
 * The argv a container runs: command replaces the image's entrypoint, args replace its cmd (and an image cmd is
 * dropped when command is set), with `$(VAR)` expanded from the container's environment.
 */
export function containerArgv(
  container: V1Container,
  image: { entrypoint: string[]; cmd: string[] },
  env: ReadonlyMap<string, string>,
): string[] {
  const expand = (list: string[]) => list.map((arg) => expandReferences(arg, env));
  const command = container.command ? expand(container.command) : image.entrypoint;
  const args = container.args ? expand(container.args) : container.command ? [] : image.cmd;
  return [...command, ...args];
}
