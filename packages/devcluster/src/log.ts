// Structured logs (pino, JSON lines) for devcluster's own background processes: the supervisor and the
// forwarders. They write to stdout, which the supervisor sends to each process's log file.
import { pino, type Logger } from 'pino';

export function createLogger(component: string): Logger {
  return pino({
    level: process.env.LOG_LEVEL ?? 'info',
    base: { service: 'devcluster', component, pid: process.pid },
  });
}
