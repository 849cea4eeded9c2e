// Container probes as the kubelet runs them: startup first (liveness and readiness wait for it), then readiness
// (the container's `ready`) and liveness (the container is killed and restarted per restartPolicy after
// failureThreshold failures). httpGet (HTTP and HTTPS, any status in 200..399 succeeds), tcpSocket and exec (inside
// the container's namespaces) are evaluated; grpc probes fail with a message saying they are not supported.
import { execFile } from 'node:child_process';
import http from 'node:http';
import https from 'node:https';
import { connect } from 'node:net';
import type { V1Container, V1Probe } from '@kubernetes/client-node';
import type { ProbeView } from './status.ts';

export interface ProbeOutcome {
  ok: boolean;
  message: string;
}

export interface ProbeTarget {
  /** Address probes without `host` use: the pod IP. */
  podIP: string;
  container: V1Container;
  /** Runs a command inside the container (exec probes). */
  exec: (command: string[], timeoutMs: number) => Promise<ProbeOutcome>;
}

function resolvePort(port: number | string | undefined, container: V1Container): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

function httpProbe(
  probe: NonNullable<V1Probe['httpGet']>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const port = resolvePort(probe.port, target.container);
  if (port === undefined)
    return Promise.resolve({
      ok: false,
      message: `port ${String(probe.port)} is not a port of the container`,
    });
  const host = probe.host || target.podIP;
  const secure = probe.scheme === 'HTTPS';
  const headers: Record<string, string> = { 'user-agent': 'kube-probe/devcluster', accept: '*/*' };
  for (const h of probe.httpHeaders ?? []) headers[h.name.toLowerCase()] = h.value;
  return new Promise((resolve) => {
    const options = {
      host,
      port,
      path: probe.path ?? '/',
      method: 'GET',
      headers,
      timeout: timeoutMs,
      agent: false,
    };
    const onResponse = (res: http.IncomingMessage) => {
      res.resume();
      const code = res.statusCode ?? 0;
      resolve({ ok: code >= 200 && code < 400, message: `HTTP probe failed with statuscode: ${code}` });
    };
    const req = secure
      ? https.request({ ...options, rejectUnauthorized: false }, onResponse)
      : http.request(options, onResponse);
    req.on('timeout', () => req.destroy(new Error(`timeout after ${timeoutMs} ms`)));
    req.on('error', (err) =>
      resolve({
        ok: false,
        message: `Get "${secure ? 'https' : 'http'}://${host}:${port}${probe.path ?? '/'}": ${err.message}`,
      }),
    );
    req.end();
  });
}

function tcpProbe(
  probe: NonNullable<V1Probe['tcpSocket']>,
  target: ProbeTarget,
  timeoutMs: number,
): Promise<ProbeOutcome> {
  const port = resolvePort(probe.port, target.container);
  if (port === undefined)
    return Promise.resolve({
      ok: false,
      message: `port ${String(probe.port)} is not a port of the container`,
    });
  const host = probe.host || target.podIP;
  return new Promise((resolve) => {
    const socket = connect(port, host);
    const done = (ok: boolean, message: string) => {
      socket.destroy();
      resolve({ ok, message });
    };
    socket.setTimeout(timeoutMs, () => done(false, `dial tcp ${host}:${port}: i/o timeout`));
    socket.once('connect', () => done(true, ''));
    socket.once('error', (err) => done(false, `dial tcp ${host}:${port}: ${err.message}`));
  });
}

/** One run of a probe. */
export async function runProbe(probe: V1Probe, target: ProbeTarget): Promise<ProbeOutcome> {
  const timeoutMs = (probe.timeoutSeconds ?? 1) * 1000;
  if (probe.httpGet) return httpProbe(probe.httpGet, target, timeoutMs);
  if (probe.tcpSocket) return tcpProbe(probe.tcpSocket, target, timeoutMs);
  if (probe.exec) return target.exec(probe.exec.command ?? [], timeoutMs);
  if (probe.grpc)
    return {
      ok: false,
      message: 'grpc probes are not supported on devcluster; use httpGet, tcpSocket or exec',
    };
  return { ok: false, message: 'the probe names no handler' };
}

type Kind = 'startup' | 'readiness' | 'liveness';

export interface ProberCallbacks {
  /** Readiness or startup changed: the pod's status needs writing. */
  changed: () => void;
  /** Liveness or startup failed failureThreshold times: the container must be restarted. */
  failed: (kind: 'liveness' | 'startup', message: string) => void;
  /** A failed probe, for the Unhealthy event. */
  unhealthy: (kind: Kind, message: string) => void;
}

/** The probes of one container run: timers that stop when the run ends. */
export class ContainerProber {
  readonly #target: ProbeTarget;
  readonly #callbacks: ProberCallbacks;
  readonly #timers = new Set<NodeJS.Timeout>();
  #stopped = false;
  #started: boolean;
  #ready = false;

  constructor(target: ProbeTarget, callbacks: ProberCallbacks) {
    this.#target = target;
    this.#callbacks = callbacks;
    this.#started = !target.container.startupProbe;
  }

  view(): ProbeView {
    const hasReadiness = this.#target.container.readinessProbe !== undefined;
    return { started: this.#started, ready: this.#started && (hasReadiness ? this.#ready : true) };
  }

  start(): void {
    const c = this.#target.container;
    if (c.startupProbe) this.#loop('startup', c.startupProbe);
    else this.#afterStartup();
  }

  stop(): void {
    this.#stopped = true;
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
  }

  #afterStartup(): void {
    const c = this.#target.container;
    if (c.readinessProbe) this.#loop('readiness', c.readinessProbe);
    if (c.livenessProbe) this.#loop('liveness', c.livenessProbe);
  }

  #schedule(ms: number, fn: () => void): void {
    if (this.#stopped) return;
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      fn();
    }, ms);
    this.#timers.add(timer);
  }

  #loop(kind: Kind, probe: V1Probe): void {
    const periodMs = (probe.periodSeconds ?? 10) * 1000;
    const successThreshold = kind === 'readiness' ? (probe.successThreshold ?? 1) : 1;
    const failureThreshold = probe.failureThreshold ?? 3;
    let successes = 0;
    let failures = 0;
    const tick = async () => {
      if (this.#stopped) return;
      const outcome = await runProbe(probe, this.#target);
      if (this.#stopped) return;
      if (outcome.ok) {
        successes += 1;
        failures = 0;
        if (successes >= successThreshold) this.#succeeded(kind);
        if (kind === 'startup' && this.#started) return;
      } else {
        failures += 1;
        successes = 0;
        this.#callbacks.unhealthy(kind, outcome.message);
        if (failures >= failureThreshold) {
          if (kind === 'readiness') {
            if (this.#ready) {
              this.#ready = false;
              this.#callbacks.changed();
            }
          } else {
            this.#callbacks.failed(kind, `${kind} probe failed: ${outcome.message}`);
            return;
          }
        }
      }
      this.#schedule(periodMs, () => void tick());
    };
    this.#schedule((probe.initialDelaySeconds ?? 0) * 1000, () => void tick());
  }

  #succeeded(kind: Kind): void {
    if (kind === 'startup' && !this.#started) {
      this.#started = true;
      this.#callbacks.changed();
      this.#afterStartup();
    } else if (kind === 'readiness' && !this.#ready) {
      this.#ready = true;
      this.#callbacks.changed();
    }
  }
}

/** An exec probe's command inside a container: entered through nsenter into its namespaces, root and cwd. */
export function execInContainer(
  pid: number,
  env: ReadonlyMap<string, string>,
  command: string[],
  timeoutMs: number,
  nsenter = '/usr/bin/nsenter',
): Promise<ProbeOutcome> {
  return new Promise((resolve) => {
    execFile(
      nsenter,
      ['-t', String(pid), '-m', '-u', '-n', '-p', '-r', '-w', '--', ...command],
      { timeout: timeoutMs, env: Object.fromEntries(env), maxBuffer: 1024 * 1024 },
      (err, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim().slice(0, 1024);
        if (!err) resolve({ ok: true, message: output });
        else if (err.killed) resolve({ ok: false, message: `command timed out after ${timeoutMs} ms` });
        else resolve({ ok: false, message: `command failed (exit ${String(err.code)}): ${output}` });
      },
    );
  });
}
