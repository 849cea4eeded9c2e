// The kubelet's device-plugin API v1beta1 (proto/deviceplugin/v1beta1/api.proto), loaded at run time with
// @grpc/proto-loader, and hand-written types for its messages as grpc-js hands them to us with LOADER_OPTIONS
// (camelCase fields, defaults filled in). The .proto sits in the package's proto/ folder: src/node/deviceplugin/
// and dist/node/deviceplugin/ are both three levels below the package root.
import { fileURLToPath } from 'node:url';
import {
  loadPackageDefinition,
  type Client,
  type ClientReadableStream,
  type ServiceDefinition,
  type CallOptions,
  type ChannelCredentials,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync, type Options } from '@grpc/proto-loader';

export const DEVICE_PLUGIN_PROTO: string = fileURLToPath(
  new URL('../../../proto/deviceplugin/v1beta1/api.proto', import.meta.url),
);

export const LOADER_OPTIONS = {
  keepCase: false,
  longs: String,
  enums: String,
  defaults: true,
  oneofs: true,
} as const satisfies Options;

export const HEALTHY = 'Healthy';
export const UNHEALTHY = 'Unhealthy';

export interface DevicePluginOptions {
  preStartRequired: boolean;
  getPreferredAllocationAvailable: boolean;
}

export interface RegisterRequest {
  version: string;
  endpoint: string;
  resourceName: string;
  options?: DevicePluginOptions | null;
}

export interface Device {
  ID: string;
  health: string;
  topology?: { nodes: { ID: string }[] } | null;
}

export interface ListAndWatchResponse {
  devices: Device[];
}

export interface AllocateRequest {
  containerRequests: { devicesIds: string[] }[];
}

export interface Mount {
  containerPath: string;
  hostPath: string;
  readOnly: boolean;
}

export interface DeviceSpec {
  containerPath: string;
  hostPath: string;
  permissions: string;
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: Mount[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdiDevices: { name: string }[];
}

export interface AllocateResponse {
  containerResponses: ContainerAllocateResponse[];
}

export interface PreStartContainerRequest {
  devicesIds: string[];
}

type Callback<T> = (err: ServiceError | null, value?: T) => void;

/** The client grpc-js builds for the DevicePlugin service (the methods the node agent calls). */
export interface DevicePluginClient extends Client {
  getDevicePluginOptions(req: object, options: CallOptions, cb: Callback<DevicePluginOptions>): void;
  listAndWatch(req: object, options?: CallOptions): ClientReadableStream<ListAndWatchResponse>;
  allocate(req: AllocateRequest, options: CallOptions, cb: Callback<AllocateResponse>): void;
  preStartContainer(req: PreStartContainerRequest, options: CallOptions, cb: Callback<object>): void;
}

export interface RegistrationClient extends Client {
  register(req: RegisterRequest, options: CallOptions, cb: Callback<object>): void;
}

interface Loaded {
  registration: ServiceDefinition;
  devicePlugin: ServiceDefinition;
  RegistrationClient: new (target: string, creds: ChannelCredentials) => RegistrationClient;
  DevicePluginClient: new (target: string, creds: ChannelCredentials) => DevicePluginClient;
}

let loaded: Loaded | undefined;

/** The v1beta1 services, loaded once per process. */
export function devicePluginApi(): Loaded {
  if (!loaded) {
    let definition;
    try {
      definition = loadSync(DEVICE_PLUGIN_PROTO, LOADER_OPTIONS);
    } catch (err) {
      throw new Error(
        `cannot load the device-plugin API from ${DEVICE_PLUGIN_PROTO}: ${err instanceof Error ? err.message : String(err)}; ` +
          'the proto/ folder must ship with @kubevirt-ts/devcluster (package.json "files")',
        { cause: err },
      );
    }
    const pkg = loadPackageDefinition(definition).v1beta1 as unknown as {
      Registration: Loaded['RegistrationClient'] & { service: ServiceDefinition };
      DevicePlugin: Loaded['DevicePluginClient'] & { service: ServiceDefinition };
    };
    loaded = {
      registration: pkg.Registration.service,
      devicePlugin: pkg.DevicePlugin.service,
      RegistrationClient: pkg.Registration,
      DevicePluginClient: pkg.DevicePlugin,
    };
  }
  return loaded;
}

/** A deadline for one unary call, `ms` from now. */
export function deadline(ms: number): CallOptions {
  return { deadline: new Date(Date.now() + ms) };
}

/** Promise form of a unary call. */
export function unary<T>(call: (cb: Callback<T>) => void): Promise<T> {
  return new Promise((resolve, reject) => {
    call((err, value) => (err ? reject(err) : resolve(value as T)));
  });
}

/**
 * A resource name a device plugin may register: `domain/name` with a DNS-subdomain domain that is not
 * kubernetes.io (those names belong to Kubernetes), as the kubelet checks.
 */
export function validResourceName(name: string): string | undefined {
  const slash = name.indexOf('/');
  if (slash <= 0) return `resource name ${JSON.stringify(name)} has no domain (expected domain/name)`;
  const domain = name.slice(0, slash);
  const local = name.slice(slash + 1);
  if (domain === 'kubernetes.io' || domain.endsWith('.kubernetes.io')) {
    return `resource name ${JSON.stringify(name)} is in the kubernetes.io domain, which extended resources may not use`;
  }
  if (
    !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(domain) ||
    domain.length > 253
  ) {
    return `resource name ${JSON.stringify(name)}: ${domain} is not a DNS subdomain`;
  }
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$/.test(local) || local.length > 63) {
    return `resource name ${JSON.stringify(name)}: ${local} is not a valid name`;
  }
  return undefined;
}
