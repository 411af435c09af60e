import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RestartAppResult } from '../../admin/protocol';
import { PassengerError } from '../../errors';
import { adminJson } from '../../instance/admin-client';
import { parseArgv, type FlagSpec } from '../../config';
import { die } from '../common';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

/**
 * The current directory as the shell names it ($PWD, symlinks kept) when it
 * is the same directory, as Passenger's tools take it: a deploy script run in
 * /srv/app/current means that path, not the release it points to.
 */
function logicalCwd(): string {
  const cwd = process.cwd();
  const pwd = process.env.PWD;
  try {
    if (pwd && path.isAbsolute(pwd) && fs.realpathSync(pwd) === fs.realpathSync(cwd)) return pwd;
  } catch { /* not the same */ }
  return cwd;
}

const FLAGS = [
  { prop: 'rolling', flag: '--rolling', kind: 'bool' },
  { prop: 'rolling', flag: '--rolling-restart', kind: 'bool' },
  { prop: 'name', flag: '--name', kind: 'string', arg: 'NAME' },
  { prop: 'ignoreAppNotRunning', flag: '--ignore-app-not-running', kind: 'bool' },
  { prop: 'ignorePassengerNotRunning', flag: '--ignore-passenger-not-running', kind: 'bool' },
  ...INSTANCE_FLAGS,
] as const satisfies readonly FlagSpec[];

export const restartApp: Command = {
  summary: 'restart the processes of the apps under a path, or of a named app (all at once, or --rolling one by one)',
  usage: `Usage: passenger-config restart-app APP_PATH_PREFIX [options]
       passenger-config restart-app --name APP_GROUP_NAME [options]

Restarts every process of each app whose root is APP_PATH_PREFIX or lies
below it (\`.\` is the current directory), or of the app group named by
--name (passenger-status shows the names), and returns when the new processes
serve. Without --rolling, the old processes finish their requests and stop
while new ones start. With --rolling, one process at a time is replaced, each
new one serving before the next old one leaves: no request fails or waits for
a cold start.

Options:
  --rolling, --rolling-restart   replace one process at a time
  --name NAME                    the app group to restart, instead of a path
  --ignore-app-not-running       no matching app is not an error (exit 0)
  --ignore-passenger-not-running no running server is not an error (exit 0)
  --instance NAME                the server to ask, when several run
  --instance-registry-dir DIR    where to look for servers

Examples:
  passenger-config restart-app /srv/app
  passenger-config restart-app . --rolling-restart
  passenger-config restart-app --ignore-app-not-running --ignore-passenger-not-running "$APP_DIR"`,
  flags: FLAGS,
  async run(argv) {
    const { values: flags, positionals } = parseArgv(argv, FLAGS);
    const name = flags.name as string | undefined;
    if (name === undefined && positionals.length !== 1) die('restart-app takes one APP_PATH_PREFIX, or --name', 'see passenger-config restart-app --help');
    if (name !== undefined && positionals.length !== 0) die('restart-app takes either APP_PATH_PREFIX or --name, not both');
    const rolling = flags.rolling === true;
    const query = name !== undefined ? `name=${encodeURIComponent(name)}` : `prefix=${encodeURIComponent(path.resolve(logicalCwd(), positionals[0]))}`;
    let r: RestartAppResult;
    try {
      r = await adminJson(instanceFrom(flags), 'POST', `/restart-app?${query}${rolling ? '&rolling=1' : ''}`, 15 * 60_000);
    } catch (e) {
      if (e instanceof PassengerError && e.code === 'E_NO_INSTANCE' && flags.ignorePassengerNotRunning) {
        console.log('No server is running: nothing to restart.');
        return 0;
      }
      if (e instanceof PassengerError && e.code === 'E_NO_GROUP' && flags.ignoreAppNotRunning) {
        console.log(`${e.message}: nothing to restart.`);
        return 0;
      }
      throw e;
    }
    console.log(`Restarted ${r.restarted}${rolling ? ' (rolling)' : ''}; processes now: ${r.pids.join(', ') || 'none'}`);
    return 0;
  },
};
