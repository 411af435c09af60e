import type { DetachProcessResult } from '../../admin/protocol';
import { PassengerError } from '../../errors';
import { adminJson } from '../../instance/admin-client';
import { parseArgv, type FlagSpec } from '../../config';
import { die } from '../common';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

const FLAGS = [
  { prop: 'ignoreNonexistentPid', flag: '--ignore-nonexistant-pid', kind: 'bool' },
  { prop: 'ignoreNonexistentPid', flag: '--ignore-nonexistent-pid', kind: 'bool' },
  ...INSTANCE_FLAGS,
] as const satisfies readonly FlagSpec[];

export const detachProcess: Command = {
  summary: 'take one app process out of its group (it finishes its requests, then stops)',
  usage: `Usage: passenger-config detach-process PID [--ignore-nonexistant-pid] [--instance NAME] [--instance-registry-dir DIR]

--ignore-nonexistant-pid (Passenger's spelling; --ignore-nonexistent-pid too)
exits 0 when no app process has that PID.

Example:
  passenger-config detach-process 12345`,
  flags: FLAGS,
  async run(argv) {
    const { values: flags, positionals } = parseArgv(argv, FLAGS);
    if (positionals.length !== 1 || !/^\d+$/.test(positionals[0])) die('detach-process takes one PID');
    let r: DetachProcessResult;
    try {
      r = await adminJson(instanceFrom(flags), 'POST', `/detach-process?pid=${positionals[0]}`);
    } catch (e) {
      if (e instanceof PassengerError && e.code === 'E_NO_PROCESS' && flags.ignoreNonexistentPid) {
        console.log(`${e.message}: nothing to detach.`);
        return 0;
      }
      throw e;
    }
    console.log(`Detached process ${r.detached} of ${r.group}.`);
    return 0;
  },
};
