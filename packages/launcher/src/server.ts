// launcher.v1 on the pod's sockets dir: served on launcher-init-sock while the launcher starts, renamed to
// launcher-sock once it takes commands (the handler only talks to launcher-sock). A command the launcher understood
// but could not carry out answers success=false with the reason; only a broken launcher answers a gRPC error.
import { rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { RpcError, serveLauncher } from '@kubevirt-ts/proto';
import type { LauncherImplementation, RunningServer } from '@kubevirt-ts/proto';
import type { Logger } from '@kubevirt-ts/runtime';
import { status } from '@grpc/grpc-js';
import { CommandError } from './manager.ts';
import type { DomainManager } from './manager.ts';
import type { VirtualMachineInstance } from './vmi.ts';

export const INIT_SOCKET = 'launcher-init-sock';
export const READY_SOCKET = 'launcher-sock';

interface Outcome {
  success: boolean;
  message: string;
}

function parseVmi(json: Buffer): VirtualMachineInstance {
  let vmi: unknown;
  try {
    vmi = JSON.parse(json.toString('utf8'));
  } catch (err) {
    throw new RpcError(status.INVALID_ARGUMENT, `vmi_json is not JSON: ${(err as Error).message}`);
  }
  const v = vmi as Partial<VirtualMachineInstance> | null;
  if (!v || typeof v !== 'object' || !v.metadata || !v.spec?.domain) {
    throw new RpcError(
      status.INVALID_ARGUMENT,
      'vmi_json is not a VirtualMachineInstance (metadata and spec.domain are required)',
    );
  }
  return v as VirtualMachineInstance;
}

function optionalVmi(json: Buffer): VirtualMachineInstance | undefined {
  return json.length === 0 ? undefined : parseVmi(json);
}

/** Runs a command: a CommandError (or a libvirt refusal) is an unsuccessful outcome, not a transport error. */
async function outcome(work: () => Promise<unknown>): Promise<Outcome> {
  try {
    await work();
    return { success: true, message: '' };
  } catch (err) {
    if (err instanceof RpcError) throw err;
    if (err instanceof CommandError || (err instanceof Error && err.name === 'LibvirtError')) {
      return { success: false, message: err.message };
    }
    throw err;
  }
}

export function launcherImplementation(manager: DomainManager): LauncherImplementation {
  return {
    sync: ({ vmiJson }) => outcome(() => manager.sync(parseVmi(vmiJson))),
    pause: ({ vmiJson }) => outcome(() => manager.pause(optionalVmi(vmiJson))),
    unpause: ({ vmiJson }) => outcome(() => manager.unpause(optionalVmi(vmiJson))),
    shutdown: ({ gracePeriodSeconds, vmiJson }) =>
      outcome(() => {
        const vmi = optionalVmi(vmiJson);
        // proto3 cannot tell 0 from unset: without a VMI, 0 means "the recorded grace period".
        const grace = vmi ? gracePeriodSeconds : gracePeriodSeconds || undefined;
        return manager.shutdown(grace);
      }),
    kill: ({ vmiJson }) => outcome(() => manager.kill(optionalVmi(vmiJson))),
    delete: ({ vmiJson }) => outcome(() => manager.delete(optionalVmi(vmiJson))),
    softReboot: ({ vmiJson }) => outcome(() => manager.softReboot(optionalVmi(vmiJson))),
    reset: ({ vmiJson }) => outcome(() => manager.reset(optionalVmi(vmiJson))),
    getDomain: async () => {
      const domain = await manager.domain();
      return {
        success: true,
        message: '',
        domainJson: domain ? Buffer.from(JSON.stringify(domain)) : Buffer.alloc(0),
      };
    },
    getStats: async () => {
      let statsJson = Buffer.alloc(0);
      const result = await outcome(async () => {
        statsJson = Buffer.from(JSON.stringify(await manager.stats()));
      });
      return { ...result, statsJson };
    },
    getGuestInfo: async () => {
      let guestInfoJson = Buffer.alloc(0);
      const result = await outcome(async () => {
        guestInfoJson = Buffer.from(JSON.stringify(await manager.guestInfo()));
      });
      return { ...result, guestInfoJson };
    },
    ping: () => ({ success: true, message: '' }),
  };
}

export interface CommandServer {
  /** Renames launcher-init-sock to launcher-sock: the handler may send commands from now on. */
  markReady(): Promise<void>;
  shutdown(graceMs?: number): Promise<void>;
}

export async function startCommandServer(
  socketsDir: string,
  manager: DomainManager,
  log: Logger,
): Promise<CommandServer> {
  const init = join(socketsDir, INIT_SOCKET);
  const ready = join(socketsDir, READY_SOCKET);
  // A launcher-sock left by a previous run of this container would let the handler talk to nobody.
  await rm(ready, { force: true });
  const server: RunningServer = await serveLauncher({ unix: init }, launcherImplementation(manager), {
    logger: log.child({ component: 'command-server' }),
  });
  return {
    markReady: () => rename(init, ready),
    shutdown: async (graceMs) => {
      await server.shutdown(graceMs);
      await rm(ready, { force: true });
    },
  };
}
