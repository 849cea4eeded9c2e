// The node agent as a process, run by the devcluster supervisor inside the node's network namespace:
//   nsenter --net=/run/netns/kvts-dc-nN -- node --conditions=@kubevirt-ts/source src/node/main.ts NODE_ROOT/…/node.json
// Logs are JSON lines on stdout (the supervisor writes them to logs/<node>.log). SIGTERM stops the agent and
// leaves the pods running.
import { createLogger } from '@kubevirt-ts/runtime/logger';
import { startNodeAgent } from './agent.ts';
import { readNodeAgentConfig } from './config.ts';

const configPath = process.argv[2];
if (!configPath) {
  process.stderr.write('usage: main.ts NODE_CONFIG (node.json, written by devcluster up)\n');
  process.exit(2);
}
const config = await readNodeAgentConfig(configPath);
const log = createLogger({
  service: 'devcluster-node',
  version: '0.1.0',
  node: config.name,
  level: process.env.LOG_LEVEL === 'debug' ? 'debug' : 'info',
});
try {
  const agent = await startNodeAgent(config, log);
  const stop = (signal: string) => {
    log.info({ signal }, 'signal received');
    agent.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err }, 'stopping failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (err) {
  log.fatal({ err }, 'the node agent could not start');
  process.exit(1);
}
