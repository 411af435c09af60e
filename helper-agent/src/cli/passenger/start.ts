// `passenger start`: serve one app over HTTP, in the foreground or the background.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { PASSENGER_ONLY_OPTIONS, START_OPTION_SPECS, parseFlags, resolveOptions, usageOfOptions, type Options } from '../../config';
import { ConfigError } from '../../errors';
import { serverRegistryDir } from '../../instance/registry';
import { distrustOfFile } from '../../platform/safe-files';
import { checkAppUsers } from '../../spawn/app-user';
import { serverUserOf } from '../../watchdog/server-user';
import { runWatchdog } from '../../watchdog/watchdog';
import { banner } from './banner';
import { daemonize } from './daemonize';
import { defaultPidFile, isOurServer, readPid } from './server-pid';

const START_USAGE = `Usage: passenger start [APP_DIR] [options]

Serves the app in APP_DIR (default: the current directory) over HTTP.
Options may also be set in APP_DIR/Passengerfile.json (snake_case keys,
e.g. {"min_instances": 2}) and in PASSENGER_<KEY> environment variables
(PASSENGER_PORT=8000); flags win over the environment, which wins over the
file. Phusion Passenger's other options are accepted with a warning where
leaving them out changes nothing here, and refused where it would.

Options:
${usageOfOptions()}

Examples:
  passenger start -p 8000 -e production
  passenger start --app-start-command 'python3 -m http.server $PORT'
  passenger start --daemonize --pid-file /run/app.pid --log-file /var/log/app.log`;

function defaultLogFile(appRoot: string, port: number): string {
  const logDir = path.join(appRoot, 'log');
  return path.join(fs.existsSync(logDir) ? logDir : appRoot, `passenger.${port}.log`);
}

/** Passenger's options that are accepted and ignored say so, one line each, before the server starts. */
const warnOfOption = (m: string): void => { process.stderr.write(`passenger start: warning: ${m}\n`); };

function startOptions(argv: string[]): Options {
  const { values, positionals, warnings } = parseFlags(argv, START_OPTION_SPECS, PASSENGER_ONLY_OPTIONS);
  if (positionals.length > 1) throw new ConfigError(`passenger start takes one app directory, got ${positionals.join(' ')}`);
  for (const w of warnings) warnOfOption(w);
  const o = resolveOptions(values, positionals[0], process.cwd(), process.env, warnOfOption);
  if (!o.appStartCommand) {
    const startup = path.resolve(o.appRoot, o.startupFile);
    if (!fs.existsSync(startup)) {
      throw new ConfigError(`the startup file ${startup} does not exist`,
        'name the app\'s entry file with --startup-file (Passengerfile.json: "startup_file"), or run another program with --app-start-command');
    }
  }
  o.pidFile ??= defaultPidFile(o.appRoot, o.port);
  if (o.daemonize) o.logFile ??= defaultLogFile(o.appRoot, o.port);
  refuseUnsafe(o.pidFile, '--pid-file');
  if (o.logFile) refuseUnsafe(o.logFile, '--log-file');
  // As root: --user NAME runs everything as NAME; without it, the app runs as its user.
  if (serverUserOf(o, serverRegistryDir(o)) === null) checkAppUsers(o);
  refuseIfRunning(o.pidFile);
  return o;
}

/** PID and log files may sit in a directory another user owns: never write through a link planted there. */
function refuseUnsafe(file: string, flag: string): void {
  const why = distrustOfFile(file);
  if (why !== null) throw new ConfigError(`refusing to write ${file}: ${why}`, `remove it, or choose another path with ${flag}`);
}

function refuseIfRunning(pidFile: string): void {
  const pid = readPid(pidFile);
  if (pid !== null && isOurServer(pid)) {
    throw new ConfigError(`a server already runs with PID ${pid} (PID file ${pidFile})`, 'stop it with `passenger stop`, or choose another --port or --pid-file');
  }
}

export async function start(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(START_USAGE);
    return 0;
  }
  const o = startOptions(argv);
  if (o.daemonize) return daemonize(o);
  const run = runWatchdog(o, {
    ready: (server) => console.log(banner(o, server)),
    fatal: (message) => console.error(`passenger start: ${message}`),
  });
  return run.done;
}
