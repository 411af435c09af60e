// The agent core's apps: who they run as, the spawner, the pool and what it
// tells the rest of the core, the processes a previous core left, and how a
// request finds its group (one app standalone; any allowed root behind a web
// server).
import * as fs from 'node:fs';
import type { RequestHead } from '../proxy/headers';
import * as path from 'node:path';
import { groupOptions, resolveOptions, type GroupOptions, type Options } from '../config';
import { PassengerError } from '../errors';
import type { InstanceDir, ProcessRecord } from '../instance/instance-dir';
import type { Logger } from '../log';
import { readStatSync } from '../platform/procfs';
import type { Group } from '../pool/group';
import type { AppProcess } from '../pool/process';
import { Pool, type Spawner } from '../pool/pool';
import { AppRootResolver, type WebSettings } from '../proxy/app-roots';
import { StaticFiles } from '../proxy/static-files';
import { closeTransport, openTransport } from '../proxy/transport';
import { AppHandle } from '../spawn/app-handle';
import type { LoaderChannel } from '../spawn/loader-channel';
import { AppSpawner, LOADER_PATH, type SpawnerConfig, type StartingHooks } from '../spawn/spawner';
import { FrontendRegistry } from './frontends';

export interface CoreApps {
  pool: Pool;
  appSpawner: AppSpawner;
  /** Behind a web server: the allowed app roots and each root's settings. */
  resolver: AppRootResolver | null;
  groupFor: (req: RequestHead) => Group | PassengerError;
  frontends: FrontendRegistry | null;
  staticFiles: StaticFiles | undefined;
}

/** What the pool's events reach in the rest of the core, once it is up. */
export interface PoolHooks {
  processLeaving(p: AppProcess): void;
}

/**
 * The spawner and the pool. Behind a web server an app root may be a link (a
 * deploy's `current`) switched at any time: each spawn checks again where it leads.
 */
export function createPool(o: Options, inst: InstanceDir, channel: LoaderChannel, log: Logger, selfCheck: boolean, hooks: PoolHooks, listenFd: number | null): Omit<CoreApps, 'groupFor' | 'frontends' | 'staticFiles'> {
  // A process's record changes with its events, each written as it comes
  // (so in their order; a few small files per process, never per request).
  // Each version is written beside the record and renamed over it: a core
  // killed meanwhile leaves one whole record or the other.
  const writeRecord = (rec: ProcessRecord): void => {
    const file = inst.processRecordFile(rec.pid);
    try {
      fs.writeFileSync(`${file}.new`, JSON.stringify(rec));
      fs.renameSync(`${file}.new`, file);
    } catch (e) { log.warn(`could not record app process ${rec.pid}: ${(e as Error).message}`); }
  };
  const removeRecord = (pid: number): void => {
    try {
      fs.rmSync(inst.processRecordFile(pid), { force: true });
    } catch (e) { log.warn(`could not remove the record of app process ${pid}: ${(e as Error).message}`); }
  };
  // Written at once (the full record, written when the process is ready, comes later and replaces it).
  const starting: StartingHooks = {
    began(pid, group, id, endpoint) {
      writeRecord({ pid, startTicks: readStatSync(pid)?.startTicks ?? 0, group, id, spawnedAt: Date.now(), endpoint, starting: true });
    },
    failed: removeRecord,
  };
  const recordFor = (p: AppProcess): ProcessRecord => ({
    pid: p.pid, startTicks: readStatSync(p.pid)?.startTicks ?? 0, group: p.group.name, id: p.id,
    spawnedAt: p.spawnedAt, endpoint: p.handle.endpoint,
    token: p.handle.channelToken, direct: p.handle.direct, uid: p.handle.user?.uid, gid: p.handle.user?.gid,
    web: parts.resolver?.webSettingsOf(p.group.name),
  });
  const appSpawner = new AppSpawner({ socketDir: inst.appsDir, channel, log, directListenFd: o.directMode ? listenFd : null, starting, ...appUsers(o, inst, log) });
  const parts: { resolver: AppRootResolver | null } = { resolver: null };
  const spawner: Spawner = o.mode !== 'agent' ? appSpawner : {
    spawn: async (options, id) => {
      if (parts.resolver !== null && !parts.resolver.allows(options.appRoot)) {
        throw new PassengerError('E_APP_ROOT_DENIED', `${options.appRoot} no longer leads to a directory under an --app-root-allow directory: not started`);
      }
      return appSpawner.spawn(options, id);
    },
    abortStarting: () => appSpawner.abortStarting(),
  };
  const pool = new Pool({
    maxPoolSize: o.maxPoolSize,
    forgetIdleGroups: o.mode === 'agent',
    selfCheck,
    spawner,
    // A restart reads the app's settings again: behind a web server its
    // Passengerfile.json and the server's settings; standalone, the file and
    // the environment under the flags given at start.
    reloadOptions: o.mode === 'agent' ? (g) => (parts.resolver as AppRootResolver).reloadOptions(g)
      : () => groupOptions(resolveOptions(o.given ?? {}, o.appRoot, o.appRoot, process.env, (m) => log.warn(m))),
    log: { info: (m) => log.notice(m), warn: (m) => log.warn(m), error: (m) => log.error(m) },
    events: {
      processAdded(p) {
        openTransport(p, o.forwarder);
        // Replaces the starting record before the process takes its first
        // request: a core killed after that must find it live, to adopt, not
        // starting, to stop.
        writeRecord(recordFor(p));
      },
      processLeaving(p) {
        // A new core sends it on its way again instead of taking it for a live one.
        writeRecord({ ...recordFor(p), leaving: p.leaveReason ?? 'stop' });
        hooks.processLeaving(p);
      },
      processRemoved(p) {
        closeTransport(p);
        removeRecord(p.pid);
      },
    },
  });
  if (o.mode === 'agent') parts.resolver = new AppRootResolver(o, pool, log);
  return { pool, appSpawner, resolver: parts.resolver };
}

/**
 * The groups: the live app processes a previous core started are adopted
 * first (they count toward min_instances); then, standalone, the one app
 * starts, with its public/ files served; behind a web server, groups come
 * and go with the requests' app roots.
 */
export async function serveApps(o: Options, parts: Omit<CoreApps, 'groupFor' | 'frontends' | 'staticFiles'>, inst: InstanceDir, channel: LoaderChannel, log: Logger): Promise<CoreApps> {
  const { pool, resolver } = parts;
  const records = inst.processRecords();
  if (resolver !== null) {
    adoptProcesses(pool, records, (root, web) => resolver.optionsFor(root, web), inst, channel, log);
    if (o.appRootAllow.length === 0) log.warn('no --app-root-allow given: every request will be refused (403) until one is');
    return { ...parts, groupFor: (req) => resolver.groupFor(req), frontends: new FrontendRegistry(inst), staticFiles: undefined };
  }
  const options = groupOptions(o);
  adoptProcesses(pool, records, (root) => (root === o.appRoot ? options : null), inst, channel, log);
  const group = pool.group(options);
  let staticFiles: StaticFiles | undefined;
  const pub = path.join(o.appRoot, 'public');
  if (fs.existsSync(pub)) {
    staticFiles = new StaticFiles(pub);
    await staticFiles.start(o.statThrottleRate);
  }
  return { ...parts, groupFor: () => group, frontends: null, staticFiles };
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
function adoptProcesses(pool: Pool, records: ProcessRecord[], optionsFor: (appRoot: string, web?: WebSettings) => GroupOptions | null, inst: InstanceDir, channel: LoaderChannel, log: Logger): void {
  const adopted = new Set<Group>();
  // Live ones first: a group whose leaving process is adopted already counts them, and spawns no more than it lacks.
  const inTurn = [...records].sort((a, b) => Number(a.leaving !== undefined) - Number(b.leaving !== undefined));
  for (const r of inTurn) {
    const options = r.token !== undefined && r.starting !== true && AppHandle.isLive(r) ? optionsFor(r.group, r.web) : null;
    if (options === null) {
      fs.rmSync(inst.processRecordFile(r.pid), { force: true });
      continue;
    }
    adopted.add(pool.adopt(options, AppHandle.adopt(r, channel, (m) => log.warn(m)), r.id, r.spawnedAt, r.leaving).group);
  }
  if (records.length > 0) log.notice(`adopted ${pool.processCount()} live app process(es) from the previous agent core`);
  // A process that died while no core watched leaves its group short of min_instances.
  for (const g of adopted) pool.spawnIfNeeded(g);
}
