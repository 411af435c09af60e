import * as fs from 'node:fs';
import * as path from 'node:path';
import { PACKAGE_ROOT } from '../../version';
import { parseToolFlags } from '../common';
import type { Command } from './command';

const DEFAULT_SOCKET = '/run/passenger-ts/agent.sock';

/** A shipped web server snippet with the agent's socket path put in. */
export function snippetCommand(server: 'nginx' | 'apache'): Command {
  const dir = path.join(PACKAGE_ROOT, `${server}-conf`);
  const httpFlag = server === 'nginx' ? ' [--http]' : '';
  return {
    summary: `print the ${server} snippet (${server}-conf/) for an agent socket path`,
    usage: `Usage: passenger-config ${server}-snippet [--socket PATH]${httpFlag}

Prints ${path.join(dir, 'passenger.conf')} with PATH as the agent's socket
(default ${DEFAULT_SOCKET}).${server === 'nginx' ? `
--http prints passenger-http.conf instead: the http-level upstream (and the
map for WebSocket upgrades) that passenger-keepalive.conf, the faster
server-level snippet, uses. Both snippets carry WebSockets.` : `
Needs mod_proxy, mod_proxy_http, mod_headers and mod_rewrite
(a2enmod proxy proxy_http headers rewrite). WebSockets pass through
mod_proxy_http itself (upgrade=websocket, Apache 2.4.47 or later):
mod_proxy_wstunnel is not needed.`}

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

