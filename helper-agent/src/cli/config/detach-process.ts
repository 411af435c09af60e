import { adminJson } from '../../instance/admin-client';
import { die, parseToolFlags } from '../common';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

export const detachProcess: Command = {
  summary: 'take one app process out of its group (it finishes its requests, then stops)',
  usage: 'Usage: passenger-config detach-process PID [--instance NAME] [--instance-registry-dir DIR]\n\nExample:\n  passenger-config detach-process 12345',
  async run(argv) {
    const { flags, positionals } = parseToolFlags(argv, INSTANCE_FLAGS);
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0])) die('detach-process takes one PID');
    const r = await adminJson<{ detached: number; group: string }>(instanceFrom(flags), 'POST', `/detach-process?pid=${positionals[0]}`);
    console.log(`Detached process ${r.detached} of ${r.group}.`);
    return 0;
  },
};
