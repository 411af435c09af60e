#!/usr/bin/env node
// `passenger`: start, stop and check a standalone server, or run the agent
// behind a web server. One file per command under passenger/, dispatched
// through COMMANDS; `__watchdog` is the background side of --daemonize.
import { PassengerError } from '../errors';
import { VERSION } from '../version';
import { runMain } from './common';
import { agent } from './passenger/agent';
import { watchdogMain } from './passenger/daemonize';
import { start } from './passenger/start';
import { status, stop } from './passenger/stop-status';

const USAGE = `Usage: passenger <command> [options]

Commands:
  start [APP_DIR]   serve the app in APP_DIR (default: the current directory)
  agent             run the agent behind nginx or Apache (see passenger agent --help)
  stop              stop a server started with \`passenger start\`
  status            tell whether that server runs

Run \`passenger <command> --help\` for a command's options.

Examples:
  passenger start
  passenger start examples/hello --port 8000 --min-instances 2
  passenger start --daemonize && passenger status && passenger stop`;

export const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  start,
  agent,
  stop,
  status,
  __watchdog: watchdogMain,
};

export async function passengerMain(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
    console.log(USAGE);
    return cmd === undefined ? 2 : 0;
  }
  if (cmd === '--version' || cmd === '-v' || cmd === 'version') {
    console.log(`passenger ${VERSION}`);
    return 0;
  }
  const fn = Object.prototype.hasOwnProperty.call(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
  if (!fn) throw new PassengerError('E_USAGE', `unknown command "${cmd}"`, 'commands: start, stop, status (see passenger --help)');
  return fn(rest);
}

if (require.main === module) runMain('passenger', passengerMain);
