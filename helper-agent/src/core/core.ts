// The agent core: the pool, the request server and the admin API. It runs
// under the watchdog, which restarts it if it dies; the watchdog hands it its
// settings in PASSENGER_CORE_CONFIG and hears "ready" over the IPC channel.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { STOP_DRAIN_MS, groupOptions, resolveOptions, type Options } from '../config';
import { InstanceDir, type ProcessRecord } from '../instance/instance-dir';
import { AdminSocket } from '../admin/admin-socket';
import { setCloexec } from '../platform/native';
import { AdoptedProcess } from '../spawn/adopted';
import type { GroupOptions } from '../config';
import { Logger } from '../log';
import { readStatSync } from '../platform/procfs';
import { Pool, type Spawner } from '../pool/pool';
import { closeTransport, openTransport } from '../router/transport';
import type { IncomingMessage } from 'node:http';
import { PassengerError } from '../errors';
import type { Group } from '../pool/group';
import { AppRootResolver, type WebSettings } from '../router/app-roots';
import { StaticFiles } from '../router/static-files';
import { Channel } from '../spawn/channel';
import { MemoryLimiter, RestartFileWatcher } from './housekeeping';
import { FrontendRegistry } from './frontends';
import { preStart } from './pre-start';
import { createRequestServer, type RequestServer } from './request-server';
import { AppSpawner, LOADER_PATH, type SpawnerConfig } from '../spawn/spawner';

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
  const cfg = JSON.parse(process.env.PASSENGER_CORE_CONFIG ?? 'null') as CoreConfig | null;
  if (!cfg) {
    process.stderr.write('the agent core is started by the watchdog (passenger start), not by hand\n');
    process.exit(2);
  }
  delete process.env.PASSENGER_CORE_CONFIG;
  // The tests' self-check: the pool's invariants after every change of a group. Not passed on to the apps.
  const selfCheck = process.env.PASSENGER_SELF_CHECK === '1';
  delete process.env.PASSENGER_SELF_CHECK;
  const o = cfg.options;
  const inst = new InstanceDir(cfg.instanceDir);
  const log = new Logger(o.logFile, o.logLevel, 'core');
  const server = serverAddress(o);
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

  // Set up first, so a stop that arrives while we start still stops the apps.
  let app: RequestServer | null = null;
  let admin: AdminSocket | null = null;
  let pool: Pool | null = null;
  let channel: Channel | null = null;
  let stopping = false;
  /**
   * A stop: no new connection is taken; requests in flight run for up to
   * STOP_DRAIN_MS, WebSockets are closed (abort_websockets_on_process_shutdown);
   * then every app is told to leave and gets shutdown_timeout to exit by
   * itself (its own shutdown ends what is still open), then KILL. What is still
   * open on the client side then has no process behind it and is closed.
   * It all ends within the watchdog's bound (see stopBoundMs), whatever the
   * apps do: past it, what is left is killed and the core exits all the same.
   */
  const shutdown = async (why: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log.notice(`shutting down (${why})`);
    const capMs = o.shutdownTimeout * 1000;
    const last = setTimeout(() => {
      log.warn('the apps did not stop in time: killing what is left');
      for (const g of pool?.groups.values() ?? []) for (const p of g.processes) { try { process.kill(-p.pid, 'SIGKILL'); } catch { /* gone */ } }
      try { fs.rmSync(inst.corePidFile, { force: true }); } catch { /* gone */ }
      process.exit(0);
    }, STOP_DRAIN_MS + capMs + 8000);
    last.unref();
    // In direct mode the apps accept, not us: our copy of the listening socket
    // goes now, so that new connections are refused once the watchdog's and the
    // apps' copies are closed too (the request server closes its own in close()).
    if (o.directMode && cfg.listenFd !== null) { try { fs.closeSync(cfg.listenFd); } catch { /* closed */ } }
    const closed = app?.close() ?? Promise.resolve();
    await pool?.close(STOP_DRAIN_MS, capMs);
    // Every process is gone: responses still being written get a moment to go out.
    await Promise.race([closed, new Promise((r) => setTimeout(r, 1000).unref())]);
    app?.destroy();
    await admin?.close().catch(() => undefined);
    channel?.close();
    try { fs.rmSync(inst.corePidFile, { force: true }); } catch { /* gone */ }
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
  // The watchdog is gone: nobody would restart or stop us; leave with our apps.
  process.on('disconnect', () => void shutdown('watchdog gone'));

  fs.writeFileSync(inst.corePidFile, `${process.pid}\n`);
  // The inherited listening socket must not leak into the apps we start.
  if (cfg.listenFd !== null) setCloexec(cfg.listenFd);
  channel = new Channel(inst.channelSocket, (m) => log.warn(m));
  await channel.listen();

  const appSpawner = new AppSpawner({ socketDir: inst.appsDir, channel, log, directListenFd: o.directMode ? cfg.listenFd : null, ...appUsers(o, inst, log) });
  // Behind a web server an app root may be a link (a deploy's `current`)
  // switched at any time: each spawn checks again where it leads.
  let resolver: AppRootResolver | null = null;
  const spawner: Spawner = o.mode !== 'agent' ? appSpawner : {
    spawn: async (options, id) => {
      if (resolver !== null && !resolver.allows(options.appRoot)) {
        throw new PassengerError('E_APP_ROOT_DENIED', `${options.appRoot} no longer leads to a directory under an --app-root-allow directory: not started`);
      }
      return appSpawner.spawn(options, id);
    },
    abortStarting: () => appSpawner.abortStarting(),
  };
  pool = new Pool({
    maxPoolSize: o.maxPoolSize,
    forgetIdleGroups: o.mode === 'agent',
    selfCheck,
    spawner,
    // A restart reads the app's settings again: behind a web server its
    // Passengerfile.json and the server's settings; standalone, the file and
    // the environment under the flags given at start.
    reloadOptions: o.mode === 'agent' ? (g) => (resolver as AppRootResolver).reloadOptions(g)
      : () => groupOptions(resolveOptions(o.given ?? {}, o.appRoot, o.appRoot, process.env, (m) => log.warn(m))),
    log: { info: (m) => log.notice(m), warn: (m) => log.warn(m), error: (m) => log.error(m) },
    events: {
      processAdded(p) {
        openTransport(p, o.forwarder);
        const rec: ProcessRecord = {
          pid: p.pid, startTicks: readStatSync(p.pid)?.startTicks ?? 0, group: p.group.name, id: p.id,
          spawnedAt: p.spawnedAt, endpoint: p.handle.endpoint,
          token: p.handle.channelToken, direct: p.handle.direct, uid: p.handle.user?.uid, gid: p.handle.user?.gid,
          web: resolver?.webSettingsOf(p.group.name),
        };
        fs.writeFile(path.join(inst.processesDir, String(p.pid)), JSON.stringify(rec), () => undefined);
      },
      processLeaving(p) {
        app?.processLeaving(p);
      },
      processRemoved(p) {
        closeTransport(p);
        fs.rm(path.join(inst.processesDir, String(p.pid)), { force: true }, () => undefined);
      },
    },
  });
  pool.startHousekeeping();
  let groupFor: (req: IncomingMessage) => Group | PassengerError;
  let frontends: FrontendRegistry | null = null;
  let staticFiles: StaticFiles | undefined;
  // App processes a previous core started, alive still: ours now.
  const records = inst.processRecords();
  if (o.mode === 'agent') {
    // Behind a web server: groups come and go with the requests' app roots.
    const r = new AppRootResolver(o, pool, log);
    resolver = r;
    adoptProcesses(pool, records, (root, web) => r.optionsFor(root, web), inst, channel, log);
    groupFor = (req) => r.groupFor(req);
    frontends = new FrontendRegistry(inst);
    if (o.appRootAllow.length === 0) log.warn('no --app-root-allow given: every request will be refused (403) until one is');
  } else {
    const options = groupOptions(o);
    adoptProcesses(pool, records, (root) => (root === o.appRoot ? options : null), inst, channel, log);
    const group = pool.group(options);
    groupFor = () => group;
    const pub = path.join(o.appRoot, 'public');
    if (fs.existsSync(pub)) {
      staticFiles = new StaticFiles(pub);
      await staticFiles.start(o.statThrottleRate);
    }
  }

  const fe = frontends;
  // Direct mode: the apps accept from the listening socket; the core never does.
  const forwarding: RequestServer = o.directMode
    ? { listen: async () => undefined, close: async () => undefined, destroy: () => undefined, processLeaving: () => undefined, requests: () => [], firstResponse: Promise.resolve() }
    : await createRequestServer(o, cfg.listenFd, { groupFor, log, staticFiles }, fe ? (sock) => fe.noteConnection(sock) : undefined);
  app = forwarding;
  try {
    await app.listen();
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const msg = err.code === 'EADDRINUSE' ? `${server} is already in use by another program; choose another with --port`
      : err.code === 'EACCES' ? `no permission to listen on ${server}` : `cannot listen on ${server}: ${err.message}`;
    log.crit(msg);
    tell({ type: 'fatal', message: msg });
    await pool.close();
    process.exit(3);
  }
  if (stopping) return;
  const live = pool;
  admin = await AdminSocket.bind(inst.adminSocket, async () => {
    const { createAdminApi } = await import('../admin/admin-api.js');
    return createAdminApi({ pool: live, inst, server, watchdogPid: cfg.watchdogPid, requests: () => forwarding.requests(),
      reopenLogs: () => {
        log.reopen();
        log.notice('reopened the log file');
        // The watchdog writes to the same file.
        try { process.kill(cfg.watchdogPid, 'SIGUSR1'); } catch { /* gone */ }
        return { logFile: o.logFile ?? null, appLogFiles: appSpawner.appLogs.reopen() };
      } });
  });
  new RestartFileWatcher(pool, log, o.statThrottleRate).start();
  new MemoryLimiter(pool, log).start();
  if (stopping) {
    await admin.close();
    return;
  }

  if (resolver !== null && o.preStart.length > 0) preStart(o.preStart, resolver, pool, { notice: (m) => log.notice(m), warn: (m) => log.warn(m) });
  log.notice(`serving ${o.mode === 'agent' ? `the apps under ${o.appRootAllow.join(', ') || '(no allowed root)'}` : o.appRoot} on ${server} (instance ${inst.name})`);
  tell({ type: 'ready', server });
}

/**
 * As root, apps run as their users (spawn/app-user.ts), never as root. They
 * preload the loader from a copy in the instance directory, which every user
 * can read wherever the agent is installed. Not root: apps run as we do.
 */
function appUsers(o: Options, inst: InstanceDir, log: Logger): Pick<SpawnerConfig, 'users' | 'loaderPath'> {
  if (process.getuid?.() !== 0) return { users: null };
  const loaderPath = path.join(inst.dir, 'node-loader.js');
  fs.rmSync(loaderPath, { force: true });
  fs.copyFileSync(LOADER_PATH, loaderPath, fs.constants.COPYFILE_EXCL);
  fs.chmodSync(loaderPath, 0o644);
  // App users reach the channel and their sockets through the registry directory.
  for (let d = path.dirname(inst.dir); d !== path.dirname(d); d = path.dirname(d)) {
    try {
      if ((fs.statSync(d).mode & 0o001) === 0) {
        log.warn(`${d} is not traversable by other users: apps running as other users cannot reach the instance directory ${inst.dir}; use another --instance-registry-dir`);
        break;
      }
    } catch { break; }
  }
  return { users: { switching: o.userSwitching, defaultUser: o.defaultUser, defaultGroup: o.defaultGroup }, loaderPath };
}

/**
 * Adopts the live app processes a crashed core left (Node apps under the
 * loader outlive it); records of dead or unadoptable ones are dropped.
 */
function adoptProcesses(pool: Pool, records: ProcessRecord[], optionsFor: (appRoot: string, web?: WebSettings) => GroupOptions | null, inst: InstanceDir, channel: Channel, log: Logger): void {
  for (const r of records) {
    const options = r.token !== undefined && AdoptedProcess.isLive(r) ? optionsFor(r.group, r.web) : null;
    if (options === null) {
      fs.rmSync(path.join(inst.processesDir, String(r.pid)), { force: true });
      continue;
    }
    pool.adopt(options, new AdoptedProcess(r, channel), r.id, r.spawnedAt);
  }
  if (records.length > 0) log.notice(`adopted ${pool.processCount()} live app process(es) from the previous agent core`);
}

if (require.main === module) void main();
