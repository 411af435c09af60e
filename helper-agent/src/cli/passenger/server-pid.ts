// Finding a standalone server: its PID file, whether a PID is a server of
// ours, and the instance registry when the PID file names none.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { START_OPTION_SPECS, defaults, parseFlags } from '../../config';
import { PassengerError } from '../../errors';
import { type InstanceProperties } from '../../instance/instance-dir';
import { listInstances, registryDirs } from '../../instance/registry';
import { isAlive } from '../../platform/procfs';
import { distrustOfFile, readRegularFile } from '../../platform/safe-files';

/** The `passenger` binary (cli/passenger.js): what a server's command line names, and what --daemonize runs again. */
export const PASSENGER_BIN = path.join(__dirname, '..', 'passenger.js');

/** Where the PID file goes when --pid-file is not given: passenger.PORT.pid in the app (tmp/pids/ if it exists). */
export function defaultPidFile(appRoot: string, port: number): string {
  const pids = path.join(appRoot, 'tmp', 'pids');
  const dir = fs.existsSync(pids) ? pids : appRoot;
  return path.join(dir, `passenger.${port}.pid`);
}

/**
 * The PID in a PID file, believed only when the file is not a link and is
 * ours or root's, or (a server run with --user hands its PID file to its
 * user) when the PID runs as the file's owner: a file another user planted
 * can name only that user's own processes.
 */
export function readPid(file: string): number | null {
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
export function isOurServer(pid: number): boolean {
  if (!isAlive(pid)) return false;
  const argv = cmdlineArgs(pid);
  const i = argv.findIndex((a) => path.basename(a) === path.basename(PASSENGER_BIN));
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

/** The flags of `passenger stop` and `passenger status`. */
export const FIND_SERVER_SPECS = START_OPTION_SPECS.filter((s) => s.prop === 'port' || s.prop === 'pidFile' || s.prop === 'instanceRegistryDir');

/** A running server: its watchdog's PID and how it was found. */
export interface Found { pid: number; how: string }

/**
 * The server `passenger stop|status` mean: by --pid-file, else passenger.PORT.pid
 * in APP_DIR (as Passenger's). When that file names no live server (the server
 * was started from another directory, or with its PID file elsewhere), the
 * instance registry is asked for the one standalone server on that port (and
 * in APP_DIR when one was named). Returns the error to report when none is found.
 */
export function findServer(argv: string[]): Found | PassengerError {
  const { values, positionals } = parseFlags(argv, FIND_SERVER_SPECS);
  const port = values.port ?? defaults('.').port;
  const file = values.pidFile ? path.resolve(values.pidFile) : defaultPidFile(path.resolve(positionals[0] ?? '.'), port);
  const pid = readPid(file);
  if (pid !== null && isOurServer(pid)) return { pid, how: `PID file ${file}` };
  const missing = new PassengerError('E_NOT_RUNNING', `no server is running according to ${file}`,
    pid !== null ? `PID ${pid} is not a running server of ours`
      : distrustOfFile(file) !== null ? `the PID file is not to be trusted: ${distrustOfFile(file)}` : 'the PID file is missing or empty');
  if (values.pidFile) return missing;
  const root = positionals[0] ? path.resolve(positionals[0]) : null;
  const matches = registryDirs(values.instanceRegistryDir).flatMap((r) => listInstances(r)).map((i) => i.readProperties()).filter((p): p is InstanceProperties =>
    p !== null && p.mode === 'standalone' && /:(\d+)$/.exec(p.server)?.[1] === String(port) && (root === null || p.app_root === root));
  if (matches.length === 1 && isOurServer(matches[0].watchdog_pid)) return { pid: matches[0].watchdog_pid, how: `instance ${matches[0].name}, serving ${matches[0].app_root} on ${matches[0].server}` };
  return missing;
}
