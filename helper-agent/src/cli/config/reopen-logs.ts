import { adminJson } from '../../instance/admin-client';
import { parseToolFlags } from '../common';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

export const reopenLogs: Command = {
  summary: 'reopen the log file (after logrotate moved it)',
  usage: 'Usage: passenger-config reopen-logs [--instance NAME] [--instance-registry-dir DIR]\n\nThe watchdog and the agent core reopen their --log-file by name.\n\nExample (a logrotate postrotate script):\n  passenger-config reopen-logs',
  async run(argv) {
    const { flags } = parseToolFlags(argv, INSTANCE_FLAGS);
    const r = await adminJson<{ log_file: string | null }>(instanceFrom(flags), 'POST', '/reopen-logs');
    console.log(r.log_file ? `Reopened ${r.log_file}.` : 'This server logs to its terminal: nothing to reopen.');
    return 0;
  },
};
