#!/usr/bin/env node
// `passenger-config`: operator commands, one per entry of COMMANDS.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { adminJson } from '../instance/admin-client';
import { listInstances, registryDir, selectInstance } from '../instance/instance-dir';
import { PACKAGE_ROOT, VERSION } from '../version';
import { die, parseToolFlags, runMain } from './common';

interface Command {
  summary: string;
  usage: string;
  run(argv: string[]): Promise<number>;
}

function instanceFrom(flags: Record<string, string | true>) {
  return selectInstance(registryDir(flags['--instance-registry-dir'] as string | undefined), flags['--instance'] as string | undefined);
}

const DEFAULT_SOCKET = '/run/passenger-ts/agent.sock';

/** A shipped web server snippet with the agent's socket path put in. */
function snippetCommand(server: 'nginx' | 'apache'): Command {
  const dir = path.join(PACKAGE_ROOT, `${server}-conf`);
  const httpFlag = server === 'nginx' ? ' [--http]' : '';
  return {
    summary: `print the ${server} snippet (${server}-conf/) for an agent socket path`,
    usage: `Usage: passenger-config ${server}-snippet [--socket PATH]${httpFlag}

Prints ${path.join(dir, 'passenger.conf')} with PATH as the agent's socket
(default ${DEFAULT_SOCKET}).${server === 'nginx' ? `
--http prints passenger-http.conf instead: the http-level upstream that
passenger-keepalive.conf (the faster server-level snippet) uses.` : ''}

Example:
  passenger-config ${server}-snippet --socket /tmp/agent.sock > /etc/${server}/passenger.conf`,
    async run(argv) {
      const { flags } = parseToolFlags(argv, server === 'nginx' ? { '--socket': 'value', '--http': 'bool' } : { '--socket': 'value' });
      const socket = path.resolve((flags['--socket'] as string | undefined) ?? DEFAULT_SOCKET);
      const file = path.join(dir, flags['--http'] ? 'passenger-http.conf' : 'passenger.conf');
      process.stdout.write(fs.readFileSync(file, 'utf8').split(DEFAULT_SOCKET).join(socket));
      return 0;
    },
  };
}

const COMMANDS: Record<string, Command> = {
  'nginx-snippet': snippetCommand('nginx'),
  'apache-snippet': snippetCommand('apache'),
  'restart-app': {
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
      const { flags, positionals } = parseToolFlags(argv, { '--rolling': 'bool', '--instance': 'value', '--instance-registry-dir': 'value' });
      if (positionals.length !== 1) die('restart-app takes one APP_ROOT', 'see passenger-config restart-app --help');
      const root = path.resolve(positionals[0]);
      const inst = instanceFrom(flags);
      const r = await adminJson<{ restarted: string; pids: number[] }>(inst, 'POST',
        `/restart-app?root=${encodeURIComponent(root)}${flags['--rolling'] ? '&rolling=1' : ''}`, 15 * 60_000);
      console.log(`Restarted ${r.restarted}${flags['--rolling'] ? ' (rolling)' : ''}; processes now: ${r.pids.join(', ') || 'none'}`);
      return 0;
    },
  },
  'detach-process': {
    summary: 'take one app process out of its group (it finishes its requests, then stops)',
    usage: 'Usage: passenger-config detach-process PID [--instance NAME] [--instance-registry-dir DIR]\n\nExample:\n  passenger-config detach-process 12345',
    async run(argv) {
      const { flags, positionals } = parseToolFlags(argv, { '--instance': 'value', '--instance-registry-dir': 'value' });
      if (positionals.length !== 1 || !/^\d+$/.test(positionals[0])) die('detach-process takes one PID');
      const r = await adminJson<{ detached: number; group: string }>(instanceFrom(flags), 'POST', `/detach-process?pid=${positionals[0]}`);
      console.log(`Detached process ${r.detached} of ${r.group}.`);
      return 0;
    },
  },
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
