// What `passenger start` prints once the server serves.
import type { Options } from '../../config';

export function banner(o: Options, server: string): string {
  const url = server.startsWith('http://') ? `${server}/` : server;
  return [
    '=============== Passenger standalone server started ===============',
    `App root:        ${o.appRoot}`,
    `Environment:     ${o.environment}`,
    `PID file:        ${o.pidFile}`,
    `Log file:        ${o.logFile ?? '(this terminal)'}`,
    `Accessible via:  ${url}`,
    '',
    o.daemonize ? 'Stop it with `passenger stop`.' : 'Stop it by pressing Ctrl-C.',
    '====================================================================',
  ].join('\n');
}
