// Client of the supervisor's control socket (HTTP over a unix socket in the state dir's run/ folder).
import { DevclusterError } from './errors.ts';
import { request } from './probe.ts';
import type { ComponentStatus, SupervisorStatus } from './spec.ts';

/** The supervisor's status, or undefined when nothing answers on the socket. */
export async function supervisorStatus(controlSocket: string): Promise<SupervisorStatus | undefined> {
  try {
    const res = await request({ socketPath: controlSocket, host: 'localhost' }, '/status', {
      timeoutMs: 3_000,
    });
    return res.status === 200 ? (JSON.parse(res.body) as SupervisorStatus) : undefined;
  } catch {
    return undefined;
  }
}

/** Restarts one component through the supervisor and resolves once it is ready again. */
export async function restartComponent(controlSocket: string, name: string): Promise<ComponentStatus> {
  let res;
  try {
    res = await request(
      { socketPath: controlSocket, host: 'localhost' },
      `/components/${encodeURIComponent(name)}/restart`,
      {
        method: 'POST',
        timeoutMs: 150_000,
      },
    );
  } catch (err) {
    throw new DevclusterError(
      `cannot reach the devcluster supervisor at ${controlSocket}`,
      'is devcluster up? (devcluster status)',
      { cause: err },
    );
  }
  if (res.status !== 200) {
    const detail = (JSON.parse(res.body) as { error?: string }).error ?? res.body;
    throw new DevclusterError(`restart of ${name} failed: ${detail}`, `see its log: devcluster logs ${name}`);
  }
  return JSON.parse(res.body) as ComponentStatus;
}

/** Asks the supervisor to stop every component and exit; true when it accepted. */
export async function requestShutdown(controlSocket: string): Promise<boolean> {
  try {
    const res = await request({ socketPath: controlSocket, host: 'localhost' }, '/shutdown', {
      method: 'POST',
    });
    return res.status === 202;
  } catch {
    return false;
  }
}
