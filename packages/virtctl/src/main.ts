#!/usr/bin/env node
// virtctl (also installed as `kubectl-virt`, so `kubectl virt ...` runs it): parses the command line, runs the
// command, and turns failures into one clear line on stderr with kubectl's exit codes (1 failure, 2 usage);
// `ssh` and `scp` exit with the code of the local client they ran.
import { parseCommandLine, programName } from './cli.ts';
import { execute } from './commands.ts';
import { UsageError, VirtctlError } from './errors.ts';

async function main(argv: string[]): Promise<number> {
  try {
    const code = await execute(parseCommandLine(argv), {
      stdin: process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    });
    return typeof code === 'number' ? code : 0;
  } catch (err) {
    if (err instanceof UsageError || err instanceof VirtctlError) {
      process.stderr.write(`${programName()}: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(
      `${programName()}: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
