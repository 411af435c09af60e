import * as path from 'node:path';
import { adminJson } from '../../instance/admin-client';
import { die, parseToolFlags } from '../common';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

export const restartApp: Command = {
  summary: 'restart the processes of an app (all at once, or --rolling one by one)',
  usage: `Usage: passenger-config restart-app APP_ROOT [--rolling] [--instance NAME] [--instance-registry-dir DIR]

Restarts every process of the app whose root is APP_ROOT and returns when the
new processes serve. Without --rolling, the old processes finish their
requests and stop while new ones start. With --rolling, one process at a time
is replaced, each new one serving before the next old one leaves: no request
fails or waits for a cold start.

Examples:
  passenger-config restart-app /srv/app
  passenger-config restart-app . --rolling`,
  async run(argv) {
    const { flags, positionals } = parseToolFlags(argv, { '--rolling': 'bool', ...INSTANCE_FLAGS });
    if (positionals.length !== 1) die('restart-app takes one APP_ROOT', 'see passenger-config restart-app --help');
    const root = path.resolve(positionals[0]);
    const r = await adminJson<{ restarted: string; pids: number[] }>(instanceFrom(flags), 'POST',
      `/restart-app?root=${encodeURIComponent(root)}${flags['--rolling'] ? '&rolling=1' : ''}`, 15 * 60_000);
    console.log(`Restarted ${r.restarted}${flags['--rolling'] ? ' (rolling)' : ''}; processes now: ${r.pids.join(', ') || 'none'}`);
    return 0;
  },
};
