#!/usr/bin/env node
// `passenger`: start, stop and check a standalone server.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AGENT_OPTION_SPECS, OPTION_SPECS, PASSENGER_ONLY_OPTIONS, defaults, parseFlags, resolveOptions, usageOfOptions, type Options } from '../config';
import { ConfigError, PassengerError } from '../errors';
import { isAlive } from '../platform/procfs';
import { distrustOfFile, openOwnFile, readRegularFile } from '../platform/safe-files';
import { gidOf, uidOf } from '../platform/users';
import { type InstanceProperties } from '../instance/instance-dir';
import { SERVICE_REGISTRY_DIR, listInstances, registryDirs, serverRegistryDir } from '../instance/registry';
import { checkAppUsers } from '../spawn/app-user';
import { serverUserOf } from '../watchdog/server-user';
import { runWatchdog } from '../watchdog/watchdog';
import { VERSION } from '../version';
import { die, runMain } from './common';

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

const STOP_USAGE = `Usage: passenger stop [APP_DIR] [--port NUMBER | --pid-file PATH] [--instance-registry-dir DIR]
       passenger status [APP_DIR] [--port NUMBER | --pid-file PATH] [--instance-registry-dir DIR]

Finds the server by its PID file: --pid-file, else passenger.PORT.pid in
APP_DIR (default: the current directory; the default port is 3000). If that
names no running server, the one standalone server on that port (serving
APP_DIR, when given) is found in the instance registry.

Examples:
  passenger stop                      # passenger.3000.pid here, else the server on port 3000
  passenger stop /srv/app --port 8080
  passenger status --pid-file /run/app.pid`;

/** Where the PID file goes when --pid-file is not given: passenger.PORT.pid in the app (tmp/pids/ if it exists). */
export function defaultPidFile(appRoot: string, port: number): string {
  const pids = path.join(appRoot, 'tmp', 'pids');
  const dir = fs.existsSync(pids) ? pids : appRoot;
  return path.join(dir, `passenger.${port}.pid`);
}

function defaultLogFile(appRoot: string, port: number): string {
  const logDir = path.join(appRoot, 'log');
  return path.join(fs.existsSync(logDir) ? logDir : appRoot, `passenger.${port}.log`);
}

function banner(o: Options, server: string): string {
  const url = server.startsWith('http://') ? `${server}/` : server;
  return [
    '=============== Passenger standalone server started ===============',
    `App root:        ${o.appRoot}`,
    `Environment:     ${o.environment}`,
    `PID file:        ${o.pidFile}`,
    `Log file:        ${o.logFile ?? '(this terminal)'}`,
    `Accessible via:  ${url}`,
    '',
    o.daemonize ? 'Stop it with `passenger stop`.' : 'Stop it by pressing Ctrl-C.',
    '====================================================================',
  ].join('\n');
}

/** Passenger's options that are accepted and ignored say so, one line each, before the server starts. */
const warnOfOption = (m: string): void => { process.stderr.write(`passenger start: warning: ${m}\n`); };

function startOptions(argv: string[]): Options {
  const { values, positionals, warnings } = parseFlags(argv, OPTION_SPECS, PASSENGER_ONLY_OPTIONS);
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

/**
 * The PID in a PID file, believed only when the file is not a link and is
 * ours or root's, or (a server run with --user hands its PID file to its
 * user) when the PID runs as the file's owner: a file another user planted
 * can name only that user's own processes.
 */
function readPid(file: string): number | null {
  const f = readRegularFile(file);
  if (f === null) return null;
  const n = parseInt(f.text.trim(), 10);
  if (!Number.isInteger(n) || n <= 1) return null;
  const me = process.geteuid?.() ?? 0;
  return f.uid === me || f.uid === 0 || ownerOf(n) === f.uid ? n : null;
}

/**
 * Whether `pid` is a server of ours: alive, running this CLI's `start` (or
 * the background watchdog it forks), and owned by us unless we are root. A
 * PID file can outlive its server and the PID be reused by anything else.
 */
function isOurServer(pid: number): boolean {
  if (!isAlive(pid)) return false;
  const argv = cmdlineArgs(pid);
  const i = argv.findIndex((a) => path.basename(a) === path.basename(__filename));
  if (i === -1 || (argv[i + 1] !== 'start' && argv[i + 1] !== '__watchdog')) return false;
  const me = process.geteuid?.() ?? 0;
  return me === 0 || ownerOf(pid) === me;
}

function cmdlineArgs(pid: number): string[] {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0');
  } catch {
    return [];
  }
}

function ownerOf(pid: number): number | null {
  try {
    return fs.statSync(`/proc/${pid}`).uid;
  } catch {
    return null;
  }
}

async function start(argv: string[]): Promise<number> {
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

/** Runs the watchdog in the background and returns once it serves (or failed). */
function daemonize(o: Options): Promise<number> {
  fs.mkdirSync(path.dirname(o.logFile as string), { recursive: true });
  const fd = openOwnFile(o.logFile as string, 'append');
  const child = spawn(process.execPath, [__filename, '__watchdog'], {
    env: { ...process.env, PASSENGER_WATCHDOG_OPTIONS: JSON.stringify(o) },
    stdio: ['ignore', fd, fd, 'ipc'],
    detached: true,
  });
  fs.closeSync(fd);
  return new Promise((resolve) => {
    child.on('message', (m: { type: string; server?: string; message?: string }) => {
      if (m.type === 'ready') {
        console.log(banner(o, m.server as string));
        console.log(`Running in the background as PID ${child.pid}.`);
        child.disconnect();
        child.unref();
        resolve(0);
      } else if (m.type === 'fatal') {
        console.error(`passenger start: ${m.message}`);
        resolve(1);
      }
    });
    child.on('exit', (code) => {
      console.error(`passenger start: the server exited (code ${code}) before it was ready; see ${o.logFile}`);
      resolve(1);
    });
  });
}

/** The background watchdog started by --daemonize. */
async function watchdogMain(): Promise<number> {
  const o = JSON.parse(process.env.PASSENGER_WATCHDOG_OPTIONS ?? 'null') as Options | null;
  if (!o) die('this command is internal to `passenger start --daemonize`');
  delete process.env.PASSENGER_WATCHDOG_OPTIONS;
  const send = (m: object): void => { if (process.connected && process.send) process.send(m); };
  const run = runWatchdog(o, {
    ready: (server) => {
      send({ type: 'ready', server });
      if (process.connected) process.disconnect();
    },
    fatal: (message) => send({ type: 'fatal', message }),
  });
  return run.done;
}

/** A running server: its watchdog's PID and how it was found. */
interface Found { pid: number; how: string }

/**
 * The server `passenger stop|status` mean: by --pid-file, else passenger.PORT.pid
 * in APP_DIR (as Passenger's). When that file names no live server (the server
 * was started from another directory, or with its PID file elsewhere), the
 * instance registry is asked for the one standalone server on that port (and
 * in APP_DIR when one was named). Returns the error to report when none is found.
 */
function findServer(argv: string[]): Found | PassengerError {
  const specs = OPTION_SPECS.filter((s) => s.prop === 'port' || s.prop === 'pidFile' || s.prop === 'instanceRegistryDir');
  const { values, positionals } = parseFlags(argv, specs);
  const file = values.pidFile ? path.resolve(values.pidFile) : defaultPidFile(path.resolve(positionals[0] ?? '.'), values.port ?? 3000);
  const pid = readPid(file);
  if (pid !== null && isOurServer(pid)) return { pid, how: `PID file ${file}` };
  const missing = new PassengerError('E_NOT_RUNNING', `no server is running according to ${file}`,
    pid !== null ? `PID ${pid} is not a running server of ours`
      : distrustOfFile(file) !== null ? `the PID file is not to be trusted: ${distrustOfFile(file)}` : 'the PID file is missing or empty');
  if (values.pidFile) return missing;
  const port = String(values.port ?? 3000);
  const root = positionals[0] ? path.resolve(positionals[0]) : null;
  const matches = registryDirs(values.instanceRegistryDir).flatMap((r) => listInstances(r)).map((i) => i.readProperties()).filter((p): p is InstanceProperties =>
    p !== null && p.mode === 'standalone' && /:(\d+)$/.exec(p.server)?.[1] === port && (root === null || p.app_root === root));
  if (matches.length === 1 && isOurServer(matches[0].watchdog_pid)) return { pid: matches[0].watchdog_pid, how: `instance ${matches[0].name}, serving ${matches[0].app_root} on ${matches[0].server}` };
  return missing;
}

async function stop(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(STOP_USAGE);
    return 0;
  }
  const found = findServer(argv);
  if (found instanceof PassengerError) throw found;
  const { pid } = found;
  process.kill(pid, 'SIGTERM');
  const deadline = Date.now() + 60_000;
  while (isAlive(pid)) {
    if (Date.now() > deadline) throw new PassengerError('E_NOT_RUNNING', `PID ${pid} did not stop within 60 s`, `kill it with: kill -9 ${pid}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  console.log(`Stopped the server with PID ${pid} (${found.how}).`);
  return 0;
}

async function status(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(STOP_USAGE);
    return 0;
  }
  const found = findServer(argv);
  if (found instanceof PassengerError) {
    console.log(`The server is not running (${found.message}).`);
    return 1;
  }
  console.log(`The server is running with PID ${found.pid} (${found.how}).`);
  return 0;
}

export const DEFAULT_AGENT_SOCKET = '/run/passenger-ts/agent.sock';

/** Where the agent's defaults differ from passenger start's. */
const AGENT_HELP: Partial<Record<keyof Options, string>> = {
  socket: `the request socket (default ${DEFAULT_AGENT_SOCKET})`,
  environment: 'app environment: PASSENGER_APP_ENV and NODE_ENV (default production)',
  logFile: 'where to write the log (default: the terminal; under systemd, the journal)',
  instanceRegistryDir: `where the instance directory goes (default ${SERVICE_REGISTRY_DIR} as root, else $TMPDIR or /tmp)`,
};

const AGENT_USAGE = `Usage: passenger agent [options]

Runs the agent (watchdog and core) in the foreground as the service nginx or
Apache forwards to: the web server's snippet (nginx-conf/passenger.conf,
apache-conf/passenger.conf) names each request's document root; the app root
is its parent. A snippet printed by \`passenger-config nginx-snippet --app-root
DIR\` (or apache-snippet) names the app root, its URI and its options instead.
Each app's Passengerfile.json sets its options, the web server's settings win
over it; the flags below are the defaults. Only app roots at or below an
--app-root-allow directory are served: with none given, every request is
refused.

Options:
${usageOfOptions(AGENT_OPTION_SPECS.map((s) => (AGENT_HELP[s.prop] ? { ...s, help: AGENT_HELP[s.prop] as string } : s)))}

Examples:
  passenger agent --app-root-allow /srv --socket-group www-data
  passenger agent --socket /tmp/agent.sock --app-root-allow ~/apps --min-instances 2`;

async function agent(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(AGENT_USAGE);
    return 0;
  }
  const { values, positionals } = parseFlags(argv, AGENT_OPTION_SPECS);
  if (positionals.length > 0) throw new ConfigError(`passenger agent takes no arguments, got ${positionals.join(' ')}`, 'name app roots with --app-root-allow DIR');
  const o: Options = { ...defaults('/'), environment: 'production', ...values, mode: 'agent' };
  o.socket = path.resolve(o.socket ?? DEFAULT_AGENT_SOCKET);
  for (const p of ['logFile', 'instanceRegistryDir', 'pidFile'] as const) if (o[p]) o[p] = path.resolve(o[p] as string);
  o.appRootAllow = o.appRootAllow.map((d) => {
    const abs = path.resolve(d);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new ConfigError(`--app-root-allow ${d}: no such directory`);
    return abs;
  });
  if (o.socketMode && !/^0?[0-7]{3}$/.test(o.socketMode)) throw new ConfigError(`--socket-mode: expected an octal mode like 0660, got ${o.socketMode}`);
  if (o.socketOwner && uidOf(o.socketOwner) === null) throw new ConfigError(`--socket-owner ${o.socketOwner}: no such user`);
  if (o.socketGroup && gidOf(o.socketGroup) === null) throw new ConfigError(`--socket-group ${o.socketGroup}: no such group`);
  checkAppUsers(o);
  try {
    fs.mkdirSync(path.dirname(o.socket), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new ConfigError(`cannot create the directory of the socket ${o.socket}: ${(e as Error).message}`, 'choose another path with --socket, or run as root');
  }
  const run = runWatchdog(o, {
    ready: (server) => console.log(`passenger agent: serving on ${server}; app roots allowed: ${o.appRootAllow.join(', ') || 'none (every request is refused)'}`),
    fatal: (message) => console.error(`passenger agent: ${message}`),
  });
  return run.done;
}

const COMMANDS: Record<string, (argv: string[]) => Promise<number>> = {
  start,
  agent,
  stop,
  status,
  __watchdog: watchdogMain,
};

runMain('passenger', async (argv) => {
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
});
