import { listInstances, registryDirs } from '../../instance/registry';
import { parseArgv, type FlagSpec } from '../../config';
import { REGISTRY_FLAG } from '../common';
import type { Command } from './command';

const FLAGS = [
  { prop: 'json', flag: '--json', kind: 'bool' },
  { prop: 'quiet', flag: '--quiet', short: '-q', kind: 'bool' },
  REGISTRY_FLAG,
] as const satisfies readonly FlagSpec[];

export const listInstancesCommand: Command = {
  summary: 'list the running servers',
  usage: 'Usage: passenger-config list-instances [--json] [-q | --quiet] [--instance-registry-dir DIR]\n\n-q, --quiet: print nothing when no server runs.\n\nExamples:\n  passenger-config list-instances\n  passenger-config list-instances --json',
  flags: FLAGS,
  async run(argv) {
    const { values: flags } = parseArgv(argv, FLAGS);
    const regs = registryDirs(flags.instanceRegistryDir as string | undefined);
    const rows = regs.flatMap((r) => listInstances(r)).map((i) => {
      const p = i.readProperties();
      return { name: i.name, dir: i.dir, pid: p?.watchdog_pid ?? null, mode: p?.mode ?? null, server: p?.server ?? null, app_root: p?.app_root ?? null, created_at: p?.created_at ?? null };
    });
    if (flags.json) console.log(JSON.stringify(rows, null, 2));
    else if (rows.length === 0) {
      if (!flags.quiet) console.log(`No running servers in ${regs.join(' or ')}.`);
    } else for (const r of rows) console.log(`${r.name}  pid ${r.pid}  ${r.mode}  ${r.server}  ${r.app_root ?? ''}`.trimEnd());
    return 0;
  },
};
