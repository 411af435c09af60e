#!/usr/bin/env node
// `passenger-config`: operator commands, one per file under config/, dispatched through COMMANDS.
import { die, runMain } from './common';
import { about } from './passenger-config/about';
import { apiCall } from './passenger-config/api-call';
import type { Command } from './passenger-config/command';
import { detachProcess } from './passenger-config/detach-process';
import { listInstancesCommand } from './passenger-config/list-instances';
import { reopenLogs } from './passenger-config/reopen-logs';
import { restartApp } from './passenger-config/restart-app';
import { snippetCommand } from './passenger-config/snippets';

export const COMMANDS: Record<string, Command> = {
  'restart-app': restartApp,
  'detach-process': detachProcess,
  'list-instances': listInstancesCommand,
  'reopen-logs': reopenLogs,
  'nginx-snippet': snippetCommand('nginx'),
  'apache-snippet': snippetCommand('apache'),
  about,
  'api-call': apiCall,
};

function usage(): string {
  const w = Math.max(...Object.keys(COMMANDS).map((k) => k.length));
  return `Usage: passenger-config <command> [options]\n\nCommands:\n${Object.entries(COMMANDS).map(([k, c]) => `  ${k.padEnd(w)}  ${c.summary}`).join('\n')}\n\nRun \`passenger-config <command> --help\` for a command's usage and examples.`;
}

export async function configMain(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  // Passenger's `passenger-config --root`, which older deploy scripts call.
  if (name === '--root') return about.run(['root']);
  if (name === undefined || name === '--help' || name === '-h') {
    console.log(usage());
    return name === undefined ? 2 : 0;
  }
  const cmd = Object.prototype.hasOwnProperty.call(COMMANDS, name) ? COMMANDS[name] : undefined;
  if (!cmd) die(`unknown command "${name}"`, `commands: ${Object.keys(COMMANDS).join(', ')}`);
  if (rest.includes('--help') || rest.includes('-h')) {
    console.log(cmd.usage);
    return 0;
  }
  return cmd.run(rest);
}

if (require.main === module) runMain('passenger-config', configMain);
