// @kubevirt-ts/api: virt-api as a library, for tests, benchmarks and tools that run it in-process.
export { startVirtApi, type ServingCertificate, type VirtApi, type VirtApiOptions } from './app.ts';
export { VirtApiServer, type VirtApiServerOptions } from './server.ts';
export { ClusterCaches, type ClusterCachesOptions } from './caches.ts';
export {
  AUTHENTICATION_CONFIGMAP,
  RequestHeaderAuthenticator,
  requestHeaderConfigFrom,
  type Authentication,
  type RequestHeaderConfig,
} from './auth.ts';
export * from './discovery.ts';
export * from './admission/admitters.ts';
export * from './admission/review.ts';
export { changedPaths, createPatch, jsonEqual } from './admission/json.ts';
