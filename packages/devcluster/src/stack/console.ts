// A guest's serial console, two ways:
// - through the stack, as a user sees it: `virtctl console NAME` (API server → virt-api → virt-handler → the
//   launcher's serial socket). It shows what the guest prints from the moment it attaches.
// - the launcher's serial log, read through the devcluster node root (the pod's `private` emptyDir holds
//   serial0.log, DESIGN.md §4a). It holds everything since the guest started, but bypasses the stack: callers say
//   which of the two they show.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { podVolumeDir, nodePaths } from '../node/layout.ts';

/** The launcher's serial log on a devcluster node (packages/launcher writes it to <private>/serial0.log). */
export function serialLogFile(stateDir: string, nodeName: string, podUid: string): string {
  return join(podVolumeDir(nodePaths(stateDir, nodeName), podUid, 'empty-dir', 'private'), 'serial0.log');
}

export async function readSerialLog(file: string): Promise<string> {
  return readFile(file, 'utf8').catch(() => '');
}

/** Console text as lines without terminal control characters (the guest's shell echoes CRs and escapes). */
export function consoleLines(text: string): string[] {
  return (
    text
      // eslint-disable-next-line no-control-regex
      .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
      .replace(/\r/g, '')
      .split('\n')
      // eslint-disable-next-line no-control-regex
      .map((line) => line.replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '').trimEnd())
  );
}

/** The virtctl entry point in a working tree, when the package has one. */
export function virtctlMain(repoRoot: string): string | undefined {
  const main = join(repoRoot, 'packages', 'virtctl', 'src', 'main.ts');
  return existsSync(main) ? main : undefined;
}

export interface VirtctlRun {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs virtctl from source with the given kubeconfig; resolves with its output (never rejects on exit code). */
export async function runVirtctl(
  repoRoot: string,
  args: string[],
  options: { kubeconfig: string; timeoutMs?: number; input?: string },
): Promise<VirtctlRun> {
  const main = virtctlMain(repoRoot);
  if (!main) {
    return {
      code: 127,
      stdout: '',
      stderr: `virtctl is not there yet (${join(repoRoot, 'packages/virtctl/src/main.ts')})`,
    };
  }
  const child = spawn(process.execPath, ['--conditions=@kubevirt-ts/source', main, ...args], {
    env: { ...process.env, KUBECONFIG: options.kubeconfig },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => (stdout += b.toString('utf8')));
  child.stderr.on('data', (b: Buffer) => (stderr += b.toString('utf8')));
  child.stdin.end(options.input ?? '');
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 60_000);
  try {
    const code = await new Promise<number | null>((resolve, reject) => {
      child.once('error', reject);
      child.once('exit', (c) => resolve(c));
    });
    return { code, stdout, stderr };
  } finally {
    clearTimeout(timer);
  }
}

/** An attached `virtctl console`: what it has shown so far, input to the guest, and waiting for a line. */
export class ConsoleSession {
  text = '';
  stderr = '';
  exitCode: number | null | undefined;
  private readonly child: ChildProcess;
  private readonly listeners = new Set<() => void>();

  private constructor(child: ChildProcess) {
    this.child = child;
    child.stdout?.on('data', (b: Buffer) => {
      this.text += b.toString('utf8');
      for (const l of this.listeners) l();
    });
    child.stderr?.on('data', (b: Buffer) => (this.stderr += b.toString('utf8')));
    child.once('exit', (code) => {
      this.exitCode = code;
      for (const l of this.listeners) l();
    });
  }

  /** Starts `virtctl console NAME -n NAMESPACE` with pipes (no terminal), or undefined when virtctl is missing. */
  static attach(
    repoRoot: string,
    namespace: string,
    name: string,
    options: { kubeconfig: string; onData?: (text: string) => void },
  ): ConsoleSession | undefined {
    const main = virtctlMain(repoRoot);
    if (!main) return undefined;
    const child = spawn(
      process.execPath,
      ['--conditions=@kubevirt-ts/source', main, 'console', name, '--namespace', namespace],
      { env: { ...process.env, KUBECONFIG: options.kubeconfig }, stdio: ['pipe', 'pipe', 'pipe'] },
    );
    const session = new ConsoleSession(child);
    if (options.onData) child.stdout?.on('data', (b: Buffer) => options.onData?.(b.toString('utf8')));
    return session;
  }

  write(text: string): void {
    this.child.stdin?.write(text);
  }

  /** Resolves once the console showed `needle` (after `from` characters); rejects on exit or deadline. */
  waitFor(needle: string | RegExp, timeoutMs: number, from = 0): Promise<void> {
    const found = () => {
      const text = this.text.slice(from);
      return typeof needle === 'string' ? text.includes(needle) : needle.test(text);
    };
    return new Promise((resolve, reject) => {
      const check = () => {
        if (found()) {
          done();
          resolve();
        } else if (this.exitCode !== undefined) {
          done();
          reject(
            new Error(
              `virtctl console exited (${String(this.exitCode)}) before showing ${String(needle)}: ${this.stderr.trim() || this.text.slice(-500)}`,
            ),
          );
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(
          new Error(
            `virtctl console did not show ${String(needle)} within ${timeoutMs} ms; it showed: ${this.text.slice(-1000)}${this.stderr ? `; stderr: ${this.stderr}` : ''}`,
          ),
        );
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(check);
      };
      this.listeners.add(check);
      check();
    });
  }

  /** Ends the session (virtctl's escape is Ctrl+], but closing stdin and a signal is what a script does). */
  async close(): Promise<void> {
    if (this.exitCode !== undefined) return;
    const exited = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin?.end();
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 5_000);
    await exited;
    clearTimeout(timer);
  }
}
