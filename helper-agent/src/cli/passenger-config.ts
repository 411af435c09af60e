#!/usr/bin/env node
// `passenger-config`: operator commands, one per entry of COMMANDS.
import { adminJson } from '../instance/admin-client';
import { listInstances, registryDir, selectInstance } from '../instance/instance-dir';
import { PACKAGE_ROOT, VERSION } from '../version';
import { die, parseToolFlags, runMain } from './common';

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  about: {
    summary: 'show the version and where things are',
    usage: 'Usage: passenger-config about\n\nExample:\n  passenger-config about',
    async run() {
      console.log(`Version:            ${VERSION}`);
      console.log(`Installed in:       ${PACKAGE_ROOT}`);
      console.log(`Node:               ${process.execPath} (${process.version})`);
      console.log(`Instance registry:  ${registryDir()}`);
      return 0;
    },
  },
  'list-instances': {
    summary: 'list the running servers',
    usage: 'Usage: passenger-config list-instances [--json] [--instance-registry-dir DIR]\n\nExample:\n  passenger-config list-instances --json',
    async run(argv) {
      const { flags } = parseToolFlags(argv, { '--json': 'bool', '--instance-registry-dir': 'value' });
      const reg = registryDir(flags['--instance-registry-dir'] as string | undefined);
      const rows = listInstances(reg).map((i) => {
        const p = i.readProperties();
        return { name: i.name, dir: i.dir, pid: p?.watchdog_pid ?? null, server: p?.server ?? null, app_root: p?.app_root ?? null, created_at: p?.created_at ?? null };
      });
      if (flags['--json']) {
        console.log(JSON.stringify(rows, null, 2));
      } else if (rows.length === 0) {
        console.log(`No running servers in ${reg}.`);
      } else {
        for (const r of rows) console.log(`${r.name}  pid ${r.pid}  ${r.server}  ${r.app_root ?? ''}`);
      }
      return 0;
    },
  },
  'api-call': {
    summary: 'call the admin API: api-call GET /pool.json',
    usage: 'Usage: passenger-config api-call METHOD PATH [--instance-registry-dir DIR]\n\nExample:\n  passenger-config api-call GET /pool.json',
    async run(argv) {
      const { flags, positionals } = parseToolFlags(argv, { '--instance-registry-dir': 'value' });
      if (positionals.length !== 2) die('api-call takes METHOD and PATH');
      const inst = selectInstance(registryDir(flags['--instance-registry-dir'] as string | undefined));
      console.log(JSON.stringify(await adminJson(inst, positionals[0].toUpperCase(), positionals[1]), null, 2));
      return 0;
    },
  },
};

function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `Usage: passenger-config <command> [options]\n\nCommands:\n${Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`).join('\n')}\n\nRun \`passenger-config <command> --help\` for a command's usage.`;
}

runMain('passenger-config', async (argv) => {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = COMMANDS[name];
  if (!cmd) die(`unknown command "${name}"`, `commands: ${Object.keys(COMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  return cmd.run(rest);
});
