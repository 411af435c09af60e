// Starts app processes: Node apps through the preloaded loader (they listen on
// a Unix socket we choose and report over the channel), anything else through
// app_start_command with PORT set (ready once the port accepts). Each process
// leads its own process group, so stopping it reaches its children too.
// When the agent runs as root, each process runs as its app's user (see
// app-user.ts), started through setpriv(1) so its supplementary groups are the
// user's own: Node's spawn() sets a uid and gid but not the groups.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { GroupOptions } from '../config';
import { SpawnError } from '../errors';
import type { Logger } from '../log';
import type { Spawner } from '../pool/pool';
import type { ProcessHandle } from '../pool/process';
import { AppHandle, killChildGroup } from './app-handle';
import { AppLogs } from './app-logs';
import { forwardLines, OutputTail } from './app-output';
import { APP_SOCKET_NAME, makeSocketDir, removeAppSocket } from './app-socket';
import { accessProblem, appUserFor, userEnv, type AppUser, type UserPolicy } from './app-user';
import { reportOf, type LoaderChannel } from './loader-channel';

export const LOADER_PATH = path.join(__dirname, 'node-loader.js');
/** util-linux's setpriv: Essential on Debian, so always there. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f)) ?? 'setpriv';
/** What the loader prints when an app calls cluster.fork() (node-loader.ts). */
const CLUSTER_REFUSAL = 'this app forks node:cluster workers';

export interface SpawnerConfig {
  /** Directory for the apps' Unix sockets. */
  socketDir: string;
  channel: LoaderChannel;
  log: Logger;
  /** Extra environment for every app (on top of the agent's own). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Direct mode: the listening socket (an fd of ours) the apps accept from. */
  directListenFd?: number | null;
  /** The agent runs as root: who each app runs as. Null: apps run as the agent's own user. */
  users?: UserPolicy | null;
  /** The loader apps preload (a copy every app user can read, when users are switched). */
  loaderPath?: string;
  /** Told of each process the moment it exists, and when its start failed (it was killed then). */
  starting?: StartingHooks;
}

export interface StartingHooks {
  began(pid: number, appRoot: string, id: number, endpoint: ProcessHandle['endpoint']): void;
  failed(pid: number): void;
}

/** The command line that runs `cmd` as `who`: real, effective and saved ids, and the supplementary groups. */
function asUser(who: AppUser, cmd: string, args: string[]): [string, string[]] {
  const groups = who.groups.length > 0 ? ['--groups', who.groups.join(',')] : ['--clear-groups'];
  return [SETPRIV, ['--reuid', String(who.uid), '--regid', String(who.gid), ...groups, '--', cmd, ...args]];
}

/** A version string an app reported, kept only when it looks like one (the app is not trusted). */
function nodeVersionOf(v: unknown): string | undefined {
  return typeof v === 'string' && /^v\d{1,4}\.\d{1,4}\.\d{1,4}[\w.+-]{0,32}$/.test(v) ? v : undefined;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.once('connect', () => { s.destroy(); resolve(true); });
    s.once('error', () => resolve(false));
  });
}

/**
 * The Node that runs an app: `nodejs` (a path, relative to the app root, or
 * a name looked up in PATH, as a shell would), else `node` from PATH as
 * Passenger does, else the agent's own Node. A `nodejs` that is not an
 * executable file is a spawn error that names it, before anything starts.
 */
export function nodeInterpreter(nodejs: string | undefined, searchPath: string | undefined, appRoot: string): string {
  const executable = (f: string): boolean => {
    try {
      fs.accessSync(f, fs.constants.X_OK);
      return fs.statSync(f).isFile();
    } catch {
      return false;
    }
  };
  const name = nodejs ?? 'node';
  const found = name.includes('/') ? (executable(path.resolve(appRoot, name)) ? path.resolve(appRoot, name) : null)
    : (searchPath ?? '').split(':').filter((d) => d !== '').map((d) => path.join(d, name)).find(executable) ?? null;
  if (found !== null) return path.resolve(found);
  if (nodejs === undefined) return process.execPath;
  throw new SpawnError('fork', `the Node interpreter ${nodejs} (nodejs) ${name.includes('/') ? 'is not an executable file' : 'is not in PATH'}`, '',
    'set "nodejs" in Passengerfile.json (or --nodejs) to the path of an installed node, or leave it out to use node from PATH');
}

export class AppSpawner implements Spawner {
  /** Aborts for the spawns under way. */
  private readonly starting = new Set<() => void>();
  /** Where each app's output goes (its app_log_file, or the log). */
  readonly appLogs: AppLogs;

  constructor(private readonly cfg: SpawnerConfig) {
    this.appLogs = new AppLogs(cfg.log);
  }

  /** Stops the processes still starting (the server is shutting down): none may outlive it. */
  abortStarting(): void {
    for (const abort of [...this.starting]) abort();
  }

  async spawn(o: GroupOptions, id: number): Promise<ProcessHandle> {
    const startup = path.resolve(o.appRoot, o.startupFile);
    if (!o.appStartCommand && !fs.existsSync(startup)) {
      throw new SpawnError('load', `the startup file ${startup} does not exist`, '',
        `create it, or name the app's entry file with --startup-file (Passengerfile.json: "startup_file")`);
    }
    const who = this.cfg.users ? appUserFor(o, this.cfg.users) : null;
    if (who) {
      const why = accessProblem(o.appRoot, o.appStartCommand ? null : startup, who);
      if (why !== null) {
        throw new SpawnError('user', `the app runs as ${who.name} (see "Who apps run as"), and ${who.name} cannot start it: ${why}`, '',
          `let ${who.name} through (e.g. chmod o+x on that directory, or move the app elsewhere), or name the app's user with "user" in Passengerfile.json`);
      }
    }
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      ...this.cfg.baseEnv,
      ...(who ? userEnv(who) : {}),
      ...o.envvars,
      PASSENGER_APP_ENV: o.environment,
      NODE_ENV: o.environment,
      IN_PASSENGER: '1',
    };
    // Before anything is made for the process: a missing interpreter fails here, naming it.
    const node = o.appStartCommand ? null : nodeInterpreter(o.nodejs, env.PATH, o.appRoot);
    let cmd: string;
    let args: string[];
    let endpoint: ProcessHandle['endpoint'];
    let socketFile: string | null = null;
    const token = randomBytes(12).toString('hex');
    if (o.appStartCommand) {
      const port = await freePort();
      env.PORT = String(port);
      cmd = '/bin/sh';
      args = ['-c', o.appStartCommand];
      endpoint = { host: '127.0.0.1', port };
    } else {
      let dir: string;
      try {
        dir = makeSocketDir(this.cfg.socketDir, id, who);
      } catch (e) {
        throw new SpawnError('fork', `cannot create a socket directory in ${this.cfg.socketDir}: ${(e as Error).message}`, '', 'check the instance directory');
      }
      socketFile = path.join(dir, APP_SOCKET_NAME);
      env.PASSENGER_LOADER_SOCKET = socketFile;
      if (o.directMode && this.cfg.directListenFd != null) env.PASSENGER_LOADER_LISTEN_FD = '3';
      env.PASSENGER_LOADER_SHUTDOWN_TIMEOUT = String(o.shutdownTimeout);
      env.PASSENGER_LOADER_CHANNEL = this.cfg.channel.path;
      env.PASSENGER_LOADER_TOKEN = token;
      cmd = node as string;
      args = [...o.nodeArgs, '--require', this.cfg.loaderPath ?? LOADER_PATH, startup];
      endpoint = { socketPath: socketFile };
    }

    const direct = !o.appStartCommand && o.directMode && this.cfg.directListenFd != null;
    const stdio: ('pipe' | number)[] = direct ? ['pipe', 'pipe', 'pipe', this.cfg.directListenFd as number] : ['pipe', 'pipe', 'pipe'];
    if (who) [cmd, args] = asUser(who, cmd, args);
    const child = spawn(cmd, args, { cwd: o.appRoot, env, stdio, detached: true });
    const tail = new OutputTail();
    const log = this.cfg.log;
    return new Promise<ProcessHandle>((resolve, reject) => {
      let settled = false;
      let handle: AppHandle | null = null;
      const timers: NodeJS.Timeout[] = [];
      const stopOut: (() => void)[] = [];
      const finish = (err: SpawnError | null): void => {
        if (settled) return;
        settled = true;
        this.starting.delete(abort);
        for (const t of timers) clearTimeout(t);
        // The channel stays open to the process until it exits (the handle
        // forgets it then): reports in direct mode, and the request to leave.
        if (err || o.appStartCommand) this.cfg.channel.forget(token);
        for (const s of stopOut) s();
        if (err) {
          if (handle) handle.kill();
          else killChildGroup(child);
          if (child.pid !== undefined) this.cfg.starting?.failed(child.pid);
          reject(err);
        } else resolve(handle as AppHandle);
      };
      // At shutdown there is no time for a graceful stop: the agent exits next.
      const abort = (): void => {
        finish(new SpawnError('load', 'the server is shutting down', tail.toString()));
        killChildGroup(child);
      };
      this.starting.add(abort);
      child.once('error', (e) => {
        if (socketFile && child.pid === undefined) removeAppSocket(socketFile);
        finish(new SpawnError('fork', `could not start ${cmd}: ${e.message}`, tail.toString(),
          o.appStartCommand ? 'check app_start_command' : 'check that node is installed'));
      });
      if (child.pid === undefined) return;
      this.cfg.starting?.began(child.pid, o.appRoot, id, endpoint);
      handle = AppHandle.ofChild(child, {
        endpoint, channel: this.cfg.channel, channelToken: o.appStartCommand ? undefined : token, direct,
        user: who ? { uid: who.uid, gid: who.gid } : undefined, warn: (m) => log.warn(m),
      });
      const sink = this.appLogs.sinkFor(o.appLogFile === undefined ? undefined : path.resolve(o.appRoot, o.appLogFile), who ?? undefined);
      const prefix = `App ${child.pid} (${o.appRoot}) `;
      stopOut.push(forwardLines(child.stdout, sink, o.disableLogPrefix ? '' : `${prefix}stdout: `, tail));
      stopOut.push(forwardLines(child.stderr, sink, o.disableLogPrefix ? '' : `${prefix}stderr: `, tail));
      child.stdin?.on('error', () => undefined);
      child.once('exit', (code, signal) => {
        // Give the last output a moment to arrive before reporting it.
        setTimeout(() => finish(new SpawnError('load',
          `the app exited (${signal ? `signal ${signal}` : `exit code ${code}`}) before it listened for requests${tail.toString().includes(CLUSTER_REFUSAL) ? ': it uses node:cluster, which is not supported' : ''}`,
          tail.toString(),
          o.appStartCommand ? 'the command must keep running and listen on $PORT' : 'see the app output; the app must call listen() (on any port)')), 50);
      });
      timers.push(setTimeout(() => finish(new SpawnError('timeout',
        `the app did not listen within ${o.startTimeout} s (start_timeout)`, tail.toString(),
        'raise --start-timeout if the app is slow to boot, or check that it calls listen()')), o.startTimeout * 1000));
      if (o.appStartCommand) {
        const port = (endpoint as { port: number }).port;
        const poll = async (): Promise<void> => {
          while (!settled && !handle?.exited) {
            if (await canConnect(port)) return finish(null);
            await new Promise((r) => setTimeout(r, 25));
          }
        };
        void poll();
      } else {
        const h = handle;
        this.cfg.channel.on(token, child.pid as number, (msg) => {
          if (msg.type === 'ready') {
            h.nodeVersion = nodeVersionOf((msg as { node?: unknown }).node);
            finish(null);
          }
          else if (msg.type === 'stats') h.report(reportOf(msg));
        });
      }
    });
  }
}
