// The kubelet's device-plugin API v1beta1 (proto/deviceplugin/v1beta1/api.proto), loaded at run time with the same
// proto-loader options as the project's own contracts, and hand-written types for its messages as grpc-js hands
// them over with those options (camelCase fields, defaults filled in). The API is frozen at v1beta1, which is why
// hand-written types are safe here; the device-plugin tests exercise every message over real gRPC.
import { fileURLToPath } from 'node:url';
import {
  loadPackageDefinition,
  type ChannelCredentials,
  type Client,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS } from '@kubevirt-ts/proto';

/** The .proto file; src/deviceplugin/ and dist/deviceplugin/ are both two levels below the package root. */
export const DEVICE_PLUGIN_PROTO: string = fileURLToPath(
  new URL('../../proto/deviceplugin/v1beta1/api.proto', import.meta.url),
);

export const DEVICE_PLUGIN_API_VERSION = 'v1beta1';
export const KUBELET_SOCKET = 'kubelet.sock';
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

export interface DeviceSpec {
  containerPath: string;
  hostPath: string;
  permissions: string;
}

export interface ContainerAllocateResponse {
  envs: Record<string, string>;
  mounts: { containerPath: string; hostPath: string; readOnly: boolean }[];
  devices: DeviceSpec[];
  annotations: Record<string, string>;
  cdiDevices: { name: string }[];
}

export interface AllocateResponse {
  containerResponses: ContainerAllocateResponse[];
}

export interface PreferredAllocationRequest {
  containerRequests: {
    availableDeviceIDs: string[];
    mustIncludeDeviceIDs: string[];
    allocationSize: number;
  }[];
}

export interface PreferredAllocationResponse {
  containerResponses: { deviceIDs: string[] }[];
}

export type Callback<T> = (err: ServiceError | null, value?: T) => void;

export interface RegistrationClient extends Client {
  register(req: RegisterRequest, options: { deadline: Date }, cb: Callback<object>): void;
}

interface Loaded {
  registration: ServiceDefinition;
  devicePlugin: ServiceDefinition;
  RegistrationClient: new (target: string, creds: ChannelCredentials) => RegistrationClient;
  DevicePluginClient: new (target: string, creds: ChannelCredentials) => Client;
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
        `cannot load the device-plugin API from ${DEVICE_PLUGIN_PROTO}: ${(err as Error).message}; ` +
          'the proto/ folder must ship with @kubevirt-ts/handler (package.json "files")',
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
