// The watchdog: owns the instance directory, starts the agent core, restarts
// it if it dies, and on TERM/INT stops it (and with it every app) and cleans up.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Options } from '../config';
import type { CoreConfig, CoreMessage } from '../core/core';
import { ConfigError } from '../errors';
import { signalRecordedGroup, startTicksOf, type InstanceDir } from '../instance/instance-dir';
import { cleanStale, createInstanceDir, serverRegistryDir } from '../instance/registry';
import { UnsafeFileError, writeOwnFile } from '../platform/safe-files';
import { Logger } from '../log';
import { watchdogStopBoundMs } from '../pool/stop-policy';
import { listenTcp, listenUnix } from '../platform/native';
import { isAlive } from '../platform/procfs';
import { gidOf, uidOf } from '../platform/users';
import { SOFTWARE, VERSION } from '../version';
import { dropPrivileges, handOver, serverUserOf } from './server-user';

const CORE_MAIN = path.join(__dirname, '..', 'core', 'core.js');
/**
 * V8 settings of the core. Its live heap is small (5-7 MB) and almost
 * everything a request allocates dies with the request, so V8's defaults
 * only hold garbage: semi-spaces growing to 16 MB, and an old generation let
 * to grow by 8 MB or up to 4x its live size between full collections. Under
 * load that took the core from ~10 MB to ~50 MB private dirty, which then
 * stayed. 1 MB semi-spaces keep the young generation small, and an old
 * generation that grows 1.1x between full collections keeps what many open
 * connections hold near its live size. Not --optimize-for-size: it also
 * moves every object that outlives one young collection to the old
 * generation, which under load filled it with requests already answered
 * (about 10 MB a second, a full collection every half second, the core
 * between 14 and 22 MB when a load stopped, against 14 MB without it).
 * --single-threaded: V8 compiles and collects on the core's own thread. Its
 * background threads each kept a malloc arena of their own, about 3 MB of
 * the core's private dirty memory after a load; on a busy machine that work
 * takes the same CPU wherever it runs.
 */
const CORE_NODE_FLAGS = ['--max-semi-space-size=1', '--heap-growing-percent=10', '--single-threaded'];
/** Short: requests wait in the socket's backlog meanwhile. */
const RESTART_DELAY_MS = 100;

export interface WatchdogReporter {
  /** The core listens: the server is up. */
  ready(server: string, inst: InstanceDir): void;
  /** The core could not start at all (e.g. the port is taken). */
  fatal(message: string): void;
}

export interface WatchdogRun {
  inst: InstanceDir;
  /** Resolves with the exit status once everything is stopped. */
  done: Promise<number>;
}

export function runWatchdog(o: Options, reporter: WatchdogReporter): WatchdogRun {
  let log: Logger;
  try {
    log = new Logger(o.logFile, o.logLevel, 'watchdog');
  } catch (e) {
    throw e instanceof UnsafeFileError ? new ConfigError(e.message, 'remove it, or choose another path with --log-file') : e;
  }
  const registry = serverRegistryDir(o);
  const serverUser = serverUserOf(o, registry);
  const inst = createInstanceDir(registry, (m) => log.warn(m), serverUser?.uid);
  fs.writeFileSync(inst.watchdogPidFile, `${process.pid}\n`);
  if (o.pidFile) {
    try {
      writeOwnFile(o.pidFile, `${process.pid}\n`);
    } catch (e) {
      inst.remove();
      throw e instanceof UnsafeFileError ? new ConfigError(e.message, 'remove it, or choose another path with --pid-file') : e;
    }
  }
  inst.writeProperties({
    software: SOFTWARE,
    version: VERSION,
    name: inst.name,
    instance_dir: inst.dir,
    created_at: new Date().toISOString(),
    watchdog_pid: process.pid,
    watchdog_start_ticks: startTicksOf(process.pid),
    mode: o.mode,
    server: o.socket ? `unix:${o.socket}` : `http://${o.address}:${o.port}`,
    app_root: o.mode === 'agent' ? null : o.appRoot,
    log_file: o.logFile ?? null,
    pid_file: o.pidFile ?? null,
  });

  let core: ChildProcess | null = null;
  let everReady = false;
  let stopping = false;
  let restartTimer: NodeJS.Timeout | null = null;
  /** When the stop began; forced: the stop killed the core itself (a second signal, or past its bound). */
  let stopStartedAt = 0;
  let forced = false;
  let resolveDone: (code: number) => void = () => undefined;
  const done = new Promise<number>((r) => { resolveDone = r; });

  const cleanup = (code: number): void => {
    if (restartTimer) clearTimeout(restartTimer);
    killLeftoverApps(inst, log, true);
    stopListening();
    if (o.socket) fs.rmSync(o.socket, { force: true });
    inst.remove();
    if (o.pidFile) {
      try {
        if (fs.readFileSync(o.pidFile, 'utf8').trim() === String(process.pid)) fs.rmSync(o.pidFile, { force: true });
      } catch { /* gone */ }
    }
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.removeListener(s, onSignal);
    process.removeListener('SIGUSR1', onReopen);
    resolveDone(code);
  };

  /**
   * The stop's end. A core that died without stopping its apps (it crashed
   * during the stop, or the stop came while it restarted) leaves them
   * running: each recorded group is sent SIGTERM, so the app's own shutdown
   * runs, and given shutdown_timeout within the stop's bound before cleanup
   * kills what is left.
   */
  const finishStop = (): void => {
    const left = forced ? [] : inst.processRecords().filter((r) => signalRecordedGroup(r, 'SIGTERM'));
    if (left.length === 0) {
      cleanup(0);
      return;
    }
    log.warn(`the agent core is gone and left ${left.length} app process(es) running: sent them SIGTERM`);
    const deadline = Math.min(Date.now() + o.shutdownTimeout * 1000, stopStartedAt + watchdogStopBoundMs(o.shutdownTimeout));
    const poll = setInterval(() => {
      if (!forced && Date.now() < deadline && left.some((r) => isAlive(r.pid, r.startTicks))) return;
      clearInterval(poll);
      cleanup(0);
    }, 50);
  };

  // The request socket is ours, held across core restarts: connections that
  // arrive while a core restarts wait in its backlog instead of being refused.
  let listenFd: number;
  try {
    listenFd = openListener(o, log);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = o.socket ? `unix:${o.socket}` : `${o.address}:${o.port}`;
    const msg = err.code === 'EADDRINUSE' ? `${where} is already in use by another program; choose another with ${o.socket ? '--socket' : '--port'}`
      : err.code === 'EACCES' ? `no permission to listen on ${where}` : `cannot listen on ${where}: ${err.message}`;
    log.crit(msg);
    reporter.fatal(msg);
    inst.remove();
    if (o.pidFile) fs.rmSync(o.pidFile, { force: true });
    resolveDone(1);
    return { inst, done };
  }
  if (serverUser) {
    // The socket is bound (a port below 1024 too): from here on we are the server's user.
    for (const f of [inst.dir, inst.appsDir, inst.processesDir, inst.propertiesFile, inst.watchdogPidFile, o.pidFile, o.logFile]) {
      if (f) handOver(f, serverUser);
    }
    if (o.socket) fs.lchownSync(o.socket, serverUser.uid, serverUser.gid);
    dropPrivileges(serverUser);
    log.notice(`running as user ${serverUser.name} (uid ${serverUser.uid}, gid ${serverUser.gid})`);
    // Root left the user's own stale entries alone (it trusts only its own): clean them as the user.
    cleanStale(registry, (m) => log.warn(m));
  }
  // Closed once, at the start of a stop: from then on new connections are
  // refused at once (once the core and any direct-mode app have closed their
  // copies too) instead of waiting in the backlog for a core that will never
  // accept them. A dead core alone keeps it open: its successor accepts.
  let listening = true;
  const stopListening = (): void => {
    if (!listening) return;
    listening = false;
    try { fs.closeSync(listenFd); } catch { /* closed */ }
  };
  /** fd 4 in the core: stdio 0-2, Node's IPC pipe at 3. */
  const CORE_LISTEN_FD = 4;

  const startCore = (): void => {
    const cfg: CoreConfig = { options: o, instanceDir: inst.dir, watchdogPid: process.pid, listenFd: CORE_LISTEN_FD };
    const child = spawn(process.execPath, [...CORE_NODE_FLAGS, CORE_MAIN], {
      env: { ...process.env, PASSENGER_CORE_CONFIG: JSON.stringify(cfg) },
      stdio: ['ignore', 'inherit', 'inherit', 'ipc', listenFd],
      // Its own process group: a terminal's Ctrl-C reaches the watchdog, which stops the core in order.
      detached: true,
    });
    core = child;
    let fatal: string | null = null;
    child.on('message', (m: CoreMessage) => {
      if (m.type === 'ready') {
        if (!everReady) reporter.ready(m.server, inst);
        else log.notice(`agent core restarted (pid ${child.pid})`);
        everReady = true;
      } else if (m.type === 'fatal') {
        fatal = m.message;
      }
    });
    child.on('exit', (code, signal) => {
      core = null;
      if (stopping) {
        finishStop();
        return;
      }
      if (!everReady) {
        reporter.fatal(fatal ?? `the agent core exited (${signal ?? `code ${code}`}) before it was ready; see the log`);
        cleanup(1);
        return;
      }
      log.error(`the agent core (pid ${child.pid}) died (${signal ? `signal ${signal}` : `exit code ${code}`}); restarting it`);
      // Node apps under the loader wait for the new core to adopt them; the others are stopped and spawned anew.
      killLeftoverApps(inst, log, false);
      restartTimer = setTimeout(() => { restartTimer = null; if (!stopping) startCore(); }, RESTART_DELAY_MS);
    });
  };

  function onSignal(sig: NodeJS.Signals): void {
    if (stopping) {
      // A second signal: stop now.
      forced = true;
      if (core?.pid) { try { process.kill(core.pid, 'SIGKILL'); } catch { /* gone */ } }
      return;
    }
    stopping = true;
    stopStartedAt = Date.now();
    log.notice(`received ${sig}: stopping`);
    stopListening();
    const c = core;
    if (!c) {
      // Between a core's death and the next one's start.
      if (restartTimer) clearTimeout(restartTimer);
      restartTimer = null;
      finishStop();
      return;
    }
    c.kill('SIGTERM');
    const boundMs = watchdogStopBoundMs(o.shutdownTimeout);
    const t = setTimeout(() => {
      log.warn(`the agent core did not stop within ${boundMs / 1000} s; killing it`);
      forced = true;
      c.kill('SIGKILL');
    }, boundMs);
    t.unref();
  }
  for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, onSignal);
  const onReopen = (): void => log.reopen();
  process.on('SIGUSR1', onReopen);

  startCore();
  return { inst, done };
}

/** Kills (by exact pid) app process groups the core recorded and left behind; adoptable ones only if `all`. */
function killLeftoverApps(inst: InstanceDir, log: Logger, all: boolean): void {
  for (const r of inst.processRecords()) {
    if (!isAlive(r.pid, r.startTicks) || (r.token !== undefined && r.starting !== true && !all)) continue;
    if (signalRecordedGroup(r, 'SIGKILL')) log.warn(`stopped app process ${r.pid} left behind by the agent core`);
    fs.rmSync(inst.processRecordFile(r.pid), { force: true });
  }
}

/** Binds and listens on the request socket without accepting; the core accepts. */
function openListener(o: Options, log: Logger): number {
  if (o.socket) {
    try { fs.unlinkSync(o.socket); } catch { /* none */ }
    const fd = listenUnix(o.socket, socketMode(o));
    secureSocket(o, log);
    return fd;
  }
  return listenTcp(o.address, o.port);
}

/** The request socket's mode: 0660 for `passenger agent` unless --socket-mode; null: as the umask has it. */
function socketMode(o: Options): number | null {
  return o.socketMode ? parseInt(o.socketMode, 8) : o.mode === 'agent' ? 0o660 : null;
}

/**
 * The request socket: reachable by its owner and group only (its mode is set
 * as it is bound, socketMode()), the group being the web server's
 * (--socket-group, else www-data when it exists). Root (who may chown) hands
 * it over; others keep their own user and group. Neither follows a link put
 * in the socket's place.
 */
function secureSocket(o: Options, log: Logger): void {
  const file = o.socket as string;
  const uid = o.socketOwner ? uidOf(o.socketOwner) : -1;
  const gid = o.socketGroup ? gidOf(o.socketGroup) : o.mode === 'agent' && process.getuid?.() === 0 ? gidOf('www-data') : null;
  try {
    if ((uid ?? -1) !== -1 || (gid ?? -1) !== -1) fs.lchownSync(file, uid ?? -1, gid ?? -1);
  } catch (e) {
    log.error(`cannot set the owner of ${file}: ${(e as Error).message}`);
  }
}

