// @kubevirt-ts/api: virt-api as a library, for tests, benchmarks and tools that run it in-process.
export {
  startVirtApi,
  type HandlerClientCertificate,
  type ServingCertificate,
  type VirtApi,
  type VirtApiOptions,
} from './app.ts';
export { VirtApiServer, type SubresourceEndpoint, type VirtApiServerOptions } from './server.ts';
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
export { SubresourceApi, type RequestUser, type SubresourceApiOptions } from './subresources/api.ts';
export {
  SubjectAccessReviewAuthorizer,
  accessDenied,
  type AccessDecision,
  type AccessRequest,
  type Authorizer,
} from './subresources/authorizer.ts';
export {
  DEFAULT_HANDLER_PORT,
  DEFAULT_HANDLER_SELECTOR,
  HANDLER_SERVER_NAME,
  HandlerDialer,
  HandlerLocator,
  type HandlerEndpoint,
} from './subresources/handler.ts';
export { SubresourceError, type StatusBody } from './subresources/errors.ts';
export * from './subresources/request.ts';
export * from './subresources/state-change.ts';
export { PLAIN_STREAM_PROTOCOL } from './subresources/websocket.ts';
export {
  KubernetesObjectStore,
  isTestFailure,
  type ObjectStore,
  type PatchOptions,
} from './subresources/store.ts';
