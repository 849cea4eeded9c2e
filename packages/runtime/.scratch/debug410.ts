import { CoreV1Api, Watch, type V1ConfigMap } from '@kubernetes/client-node';
import { execFileSync } from 'node:child_process';
import { pino } from 'pino';
import { createInformer } from '../src/informer.ts';
import { loadKubeConfig, resourcePath } from '../src/kube.ts';

const kc = loadKubeConfig().kubeConfig;
const core = kc.makeApiClient(CoreV1Api);
const log = pino({ level: 'trace' });
const real = new Watch(kc);
let n = 0;
const ns = (await core.createNamespace({ body: { metadata: { generateName: 'debug410-' } } })).metadata!.name!;
const cm = (name: string): V1ConfigMap => ({ metadata: { name, namespace: ns, labels: { app: 'expire' } }, data: { v: '1' } });
await core.createNamespacedConfigMap({ namespace: ns, body: cm('kept') });
await core.createNamespacedConfigMap({ namespace: ns, body: cm('doomed') });
const inf = createInformer<V1ConfigMap>({
  name: 'cm', kubeConfig: kc, path: resourcePath({ version: 'v1', plural: 'configmaps', namespace: ns }),
  list: (o) => core.listNamespacedConfigMap({ namespace: ns, ...o }), labelSelector: 'app=expire', log,
  backoff: { baseMs: 200, maxMs: 2000 },
  watch: async (path, q, cb, done) => {
    const id = ++n;
    log.info({ id, q }, 'WATCH start');
    const c = await real.watch(path, q, (ph, o: any, w) => { log.info({ id, ph, rv: o?.metadata?.resourceVersion, name: o?.metadata?.name, code: o?.code }, 'WATCH event'); cb(ph, o, w); },
      (err: any) => { log.info({ id, err: err ? String(err) + ' ' + err.statusCode : null, stack: err ? new Error().stack : undefined }, 'WATCH done'); done(err); });
    log.info({ id }, 'WATCH returned');
    const orig = c.abort.bind(c);
    c.abort = (r?: unknown) => { log.info({ id, stack: new Error().stack }, 'WATCH abort called'); orig(r); };
    return c;
  },
});
inf.addHandlers({ add: (o) => log.info(`HANDLER add ${o.metadata?.name}`), delete: (o) => log.info(`HANDLER delete ${o.metadata?.name}`) });
inf.start();
await inf.synced;
log.info({ rv: inf.resourceVersion(), state: inf.state }, 'synced');
await inf.stop();
log.info({ rv: inf.resourceVersion(), state: inf.state }, 'stopped');
await core.deleteNamespacedConfigMap({ name: 'doomed', namespace: ns });
await core.createNamespacedConfigMap({ namespace: ns, body: cm('born') });
execFileSync('/bin/sh', ['-c', process.env.KUBEVIRT_TS_WATCH_EXPIRE!], { stdio: 'inherit' });
log.info('expired; starting again');
inf.start();
await new Promise((r) => setTimeout(r, 20_000));
log.info({ rv: inf.resourceVersion(), state: inf.state, keys: inf.keys() }, 'after 20s');
await inf.stop();
await core.deleteNamespace({ name: ns });
process.exit(0);
