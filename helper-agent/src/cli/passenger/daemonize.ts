// `passenger start --daemonize`: the watchdog runs again in the background as
// `passenger __watchdog` (an internal command), which tells the foreground
// process over IPC once it serves, or why it could not.
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Options } from '../../config';
import { openOwnFile } from '../../platform/safe-files';
import { runWatchdog } from '../../watchdog/watchdog';
import { die } from '../common';
import { banner } from './banner';
import { PASSENGER_BIN } from './server-pid';

/** Runs the watchdog in the background and returns once it serves (or failed). */
export function daemonize(o: Options): Promise<number> {
  fs.mkdirSync(path.dirname(o.logFile as string), { recursive: true });
  const fd = openOwnFile(o.logFile as string, 'append');
  const child = spawn(process.execPath, [PASSENGER_BIN, '__watchdog'], {
    env: { ...process.env, PASSENGER_WATCHDOG_OPTIONS: JSON.stringify(o) },
    stdio: ['ignore', fd, fd, 'ipc'],
    detached: true,
  });
  fs.closeSync(fd);
  return new Promise((resolve) => {
    child.on('message', (m: { type: string; server?: string; message?: string }) => {
      if (m.type === 'ready') {
        console.log(banner(o, m.server as string));
        console.log(`Running in the background as PID ${child.pid}.`);
        child.disconnect();
        child.unref();
        resolve(0);
      } else if (m.type === 'fatal') {
        console.error(`passenger start: ${m.message}`);
        resolve(1);
      }
    });
    child.on('exit', (code) => {
      console.error(`passenger start: the server exited (code ${code}) before it was ready; see ${o.logFile}`);
      resolve(1);
    });
  });
}

/** The background watchdog started by --daemonize. */
export async function watchdogMain(): Promise<number> {
  const o = JSON.parse(process.env.PASSENGER_WATCHDOG_OPTIONS ?? 'null') as Options | null;
  if (!o) die('this command is internal to `passenger start --daemonize`');
  delete process.env.PASSENGER_WATCHDOG_OPTIONS;
  const send = (m: object): void => { if (process.connected && process.send) process.send(m); };
  const run = runWatchdog(o, {
    ready: (server) => {
      send({ type: 'ready', server });
      if (process.connected) process.disconnect();
    },
    fatal: (message) => send({ type: 'fatal', message }),
  });
  return run.done;
}
