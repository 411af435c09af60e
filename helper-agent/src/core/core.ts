// The agent core: the pool, the request server and the admin API. It runs
// under the watchdog, which restarts it if it dies; the watchdog hands it its
// settings in PASSENGER_CORE_CONFIG and hears "ready" over Node's IPC pipe.
import * as fs from 'node:fs';
import type { Options } from '../config';
import { InstanceDir } from '../instance/instance-dir';
import { AdminSocket } from '../admin/admin-socket';
import { setCloexec } from '../platform/native';
import { CORE_SESSION_NICE, CORE_THREAD_NICE, setLoopThreadNice, setSessionNice } from '../platform/cpu-share';
import { Logger } from '../log';
import { LoaderChannel } from '../spawn/loader-channel';
import { createPool, serveApps, type CoreApps } from './core-apps';
import { CoreStop } from './core-stop';
import { MemoryLimiter, RestartFileWatcher } from './app-watchers';
import { preStart } from './pre-start';
import { bodyLimitOf } from '../proxy/body-limit';
import { createRequestServer, type RequestServer } from './request-server';

export interface CoreConfig {
  options: Options;
  instanceDir: string;
  watchdogPid: number;
  /** The listening socket the watchdog holds for us (an inherited fd), or null to listen ourselves. */
  listenFd: number | null;
}

export type CoreMessage = { type: 'ready'; server: string } | { type: 'fatal'; message: string };

function tell(msg: CoreMessage): void {
  if (process.send) process.send(msg);
}

export function serverAddress(o: Options): string {
  return o.socket ? `unix:${o.socket}` : `http://${o.address.includes(':') ? `[${o.address}]` : o.address}:${o.port}`;
}

async function main(): Promise<void> {
  const cfg = readConfig();
  // The tests' self-check: the pool's invariants after every change of a group. Not passed on to the apps.
  const selfCheck = process.env.PASSENGER_SELF_CHECK === '1';
  delete process.env.PASSENGER_SELF_CHECK;
  const o = cfg.options;
  const inst = new InstanceDir(cfg.instanceDir);
  const log = new Logger(o.logFile, o.logLevel, 'core');
  handleLogRotationAndCrashes(log);
  const unshared = setSessionNice();
  if (unshared !== null) log.debug(`the core's session keeps the default CPU share (nice ${CORE_SESSION_NICE} refused: ${unshared})`);
  const unweighed = setLoopThreadNice();
  if (unweighed !== null) log.debug(`the core's event loop thread keeps the default CPU share (nice ${CORE_THREAD_NICE} refused: ${unweighed})`);
  const stop = new CoreStop(o, inst, log, cfg.listenFd);
  stop.listen();

  fs.writeFileSync(inst.corePidFile, `${process.pid}\n`);
  // The inherited listening socket must not leak into the apps we start.
  if (cfg.listenFd !== null) setCloexec(cfg.listenFd);
  stop.channel = new LoaderChannel(inst.channelSocket, (m) => log.warn(m));
  await stop.channel.listen();

  const parts = createPool(o, inst, stop.channel, log, selfCheck, {
    processLeaving: (p) => stop.server?.processLeaving(p),
  }, cfg.listenFd);
  stop.pool = parts.pool;
  parts.pool.startIdleSweep();
  const apps = await serveApps(o, parts, inst, stop.channel, log);

  stop.server = await requestServer(o, cfg, apps, log);
  await listenOrExit(stop.server, apps, o, log);
  if (stop.stopping) return;
  stop.admin = await openAdmin(cfg, inst, apps, stop.server, log);
  new RestartFileWatcher(apps.pool, log, o.statThrottleRate).start();
  new MemoryLimiter(apps.pool).start();
  if (stop.stopping) {
    await stop.admin.close();
    return;
  }

  if (apps.resolver !== null && o.preStart.length > 0) preStart(o.preStart, apps.resolver, apps.pool, { notice: (m) => log.notice(m), warn: (m) => log.warn(m) });
  log.notice(`serving ${o.mode === 'agent' ? `the apps under ${o.appRootAllow.join(', ') || '(no allowed root)'}` : o.appRoot} on ${serverAddress(o)} (instance ${inst.name})`);
  tell({ type: 'ready', server: serverAddress(o) });
}

function readConfig(): CoreConfig {
  const cfg = JSON.parse(process.env.PASSENGER_CORE_CONFIG ?? 'null') as CoreConfig | null;
  if (!cfg) {
    process.stderr.write('the agent core is started by the watchdog (passenger start), not by hand\n');
    process.exit(2);
  }
  delete process.env.PASSENGER_CORE_CONFIG;
  return cfg;
}

function handleLogRotationAndCrashes(log: Logger): void {
  // Log rotation sends SIGUSR1: reopen the log by name. Left unhandled, it
  // would open Node's inspector on 127.0.0.1:9229 instead.
  process.on('SIGUSR1', () => {
    try {
      log.reopen();
      log.notice('reopened the log file');
    } catch (e) {
      log.error(`cannot reopen the log file: ${(e as Error).message}`);
    }
  });
  process.on('uncaughtException', (e) => {
    log.crit(`uncaught exception in the agent core: ${e.stack ?? e}`);
    process.exit(1);
  });
}

/** The server requests arrive on; in direct mode the apps accept from the listening socket and the core never does. */
async function requestServer(o: Options, cfg: CoreConfig, apps: CoreApps, log: Logger): Promise<RequestServer> {
  if (o.directMode) {
    return { listen: async () => undefined, close: async () => undefined, destroy: () => undefined, processLeaving: () => undefined, requests: () => [] };
  }
  const fe = apps.frontends;
  // The web server's body limit is taken where its app headers are: behind it (there is a resolver), never standalone.
  const ctx = { groupFor: apps.groupFor, bodyLimitOf: apps.resolver !== null ? bodyLimitOf : undefined, log, staticFiles: apps.staticFiles };
  return createRequestServer(o, cfg.listenFd, ctx, fe ? (fd) => fe.noteConnection(fd) : undefined);
}

/** Listens, or says why it cannot (to the log and the watchdog) and exits with the apps stopped. */
async function listenOrExit(server: RequestServer, apps: CoreApps, o: Options, log: Logger): Promise<void> {
  try {
    await server.listen();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const where = serverAddress(o);
    const msg = err.code === 'EADDRINUSE' ? `${where} is already in use by another program; choose another with --port`
      : err.code === 'EACCES' ? `no permission to listen on ${where}` : `cannot listen on ${where}: ${err.message}`;
    log.crit(msg);
    tell({ type: 'fatal', message: msg });
    await apps.pool.close();
    process.exit(3);
  }
}

/** The admin socket answers at once; the admin API behind it loads on the first admin request. */
async function openAdmin(cfg: CoreConfig, inst: InstanceDir, apps: CoreApps, server: RequestServer, log: Logger): Promise<AdminSocket> {
  const o = cfg.options;
  const admin = await AdminSocket.bind(inst.adminSocket, async () => {
    const { createAdminApi } = await import('../admin/admin-api.js');
    return createAdminApi({ pool: apps.pool, inst, server: serverAddress(o), watchdogPid: cfg.watchdogPid, requests: () => server.requests(),
      reopenLogs: () => {
        log.reopen();
        log.notice('reopened the log file');
        // The watchdog writes to the same file.
        try { process.kill(cfg.watchdogPid, 'SIGUSR1'); } catch { /* gone */ }
        return { logFile: o.logFile ?? null, appLogFiles: apps.appSpawner.appLogs.reopen() };
      } });
  });
  return admin;
}

if (require.main === module) void main();
