import * as fs from 'node:fs';
import * as path from 'node:path';
import { APP_OPTION_SPECS, DEFAULT_AGENT_SOCKET, parseArgv, usageOfOptions, type FlagSpec, type Options } from '../../config';
import { PACKAGE_ROOT } from '../../version';
import { die } from '../common';
import { SHIPPED_LIMIT_ON, SHIPPED_LIMIT_RE, apacheAppSnippet, bodyLimitRule, checkAppRoot, checkBaseUri, nginxAppSnippet, sizeBytes } from './app-snippet';
import type { Command } from './command';

const DEFAULT_MAX_BODY = '1024m';

/** The snippet command's own flags (the app's options, APP_OPTION_SPECS, come with them). */
function ownFlags(server: 'nginx' | 'apache') {
  return [
    { prop: 'socket', flag: '--socket', kind: 'string', arg: 'PATH' },
    { prop: 'maxBodySize', flag: '--max-body-size', kind: 'string', arg: 'SIZE' },
    { prop: 'appRoot', flag: '--app-root', kind: 'string', arg: 'DIR' },
    { prop: 'baseUri', flag: '--base-uri', kind: 'string', arg: 'URI' },
    ...(server === 'nginx' ? [{ prop: 'http', flag: '--http', kind: 'bool' }, { prop: 'keepalive', flag: '--keepalive', kind: 'bool' }] as const : []),
  ] as const satisfies readonly FlagSpec[];
}

/** A shipped web server snippet with the agent's socket path put in, or one app's snippet. */
export function snippetCommand(server: 'nginx' | 'apache'): Command {
  const dir = path.join(PACKAGE_ROOT, `${server}-conf`);
  const flags = [...ownFlags(server), ...APP_OPTION_SPECS];
  const nginxOnly = server === 'nginx' ? ' [--http | --keepalive]' : '';
  return {
    summary: `print the ${server} snippet (${server}-conf/) for an agent socket path, or one app's`,
    usage: `Usage: passenger-config ${server}-snippet [--socket PATH]${nginxOnly} [--max-body-size SIZE]
       passenger-config ${server}-snippet --app-root DIR [--base-uri URI] [app options]

Prints ${path.join(dir, 'passenger.conf')} with PATH as the agent's socket
(default ${DEFAULT_AGENT_SOCKET}).${server === 'nginx' ? `
--http prints passenger-http.conf instead: the http-level upstream (and the
map for WebSocket upgrades) that passenger-keepalive.conf, the faster
server-level snippet, uses; --keepalive prints passenger-keepalive.conf.
Both snippets carry WebSockets.` : `
Needs mod_proxy, mod_proxy_http, mod_headers and mod_rewrite
(a2enmod proxy proxy_http headers rewrite). WebSockets pass through
mod_proxy_http itself (upgrade=websocket, Apache 2.4.47 or later):
mod_proxy_wstunnel is not needed.`}
--max-body-size sets the largest request body the web server takes
(default ${DEFAULT_MAX_BODY}; a number with k, m or g; 0: no limit).

With --app-root, prints the snippet of one app instead, for a ${server === 'nginx' ? 'server block' : '<VirtualHost>'}
that serves several apps or whose document root is not the app's public/:
the app whose root is DIR (a link such as a deploy's current/ stays the
app's name; it must lead under an --app-root-allow directory of the agent),
served at URI (default /: the whole site) with the files under DIR/public
served by ${server === 'nginx' ? 'nginx' : 'Apache'} and PASSENGER_BASE_URI=URI set for the app. The
app options below are its settings; they win over its Passengerfile.json.
The agent takes them only from the web server: the snippets set them,
replacing whatever a client sent.

App options:
${usageOfOptions(APP_OPTION_SPECS, 'agent')}

Examples:
  passenger-config ${server}-snippet --socket /tmp/agent.sock > /etc/${server}/passenger.conf
  passenger-config ${server}-snippet --app-root /srv/blog/current --base-uri /blog \\
      --startup-file server.js --envvar API_URL=http://127.0.0.1:9000 --min-instances 2 > /etc/${server}/blog.conf`,
    flags,
    async run(argv) {
      const { values, positionals } = parseArgv<string>(argv, flags);
      const options: Partial<Options> = {};
      for (const s of APP_OPTION_SPECS) if (values[s.prop] !== undefined) (options as Record<string, unknown>)[s.prop] = values[s.prop];
      if (positionals.length > 0) die(`unexpected argument ${positionals[0]}`, 'see --help');
      const socket = path.resolve((values.socket as string | undefined) ?? DEFAULT_AGENT_SOCKET);
      const maxBody = (values.maxBodySize as string | undefined) ?? DEFAULT_MAX_BODY;
      sizeBytes(maxBody);
      const file = path.join(dir, values.http ? 'passenger-http.conf' : values.keepalive ? 'passenger-keepalive.conf' : 'passenger.conf');
      let text = fs.readFileSync(file, 'utf8').split(DEFAULT_AGENT_SOCKET).join(socket);
      text = text.replace(/^client_max_body_size \S+;$/m, `client_max_body_size ${maxBody};`)
        .replace(SHIPPED_LIMIT_RE, bodyLimitRule('', sizeBytes(maxBody), SHIPPED_LIMIT_ON));
      const appRoot = values.appRoot as string | undefined;
      if (appRoot === undefined) {
        const appFlag = APP_OPTION_SPECS.find((s) => s.prop in options)?.flag ?? (values.baseUri !== undefined ? '--base-uri' : undefined);
        if (appFlag !== undefined) die(`${appFlag}: app options need --app-root`, 'see --help');
        process.stdout.write(text);
        return 0;
      }
      if (values.http) die('--http prints the http-level file, which is the same for every app: leave out --app-root');
      const spec = { appRoot: checkAppRoot(appRoot), baseUri: checkBaseUri((values.baseUri as string | undefined) ?? ''), options, maxBodySize: maxBody };
      process.stdout.write(server === 'nginx' ? nginxAppSnippet(text, spec, argv) : apacheAppSnippet(text, spec, socket, argv));
      return 0;
    },
  };
}
