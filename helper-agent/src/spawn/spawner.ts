// Starts app processes: Node apps through the preloaded loader (they listen on
// a Unix socket we choose and report over the channel), anything else through
// app_start_command with PORT set (ready once the port accepts). Each process
// leads its own process group, so stopping it reaches its children too.
// When the agent runs as root, each process runs as its app's user (see
// app-user.ts), started through setpriv(1) so its supplementary groups are the
// user's own: Node's spawn() sets a uid and gid but not the groups.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import type { GroupOptions } from '../config';
import { SpawnError } from '../errors';
import type { Logger } from '../log';
import type { Spawner } from '../pool/pool';
import type { ProcessHandle, ProcessReport } from '../pool/process';
import { AppLogs } from './app-logs';
import { accessProblem, appUserFor, userEnv, type AppUser, type UserPolicy } from './app-user';
import { reportOf, type Channel } from './channel';

export const LOADER_PATH = path.join(__dirname, 'node-loader.js');
/** util-linux's setpriv: Essential on Debian, so always there. */
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((f) => fs.existsSync(f)) ?? 'setpriv';
/** An app's socket, in a directory of its own that only the app's user (and root) may enter. */
const APP_SOCKET_NAME = 'app.sock';
const OUTPUT_CAP = 32 * 1024;
/** What the loader prints when an app calls cluster.fork() (node-loader.ts). */
const CLUSTER_REFUSAL = 'this app forks node:cluster workers';

export interface SpawnerConfig {
  /** Directory for the apps' Unix sockets. */
  socketDir: string;
  channel: Channel;
  log: Logger;
  /** Extra environment for every app (on top of the agent's own). */
  baseEnv?: NodeJS.ProcessEnv;
  /** Direct mode: the listening socket (an fd of ours) the apps accept from. */
  directListenFd?: number | null;
  /** The agent runs as root: who each app runs as. Null: apps run as the agent's own user. */
  users?: UserPolicy | null;
  /** The loader apps preload (a copy every app user can read, when users are switched). */
  loaderPath?: string;
}

/**
 * Removes an app's socket and then its directory, never recursively: the
 * directory belongs to the app's user, who could have planted a symlink
 * inside for a recursive removal to follow.
 */
export function removeAppSocket(socketFile: string): void {
  fs.rm(socketFile, { force: true }, () => fs.rmdir(path.dirname(socketFile), () => undefined));
}

/**
 * A fresh directory for one process's socket (never one left behind): mode
 * 0700, owned by the app's user, so no other app can reach or replace the
 * socket in it. Its parent (apps/) is ours and only traversable by others.
 */
function makeSocketDir(parent: string, id: number, who: AppUser | null): string {
  const dir = fs.mkdtempSync(path.join(parent, `${id}-`));
  if (who) fs.chownSync(dir, who.uid, who.gid);
  return dir;
}

/** The command line that runs `cmd` as `who`: real, effective and saved ids, and the supplementary groups. */
function asUser(who: AppUser, cmd: string, args: string[]): [string, string[]] {
  const groups = who.groups.length > 0 ? ['--groups', who.groups.join(',')] : ['--clear-groups'];
  return [SETPRIV, ['--reuid', String(who.uid), '--regid', String(who.gid), ...groups, '--', cmd, ...args]];
}

function signalGroup(pgid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, sig);
    return true;
  } catch {
    return false;
  }
}

/** A live app process: exit tracking, output forwarding, and the stop sequence. */
class SpawnedProcess implements ProcessHandle {
  /** The loader channel, to tell a Node app to leave (its stdin closing says it too). */
  channel: Channel | null = null;
  readonly pid: number;
  exited = false;
  private exitCbs: ((code: number | null, signal: string | null) => void)[] = [];
  private exitInfo: [number | null, string | null] = [null, null];
  private stopping: Promise<void> | null = null;
  private reportCb: ((r: ProcessReport) => void) | null = null;
  /** The Node version the process reported when it was ready (Node apps only). */
  nodeVersion: string | undefined;
  constructor(
    readonly child: ChildProcess,
    readonly endpoint: ProcessHandle['endpoint'],
    private readonly socketFile: string | null,
    /** Node apps under the loader, which outlive a crash of the core: the token they speak on the channel with. */
    readonly channelToken: string | undefined,
    /** Direct mode: the process drains its own connections after stdin closes, for up to the grace period. */
    readonly direct: boolean,
    private readonly log: Logger,
    readonly user: { uid: number; gid: number } | undefined,
  ) {
    this.pid = child.pid as number;
    child.once('exit', (code, signal) => {
      this.exited = true;
      this.exitInfo = [code, signal];
      // Whatever the app left behind in its group goes with it.
      signalGroup(this.pid, 'SIGKILL');
      if (this.socketFile) removeAppSocket(this.socketFile);
      for (const cb of this.exitCbs.splice(0)) cb(code, signal);
    });
  }

  onReport(cb: (r: ProcessReport) => void): void {
    this.reportCb = cb;
  }

  report(r: ProcessReport): void {
    this.reportCb?.(r);
  }

  onExit(cb: (code: number | null, signal: string | null) => void): void {
    if (this.exited) queueMicrotask(() => cb(...this.exitInfo));
    else this.exitCbs.push(cb);
  }

  private waitExit(ms: number): Promise<boolean> {
    if (this.exited) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), ms);
      this.onExit(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  /**
   * Tells the process to leave and gives it `timeoutMs` (shutdown_timeout)
   * to exit by itself, then KILL to its process group. A Node app hears it
   * from its loader (over the channel, and by its stdin closing), which
   * hands it to the app's own shutdown: an exit listener of the loader API,
   * else SIGTERM to its process group; in direct mode after it has drained
   * its connections. Anything else gets its stdin closed and SIGTERM to its
   * process group at once. Safe to call twice.
   */
  stop(timeoutMs: number): Promise<void> {
    if (this.stopping) return this.stopping;
    this.stopping = (async () => {
      if (this.exited) return;
      if (this.channelToken !== undefined) this.channel?.send(this.channelToken, { type: 'leave' });
      this.child.stdin?.end();
      if (this.channelToken === undefined) signalGroup(this.pid, 'SIGTERM');
      if (await this.waitExit(timeoutMs)) return;
      this.log.warn(`app process ${this.pid} was still running ${Math.round(timeoutMs / 100) / 10} s after SIGTERM: sending SIGKILL to its process group (shutdown_timeout)`);
      signalGroup(this.pid, 'SIGKILL');
      await this.waitExit(5000);
    })();
    return this.stopping;
  }
}

/** A version string an app reported, kept only when it looks like one (the app is not trusted). */
function nodeVersionOf(v: unknown): string | undefined {
  return typeof v === 'string' && /^v\d{1,4}\.\d{1,4}\.\d{1,4}[\w.+-]{0,32}$/.test(v) ? v : undefined;
}

/** Keeps the last OUTPUT_CAP bytes of what a process printed while it started. */
class OutputTail {
  private text = '';
  add(chunk: string): void {
    this.text += chunk;
    if (this.text.length > OUTPUT_CAP) this.text = this.text.slice(-OUTPUT_CAP);
  }
  toString(): string {
    return this.text.trimEnd();
  }
}

/** Forwards an app's output to the log, a line at a time, each prefixed with its pid and stream. */
function forwardLines(stream: NodeJS.ReadableStream | null, log: Logger, prefix: string, tail: OutputTail | null): () => void {
  if (!stream) return () => undefined;
  let buf = '';
  let capturing = tail;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    if (capturing) capturing.add(chunk);
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      log.raw(`${prefix}${buf.slice(0, nl)}`);
      buf = buf.slice(nl + 1);
    }
    if (buf.length > 64 * 1024) {
      log.raw(`${prefix}${buf}`);
      buf = '';
    }
  });
  stream.on('end', () => { if (buf) log.raw(`${prefix}${buf}`); });
  stream.on('error', () => undefined);
  return () => { capturing = null; };
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
      let handle: SpawnedProcess | null = null;
      const timers: NodeJS.Timeout[] = [];
      const stopOut: (() => void)[] = [];
      const finish = (err: SpawnError | null): void => {
        if (settled) return;
        settled = true;
        this.starting.delete(abort);
        for (const t of timers) clearTimeout(t);
        // The channel stays open to the process until it exits: reports in
        // direct mode, and the request to leave.
        if (err || o.appStartCommand) this.cfg.channel.forget(token);
        else handle?.onExit(() => this.cfg.channel.forget(token));
        for (const s of stopOut) s();
        if (err) {
          if (child.pid !== undefined && !handle?.exited) void (handle ? handle.stop(0) : Promise.resolve(signalGroup(child.pid, 'SIGKILL')));
          reject(err);
        } else resolve(handle as SpawnedProcess);
      };
      // At shutdown there is no time for a graceful stop: the agent exits next.
      const abort = (): void => {
        finish(new SpawnError('load', 'the server is shutting down', tail.toString()));
        if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
      };
      this.starting.add(abort);
      child.once('error', (e) => {
        if (socketFile && child.pid === undefined) removeAppSocket(socketFile);
        finish(new SpawnError('fork', `could not start ${cmd}: ${e.message}`, tail.toString(),
          o.appStartCommand ? 'check app_start_command' : 'check that node is installed'));
      });
      if (child.pid === undefined) return;
      handle = new SpawnedProcess(child, endpoint, socketFile, o.appStartCommand ? undefined : token, direct, log,
        who ? { uid: who.uid, gid: who.gid } : undefined);
      handle.channel = this.cfg.channel;
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
