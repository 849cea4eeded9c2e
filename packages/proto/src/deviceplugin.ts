// The kubelet's device-plugin API v1beta1 (kubelet/deviceplugin/v1beta1/api.proto), shared by both of its sides in
// this repository: virt-handler's device plugins and the devcluster node agent that plays the kubelet. Loaded at run
// time with LOADER_OPTIONS; the message types are hand-written as grpc-js hands them over with those options
// (camelCase fields, defaults filled in). The API is frozen at v1beta1, which is why hand-written types are safe;
// both sides' tests exercise every message over real gRPC.
import { fileURLToPath } from 'node:url';
import {
  loadPackageDefinition,
  type CallOptions,
  type ChannelCredentials,
  type Client,
  type ClientReadableStream,
  type ServiceDefinition,
  type ServiceError,
} from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import { LOADER_OPTIONS } from './options.ts';

/** The .proto file; src/ and dist/ are both one level below the package root. */
export const DEVICE_PLUGIN_PROTO: string = fileURLToPath(
  new URL('../kubelet/deviceplugin/v1beta1/api.proto', import.meta.url),
);

export const DEVICE_PLUGIN_API_VERSION = 'v1beta1';
/** The kubelet's registration socket inside the device-plugins folder. */
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

/** The client grpc-js builds for the DevicePlugin service (what a kubelet calls). */
export interface DevicePluginClient extends Client {
  getDevicePluginOptions(req: object, options: CallOptions, cb: Callback<DevicePluginOptions>): void;
  listAndWatch(req: object, options?: CallOptions): ClientReadableStream<ListAndWatchResponse>;
  allocate(req: AllocateRequest, options: CallOptions, cb: Callback<AllocateResponse>): void;
  preStartContainer(req: PreStartContainerRequest, options: CallOptions, cb: Callback<object>): void;
}

/** The client of the kubelet's Registration service (what a plugin calls). */
export interface RegistrationClient extends Client {
  register(req: RegisterRequest, options: CallOptions, cb: Callback<object>): void;
}

export interface DevicePluginApi {
  registration: ServiceDefinition;
  devicePlugin: ServiceDefinition;
  RegistrationClient: new (target: string, creds: ChannelCredentials) => RegistrationClient;
  DevicePluginClient: new (target: string, creds: ChannelCredentials) => DevicePluginClient;
}

let loaded: DevicePluginApi | undefined;

/** The v1beta1 services, loaded once per process. */
export function devicePluginApi(): DevicePluginApi {
  if (!loaded) {
    let definition;
    try {
      definition = loadSync(DEVICE_PLUGIN_PROTO, LOADER_OPTIONS);
    } catch (err) {
      throw new Error(
        `cannot load the device-plugin API from ${DEVICE_PLUGIN_PROTO}: ${err instanceof Error ? err.message : String(err)}; ` +
          'the kubelet/ folder must ship with @kubevirt-ts/proto (package.json "files")',
        { cause: err },
      );
    }
    const pkg = loadPackageDefinition(definition).v1beta1 as unknown as {
      Registration: DevicePluginApi['RegistrationClient'] & { service: ServiceDefinition };
      DevicePlugin: DevicePluginApi['DevicePluginClient'] & { service: ServiceDefinition };
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
