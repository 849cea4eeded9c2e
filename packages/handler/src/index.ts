// @kubevirt-ts/handler: virt-handler (src/main.ts is the process). The library exports are the pure parts other
// tools and tests may reuse: the VMI status the handler reports from a launcher's answers, the action it takes on a
// domain, the names it shares with KubeVirt, and its device-plugin definitions.
export { calculatePhase, nextStatus } from './status.ts';
export type { LauncherObservation, PhaseDecision, StatusEvent, StatusInput, StatusResult } from './status.ts';
export { decide, shutdownDeadline } from './decide.ts';
export type { Action, DecideInput } from './decide.ts';
export { DomainParseError, isDomainActive, parseDomain } from './domain.ts';
export type { Domain, DomainState, GuestAgentInfo } from './domain.ts';
export {
  ANNOTATIONS,
  CONDITIONS,
  CONDITION_REASONS,
  DEFAULT_UNRESPONSIVE_AFTER_MS,
  EVENT_REASONS,
  LABELS,
  SOCKETS,
} from './constants.ts';
export { DEFAULT_DEVICE_COUNT, KUBEVIRT_DEVICES } from './deviceplugin/plugin.ts';
export type { DeviceKind } from './deviceplugin/plugin.ts';
export { DEFAULT_ALLOWED_CLIENT_NAMES } from './handler-server.ts';
export { heartbeatPatch } from './heartbeat.ts';
