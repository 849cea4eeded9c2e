// What the services' entry-point tests share: running `main.ts` as users do (node with the source condition, no
// build), a kubeconfig whose API server never answers, and following a started service through its JSON log lines
// until it says which port it serves. Kept free of any test framework so each suite asserts in its own words.
import { spawn, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

export type LogLine = Record<string, unknown>;

/** A service whose log lines are collected as they come, and which is killed when the caller is done. */
export interface RunningService {
  /** Every JSON line the service printed on stdout so far. */
  readonly lines: LogLine[];
  /** The exit code, once the process exits. */
  readonly exited: Promise<number | null>;
  /** The first line (already printed or still to come) that `match` accepts; rejects if the service exits first. */
  line(match: (line: LogLine) => boolean): Promise<LogLine>;
  /** The `port` of the first line whose message starts with `message` (or of any line with a port). */
  port(message?: string): Promise<number>;
  kill(signal?: NodeJS.Signals): void;
}

/** Runs one service's `main.ts` with the given environment. */
export function serviceMain(mainPath: string, env: NodeJS.ProcessEnv) {
  const nodeArgs = ['--conditions=@kubevirt-ts/source', mainPath];
  return {
    /** Runs it to completion (flags that make it exit: --help, a bad flag, a start that cannot work). */
    run(args: string[]): SpawnSyncReturns<string> {
      return spawnSync(process.execPath, [...nodeArgs, ...args], { encoding: 'utf8', env, timeout: 60_000 });
    },
    /** Starts it and follows its log. */
    start(args: string[]): RunningService {
      const child = spawn(process.execPath, [...nodeArgs, ...args], {
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      const lines: LogLine[] = [];
      const waiters = new Set<{ match: (l: LogLine) => boolean; resolve: (l: LogLine) => void }>();
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      createInterface({ input: child.stdout }).on('line', (text) => {
        let entry: LogLine;
        try {
          entry = JSON.parse(text) as LogLine;
        } catch {
          entry = { msg: text, unparsed: true };
        }
        lines.push(entry);
        for (const w of waiters)
          if (w.match(entry)) {
            waiters.delete(w);
            w.resolve(entry);
          }
      });
      const line = (match: (l: LogLine) => boolean) =>
        new Promise<LogLine>((resolve, reject) => {
          const seen = lines.find(match);
          if (seen) return resolve(seen);
          waiters.add({ match, resolve });
          void exited.then((code) =>
            reject(new Error(`exited (${code}) first; log: ${JSON.stringify(lines)}; stderr: ${stderr}`)),
          );
        });
      return {
        lines,
        exited,
        line,
        port: async (message?: string) =>
          (
            await line(
              (l) =>
                typeof l.port === 'number' && (message === undefined || String(l.msg).startsWith(message)),
            )
          ).port as number,
        kill: (signal = 'SIGKILL') => void child.kill(signal),
      };
    },
  };
}

/** Writes a kubeconfig whose API server never answers (127.0.0.1:1) into `dir`; returns its path. */
export function unreachableKubeconfig(dir: string): string {
  const file = join(dir, 'kubeconfig');
  writeFileSync(
    file,
    [
      'apiVersion: v1',
      'kind: Config',
      'clusters: [{name: c, cluster: {server: "https://127.0.0.1:1", insecure-skip-tls-verify: true}}]',
      'users: [{name: u, user: {token: t}}]',
      'contexts: [{name: x, context: {cluster: c, user: u}}]',
      'current-context: x',
    ].join('\n'),
  );
  return file;
}

/** The `fatal` line of a service's JSON log, if it printed one. */
export function fatalLine(stdout: string): LogLine | undefined {
  return stdout
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as LogLine)
    .find((l) => l.level === 'fatal');
}
