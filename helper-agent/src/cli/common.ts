// What every command-line tool shares: error printing (one line: the problem,
// then the hint in parentheses) and exit statuses (2 for bad usage or
// configuration, 1 for other failures).
import type { FlagSpec } from '../config';
import { ConfigError, PassengerError } from '../errors';
import { VERSION } from '../version';

export function die(message: string, hint?: string): never {
  throw new PassengerError('E_USAGE', message, hint);
}

export function runMain(name: string, main: (argv: string[]) => Promise<number>): void {
  // An unhandled SIGUSR1 would open Node's inspector on 127.0.0.1:9229; log
  // rotation scripts send it. A tool has no log to reopen: it ignores it.
  process.on('SIGUSR1', () => undefined);
  const argv = process.argv.slice(2);
  // Every binary answers --version (and -v first) with its name and version, as Passenger's do.
  if (argv.includes('--version') || argv[0] === '-v') {
    process.stdout.write(`${name} ${VERSION}\n`);
    exitAfterOutput(0);
    return;
  }
  main(argv).then(
    (code) => exitAfterOutput(code),
    (e: unknown) => {
      if (e instanceof PassengerError) {
        process.stderr.write(`${name}: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
        exitAfterOutput(e instanceof ConfigError || e.code === 'E_USAGE' ? 2 : 1);
        return;
      }
      process.stderr.write(`${name}: unexpected error: ${(e as Error)?.stack ?? e}\n`);
      exitAfterOutput(1);
    },
  );
}

/**
 * Exits once stdout and stderr have handed everything to the OS. Into a pipe
 * a write completes later, as the reader makes room; exiting at once would
 * drop what did not fit in the pipe's buffer (64 KiB). The process still
 * exits, rather than waiting for its event loop to empty, because a tool may
 * leave timers or sockets behind (a stopped server's, a watch loop's).
 */
export function exitAfterOutput(code: number): void {
  process.exitCode = code;
  let pending = 2;
  const done = (): void => {
    if (--pending === 0) process.exit(code);
  };
  for (const out of [process.stdout, process.stderr]) {
    // A reader that went away (EPIPE) takes nothing more: exit all the same.
    out.on('error', () => undefined);
    out.write('', done);
  }
}

/** `-h`, `--help`: every binary's and command's. */
export const HELP_FLAG: FlagSpec<'help'> = { prop: 'help', flag: '--help', short: '-h', kind: 'bool' };

/** `--instance-registry-dir DIR`: where the tools look for servers. */
export const REGISTRY_FLAG: FlagSpec<'instanceRegistryDir'> = { prop: 'instanceRegistryDir', flag: '--instance-registry-dir', kind: 'string', arg: 'DIR' };
