// `passenger agent`: the service behind nginx or Apache, in the foreground.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { AGENT_OPTION_SPECS, agentDefaults, parseFlags, usageOfOptions, type Options } from '../../config';
import { ConfigError } from '../../errors';
import { gidOf, uidOf } from '../../platform/users';
import { checkAppUsers } from '../../spawn/app-user';
import { runWatchdog } from '../../watchdog/watchdog';

const AGENT_USAGE = `Usage: passenger agent [options]

Runs the agent (watchdog and core) in the foreground as the service nginx or
Apache forwards to: the web server's snippet (nginx-conf/passenger.conf,
apache-conf/passenger.conf) names each request's document root; the app root
is its parent. A snippet printed by \`passenger-config nginx-snippet --app-root
DIR\` (or apache-snippet) names the app root, its URI and its options instead.
Each app's Passengerfile.json sets its options, the web server's settings win
over it; the flags below are the defaults. Only app roots at or below an
--app-root-allow directory are served: with none given, every request is
refused.

Options:
${usageOfOptions(AGENT_OPTION_SPECS, 'agent')}

Examples:
  passenger agent --app-root-allow /srv --socket-group www-data
  passenger agent --socket /tmp/agent.sock --app-root-allow ~/apps --min-instances 2`;

export async function agent(argv: string[]): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    console.log(AGENT_USAGE);
    return 0;
  }
  const { values, positionals } = parseFlags(argv, AGENT_OPTION_SPECS);
  if (positionals.length > 0) throw new ConfigError(`passenger agent takes no arguments, got ${positionals.join(' ')}`, 'name app roots with --app-root-allow DIR');
  const o: Options = { ...agentDefaults(), ...values };
  o.socket = path.resolve(o.socket as string);
  for (const p of ['logFile', 'instanceRegistryDir', 'pidFile'] as const) if (o[p]) o[p] = path.resolve(o[p] as string);
  o.appRootAllow = o.appRootAllow.map((d) => {
    const abs = path.resolve(d);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) throw new ConfigError(`--app-root-allow ${d}: no such directory`);
    return abs;
  });
  if (o.socketMode && !/^0?[0-7]{3}$/.test(o.socketMode)) throw new ConfigError(`--socket-mode: expected an octal mode like 0660, got ${o.socketMode}`);
  if (o.socketOwner && uidOf(o.socketOwner) === null) throw new ConfigError(`--socket-owner ${o.socketOwner}: no such user`);
  if (o.socketGroup && gidOf(o.socketGroup) === null) throw new ConfigError(`--socket-group ${o.socketGroup}: no such group`);
  // Apps behind a web server may set sticky_sessions or max_request_time in their own files, which reply-from lacks.
  if (o.forwarder === 'reply-from') throw new ConfigError('--forwarder reply-from is for passenger start only', 'behind a web server use builtin (the default) or node-http');
  checkAppUsers(o);
  try {
    fs.mkdirSync(path.dirname(o.socket), { recursive: true, mode: 0o755 });
  } catch (e) {
    throw new ConfigError(`cannot create the directory of the socket ${o.socket}: ${(e as Error).message}`, 'choose another path with --socket, or run as root');
  }
  const run = runWatchdog(o, {
    ready: (server) => console.log(`passenger agent: serving on ${server}; app roots allowed: ${o.appRootAllow.join(', ') || 'none (every request is refused)'}`),
    fatal: (message) => console.error(`passenger agent: ${message}`),
  });
  return run.done;
}
