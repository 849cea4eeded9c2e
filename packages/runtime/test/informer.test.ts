// The informer and the workqueue + informer reconcile loop against a real API server (issue 3, item 5).
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createInformer, type Informer } from '../src/informer.ts';
import { isNotFound, mergePatchOptions, resourcePath } from '../src/kube.ts';
import { silentLogger } from '../src/logger.ts';
import { WorkQueue, runWorkers } from '../src/workqueue.ts';
import {
  clusterCommand,
  clusterKubeConfig,
  createTestNamespace,
  eventually,
  integration,
  needsCluster,
} from './cluster.ts';

const restartApiServer = clusterCommand('KUBEVIRT_TS_APISERVER_RESTART');
const expireWatches = clusterCommand('KUBEVIRT_TS_WATCH_EXPIRE');

describe.skipIf(!integration)(`informer against the real API server ${needsCluster}`, () => {
  let kc: KubeConfig;
  let core: CoreV1Api;
  let namespace: string;
  let removeNamespace: () => Promise<void>;

  beforeAll(async () => {
    kc = clusterKubeConfig();
    core = kc.makeApiClient(CoreV1Api);
    ({ name: namespace, remove: removeNamespace } = await createTestNamespace(kc, 'runtime-informer'));
  });
  afterAll(async () => {
    await removeNamespace?.();
  });

  function configMapInformer(labelSelector: string): Informer<V1ConfigMap> {
    return createInformer<V1ConfigMap>({
      name: 'configmaps',
      kubeConfig: kc,
      path: resourcePath({ version: 'v1', plural: 'configmaps', namespace }),
      list: (opts) => core.listNamespacedConfigMap({ namespace, ...opts }),
      labelSelector,
      log: silentLogger(),
      backoff: { baseMs: 200, maxMs: 2000 },
    });
  }

  const configMap = (name: string, app: string, value: string): V1ConfigMap => ({
    metadata: { name, namespace, labels: { app } },
    data: { value },
  });

  it('syncs, then sees add, update and delete', async () => {
    await core.createNamespacedConfigMap({ namespace, body: configMap('before', 'events', '1') });
    const informer = configMapInformer('app=events');
    const seen: string[] = [];
    informer.addHandlers({
      add: (o) => seen.push(`add ${o.metadata?.name}`),
      update: (o) => seen.push(`update ${o.metadata?.name} ${o.data?.value}`),
      delete: (o) => seen.push(`delete ${o.metadata?.name}`),
    });
    informer.start();
    try {
      await informer.synced;
      expect(informer.keys()).toEqual([`${namespace}/before`]);

      await core.createNamespacedConfigMap({ namespace, body: configMap('after', 'events', '1') });
      await core.patchNamespacedConfigMap(
        { name: 'after', namespace, body: { data: { value: '2' } } },
        mergePatchOptions(),
      );
      await core.deleteNamespacedConfigMap({ name: 'before', namespace });
      await eventually(() => seen.includes('delete before'), 30_000, 'the delete event');
      expect(seen).toEqual(['add before', 'add after', 'update after 2', 'delete before']);
      expect(informer.get(`${namespace}/after`)?.data?.value).toBe('2');
      expect(informer.get(`${namespace}/before`)).toBeUndefined();
    } finally {
      await informer.stop();
    }
  });

  it.skipIf(!expireWatches)(
    `relists after 410 Gone and reports what changed meanwhile ${expireWatches ? '' : '(needs KUBEVIRT_TS_WATCH_EXPIRE)'}`,
    async () => {
      await core.createNamespacedConfigMap({ namespace, body: configMap('kept', 'expire', '1') });
      await core.createNamespacedConfigMap({ namespace, body: configMap('doomed', 'expire', '1') });
      const informer = configMapInformer('app=expire');
      const seen: string[] = [];
      informer.addHandlers({
        add: (o) => seen.push(`add ${o.metadata?.name}`),
        delete: (o) => seen.push(`delete ${o.metadata?.name}`),
      });
      informer.start();
      await informer.synced;
      // Stopped, the informer keeps its resourceVersion; the changes below happen while nobody watches.
      await informer.stop();
      await core.deleteNamespacedConfigMap({ name: 'doomed', namespace });
      await core.createNamespacedConfigMap({ namespace, body: configMap('born', 'expire', '1') });
      await expireWatches!();
      seen.length = 0;
      informer.start();
      try {
        await eventually(() => seen.length >= 2, 60_000, 'the relist after 410');
        expect(seen.sort()).toEqual(['add born', 'delete doomed']);
        expect(informer.keys().sort()).toEqual([`${namespace}/born`, `${namespace}/kept`]);
      } finally {
        await informer.stop();
      }
    },
  );

  it.skipIf(!restartApiServer)(
    `reconcile loop converges across an API server restart ${restartApiServer ? '' : '(needs KUBEVIRT_TS_APISERVER_RESTART)'}`,
    async () => {
      const informer = configMapInformer('app=converge');
      const queue = new WorkQueue<string>({ name: 'converge' });
      informer.enqueueTo(queue);
      const ctrl = new AbortController();
      // Level-triggered: copy data.value into an annotation, reading the object from the cache by key.
      const workers = runWorkers(
        queue,
        2,
        async (key) => {
          const cm = informer.get(key);
          if (!cm?.metadata?.name) return;
          const want = cm.data?.value ?? '';
          if (cm.metadata.annotations?.reconciled === want) return;
          try {
            await core.patchNamespacedConfigMap(
              {
                name: cm.metadata.name,
                namespace,
                body: { metadata: { annotations: { reconciled: want } } },
              },
              mergePatchOptions(),
            );
          } catch (err) {
            if (!isNotFound(err)) throw err;
          }
        },
        ctrl.signal,
      );
      informer.start();
      try {
        await informer.synced;
        const names = Array.from({ length: 10 }, (_, i) => `cm-${i}`);
        for (const n of names)
          await core.createNamespacedConfigMap({ namespace, body: configMap(n, 'converge', '1') });
        await restartApiServer!();
        for (const n of names) {
          await core.patchNamespacedConfigMap(
            { name: n, namespace, body: { data: { value: '2' } } },
            mergePatchOptions(),
          );
        }
        await eventually(
          async () => {
            const list = await core.listNamespacedConfigMap({ namespace, labelSelector: 'app=converge' });
            return (
              list.items.length === names.length &&
              list.items.every((c) => c.metadata?.annotations?.reconciled === '2')
            );
          },
          90_000,
          'every ConfigMap to be reconciled to value 2',
        );
      } finally {
        ctrl.abort();
        await workers;
        await informer.stop();
      }
    },
  );
});
