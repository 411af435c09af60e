// The admin API, behind the admin socket: what passenger-status and
// passenger-config read and ask for. Plain node:http and a table of routes,
// so the agent core loads nothing more for it than these few modules.
import type * as http from 'node:http';
import * as path from 'node:path';
import type { AdminHandler } from './admin-socket';
import type { DetachProcessResult, ErrorBody, ReopenLogsResult, RequestSnapshot, RequestsDocument, RestartAppResult, StatusDocument } from './protocol';
import type { ErrorCode } from '../errors';
import { getPeerCredentials } from '../platform/native';
import type { InstanceDir } from '../instance/instance-dir';
import { isLiveStat, lifetimeCpuPercent, privateDirtyKB, readStat, uptimeTicksSync } from '../platform/procfs';
import type { Group } from '../pool/group';
import type { Pool } from '../pool/pool';
import type { AppProcess } from '../pool/process';
import { snapshotPool } from '../pool/snapshot';
import { groupEntry, userEntry } from '../platform/users';
import { VERSION } from '../version';

/** The pool snapshot with each process's CPU and memory read from /proc, and each group's user. */
export async function statusDocument(pool: Pool, inst: InstanceDir, server: string, watchdogPid: number): Promise<StatusDocument> {
  const snap = snapshotPool(pool);
  const nowTicks = uptimeTicksSync();
  await Promise.all(snap.groups.flatMap((g) => g.processes.map(async (p) => {
    const [st, pd] = await Promise.all([readStat(p.pid), privateDirtyKB(p.pid)]);
    if (isLiveStat(st)) {
      p.cpu_percent = lifetimeCpuPercent(st, nowTicks);
      p.rss_kb = st.rssKB;
      p.vmsize_kb = st.vsizeKB;
    }
    p.private_dirty_kb = pd;
  })));
  const me = { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0 };
  for (const g of snap.groups) {
    const ids = pool.groups.get(g.name)?.processes[0]?.handle.user ?? me;
    Object.assign(g, { uid: ids.uid, gid: ids.gid, user: userEntry(ids.uid)?.name ?? String(ids.uid), group: groupEntry(ids.gid)?.name ?? String(ids.gid) });
  }
  return {
    schema: 1,
    version: VERSION,
    time: new Date().toISOString(),
    instance: { name: inst.name, dir: inst.dir, watchdog_pid: watchdogPid, core_pid: process.pid, server },
    ...snap,
  };
}

export interface AdminContext {
  pool: Pool;
  inst: InstanceDir;
  server: string;
  watchdogPid: number;
  /** The requests in flight. */
  requests(): RequestSnapshot[];
  /** Reopens the log file (null: logging to a terminal) and the apps' log files. */
  reopenLogs(): { logFile: string | null; appLogFiles: string[] };
}

/** The uid a process runs as: the one the agent switched it to, else the agent's own. */
function uidOf(p: AppProcess, me: number): number {
  return p.handle.user?.uid ?? me;
}

/** A group belongs to a user when its processes run as that user (a group with none belongs to no one but root). */
function ownsGroup(g: Group, uid: number, me: number): boolean {
  return g.processes.some((p) => uidOf(p, me) === uid);
}

/** A refusal or failure a route answers with: its status and the error body. */
class AdminRefusal extends Error {
  constructor(readonly status: number, readonly code: ErrorCode, message: string) {
    super(message);
  }
}

function refuse(status: number, code: ErrorCode, message: string): never {
  throw new AdminRefusal(status, code, message);
}

/** One admin call: who asks (null: root or the agent's own user, who see and do everything) and the query. */
interface AdminCall {
  viewer: number | null;
  query: URLSearchParams;
}

type Route = (call: AdminCall) => object | Promise<object>;

function send(res: http.ServerResponse, status: number, body: object): void {
  const json = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(json) });
  res.end(json);
}

export async function createAdminApi(ctx: AdminContext): Promise<AdminHandler> {
  const { pool, inst, server, watchdogPid } = ctx;
  // Who asks, by the connection's peer credentials: root and the agent's own
  // user see and do everything; any other local user (a person, or an app
  // running as them) sees and restarts only the apps that run as them, as
  // Passenger's admin API allows. Unknown credentials get nothing. The
  // credentials are the connecting process's, so they are read once per connection.
  const me = process.getuid?.() ?? 0;
  const callers = new WeakMap<object, number | null>();
  const callerOf = (sock: object): number | null => {
    if (callers.has(sock)) return callers.get(sock) as number | null;
    const fd = (sock as { _handle?: { fd?: number } })._handle?.fd;
    let uid: number | null = null;
    try { uid = typeof fd === 'number' ? getPeerCredentials(fd).uid : null; } catch { uid = null; }
    callers.set(sock, uid);
    return uid;
  };
  const mayTouch = (call: AdminCall, g: Group): boolean => call.viewer === null || ownsGroup(g, call.viewer, me);
  const fullOnly = (call: AdminCall, what: string): void => {
    if (call.viewer !== null) refuse(403, 'E_ADMIN_DENIED', `${what} is for root and the agent's user (uid ${me}) only; you are uid ${call.viewer}`);
  };
  const ownGroups = (viewer: number): Set<string> => new Set([...pool.groups.values()].filter((g) => ownsGroup(g, viewer, me)).map((g) => g.name));

  const getPool: Route = async ({ viewer }): Promise<StatusDocument> => {
    const doc = await statusDocument(pool, inst, server, watchdogPid);
    if (viewer === null) return doc;
    // Another user's view: their own groups only, and the pool's totals as they are.
    const own = ownGroups(viewer);
    return { ...doc, groups: doc.groups.filter((g) => own.has(g.name)) };
  };

  const getRequests: Route = ({ viewer }): RequestsDocument => {
    const all = ctx.requests();
    const own = viewer === null ? null : ownGroups(viewer);
    return { schema: 1, time: new Date().toISOString(), requests: own === null ? all : all.filter((r) => own.has(r.group)) };
  };

  // Restarts app groups; answers when it is done. ?root=APP_ROOT (that app),
  // ?prefix=DIR (every app at or below DIR, as Passenger's restart-app takes a
  // path prefix) or ?name=GROUP; &rolling=1 for one process at a time.
  const restartApp: Route = async (call): Promise<RestartAppResult> => {
    const q = call.query;
    const name = q.get('name');
    const prefix = q.get('prefix');
    const root = q.get('root');
    const all = [...pool.groups.values()];
    let matched: Group[];
    let what: string;
    if (name !== null) {
      matched = all.filter((g) => g.name === name);
      what = `named ${name}`;
    } else if (prefix !== null) {
      const dir = path.resolve(prefix);
      matched = all.filter((g) => g.appRoot === dir || g.appRoot.startsWith(dir === '/' ? '/' : `${dir}/`));
      what = `at or below ${dir}`;
    } else {
      const g = root ? pool.groups.get(path.resolve(root)) : undefined;
      matched = g ? [g] : [];
      what = `for ${root || '(no root given)'}`;
    }
    const visible = all.filter((x) => mayTouch(call, x)).map((x) => x.name);
    const denied = matched.filter((g) => !mayTouch(call, g));
    if (denied.length > 0 && denied.length === matched.length) refuse(403, 'E_ADMIN_DENIED', `not allowed: the app ${denied[0].name} does not run as you (uid ${call.viewer})`);
    matched = matched.filter((g) => mayTouch(call, g));
    if (matched.length === 0) refuse(404, 'E_NO_GROUP', `no app group ${what}; groups: ${visible.join(', ') || 'none'}`);
    const rollingParam = q.get('rolling');
    const rolling = rollingParam === '1' || rollingParam === 'true';
    for (const g of matched) {
      try {
        await g.restart(rolling);
      } catch (e) {
        refuse(500, 'E_SPAWN', `the restart of ${g.name} stopped: ${(e as Error).message}`);
      }
    }
    const alive = (g: Group): number[] => g.processes.filter((p) => p.life === 'alive').map((p) => p.pid);
    return { restarted: matched.map((g) => g.name).join(', '), groups: matched.map((g) => ({ name: g.name, app_root: g.appRoot, pids: alive(g) })), rolling, pids: matched.flatMap(alive) };
  };

  const reopenLogs: Route = (call): ReopenLogsResult => {
    fullOnly(call, 'reopening the logs');
    const r = ctx.reopenLogs();
    return { log_file: r.logFile, app_log_files: r.appLogFiles };
  };

  // Takes one process out of its group (it finishes its requests first). ?pid=PID
  const detachProcess: Route = (call): DetachProcessResult => {
    const pid = Number(call.query.get('pid') ?? undefined);
    for (const g of pool.groups.values()) {
      const p = g.processes.find((x) => x.pid === pid);
      if (p) {
        if (!mayTouch(call, g)) refuse(403, 'E_ADMIN_DENIED', `not allowed: process ${pid} does not run as you (uid ${call.viewer})`);
        g.retire(p, 'detached');
        return { detached: pid, group: g.name };
      }
    }
    refuse(404, 'E_NO_PROCESS', `no app process with PID ${pid}`);
  };

  // HEAD takes a GET route (Node leaves the body out).
  const routes = new Map<string, Route>([
    ['GET /ping', () => ({ ok: true })],
    ['GET /pool.json', getPool],
    ['GET /requests.json', getRequests],
    ['POST /restart-app', restartApp],
    ['POST /reopen-logs', reopenLogs],
    ['POST /detach-process', detachProcess],
  ]);

  const handle = (req: http.IncomingMessage, res: http.ServerResponse): void => {
    const url = req.url ?? '/';
    const method = req.method === 'HEAD' ? 'GET' : req.method;
    const uid = callerOf(req.socket);
    if (uid === null) {
      send(res, 403, { code: 'E_ADMIN_DENIED', message: 'the admin API could not tell who you are' } satisfies ErrorBody);
      return;
    }
    const q = url.indexOf('?');
    const route = routes.get(`${method} ${q === -1 ? url : url.slice(0, q)}`);
    if (route === undefined) {
      send(res, 404, { code: 'E_ADMIN', message: `no admin endpoint ${req.method} ${url}` } satisfies ErrorBody);
      return;
    }
    const call: AdminCall = { viewer: uid === 0 || uid === me ? null : uid, query: new URLSearchParams(q === -1 ? '' : url.slice(q + 1)) };
    // A call takes no body: whatever is sent is read and dropped.
    req.resume();
    Promise.resolve().then(() => route(call)).then((body) => send(res, 200, body), (e: unknown) => {
      if (res.headersSent) {
        res.destroy();
        return;
      }
      if (e instanceof AdminRefusal) send(res, e.status, { code: e.code, message: e.message } satisfies ErrorBody);
      else send(res, 500, { code: 'E_ADMIN', message: `the admin API failed: ${(e as Error)?.message ?? String(e)}` } satisfies ErrorBody);
    });
  };
  return { handle, close: async () => undefined };
}
