import type { ReopenLogsResult } from '../../admin/protocol';
import { PassengerError } from '../../errors';
import { adminJson } from '../../instance/admin-client';
import { parseArgv, type FlagSpec } from '../../config';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

const FLAGS = [
  { prop: 'ignoreLogsNotAvailable', flag: '--ignore-logs-not-available', kind: 'bool' },
  ...INSTANCE_FLAGS,
] as const satisfies readonly FlagSpec[];

export const reopenLogs: Command = {
  summary: 'reopen the log files (after logrotate moved them)',
  usage: `Usage: passenger-config reopen-logs [--ignore-logs-not-available] [--instance NAME] [--instance-registry-dir DIR]

The watchdog and the agent core reopen their --log-file by name, and every
app's app_log_file is reopened. A server that logs to its terminal and has no
app log file has nothing to reopen: that is an error (exit 1), as with
Passenger, unless --ignore-logs-not-available is given, which also lets no
running server pass.

Example (a logrotate postrotate script):
  passenger-config reopen-logs --ignore-logs-not-available`,
  flags: FLAGS,
  async run(argv) {
    const { values: flags } = parseArgv(argv, FLAGS);
    const ignore = flags.ignoreLogsNotAvailable === true;
    let r: ReopenLogsResult;
    try {
      r = await adminJson(instanceFrom(flags), 'POST', '/reopen-logs');
    } catch (e) {
      if (ignore && e instanceof PassengerError && e.code === 'E_NO_INSTANCE') {
        console.log('No server is running: no logs to reopen.');
        return 0;
      }
      throw e;
    }
    const files = [...(r.log_file ? [r.log_file] : []), ...(r.app_log_files ?? [])];
    if (files.length === 0) {
      if (ignore) {
        console.log('This server logs to its terminal: nothing to reopen.');
        return 0;
      }
      throw new PassengerError('E_NO_LOG', 'this server logs to its terminal and has no log file to reopen', 'pass --ignore-logs-not-available to accept that');
    }
    console.log(`Reopened ${files.join(', ')}.`);
    return 0;
  },
};
