// @kubevirt-ts/runtime: the service kit every kubevirt-ts service is built on.
export * from './config.ts';
export * from './health.ts';
export * from './informer.ts';
export * from './kube.ts';
export * from './leader.ts';
export * from './logger.ts';
export * from './metrics.ts';
export * from './service.ts';
export * from './shutdown.ts';
export * from './tls.ts';
export * from './workqueue.ts';
