// The admin API, behind the admin socket: what passenger-status and
// passenger-config read and ask for.
import Fastify, { type FastifyReply } from 'fastify';
import * as http from 'node:http';
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

function fail(reply: FastifyReply, status: number, code: ErrorCode, message: string): FastifyReply {
  const body: ErrorBody = { code, message };
  return reply.code(status).send(body);
}

export async function createAdminApi(ctx: AdminContext): Promise<AdminHandler> {
  const { pool, inst, server, watchdogPid } = ctx;
  // The admin socket's server hands requests over; fastify never listens.
  let route: http.RequestListener = () => undefined;
  const app = Fastify({ logger: false, serverFactory: (handler) => { route = handler; return http.createServer(); } });
  // Who asks, by the connection's peer credentials: root and the agent's own
  // user see and do everything; any other local user (a person, or an app
  // running as them) sees and restarts only the apps that run as them, as
  // Passenger's admin API allows. Unknown credentials get nothing.
  const me = process.getuid?.() ?? 0;
  const viewers = new WeakMap<object, number | null>();
  const viewerOf = (req: { raw: object }): number | null => viewers.get(req.raw) ?? null;
  app.addHook('onRequest', async (req, reply) => {
    const fd = (req.raw.socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
    let uid: number | null = null;
    try { uid = typeof fd === 'number' ? getPeerCredentials(fd).uid : null; } catch { uid = null; }
    if (uid === null) return fail(reply, 403, 'E_ADMIN_DENIED', 'the admin API could not tell who you are');
    // null: sees everything.
    viewers.set(req.raw, uid === 0 || uid === me ? null : uid);
    return undefined;
  });
  const mayTouch = (req: { raw: object }, g: Group): boolean => {
    const v = viewerOf(req);
    return v === null || ownsGroup(g, v, me);
  };
  const fullOnly = (req: { raw: object }, reply: FastifyReply, what: string): FastifyReply | null => {
    const v = viewerOf(req);
    return v === null ? null : fail(reply, 403, 'E_ADMIN_DENIED', `${what} is for root and the agent's user (uid ${me}) only; you are uid ${v}`);
  };
  app.get('/ping', async () => ({ ok: true }));
  app.get('/pool.json', async (req): Promise<StatusDocument> => {
    const doc = await statusDocument(pool, inst, server, watchdogPid);
    const v = viewerOf(req);
    if (v === null) return doc;
    // Another user's view: their own groups only, and the pool's totals as they are.
    const own = new Set([...pool.groups.values()].filter((g) => ownsGroup(g, v, me)).map((g) => g.name));
    return { ...doc, groups: doc.groups.filter((g) => own.has(g.name)) };
  });
  app.get('/requests.json', async (req): Promise<RequestsDocument> => {
    const v = viewerOf(req);
    const all = ctx.requests();
    const own = v === null ? null : new Set([...pool.groups.values()].filter((g) => ownsGroup(g, v, me)).map((g) => g.name));
    return { schema: 1, time: new Date().toISOString(), requests: own === null ? all : all.filter((r) => own.has(r.group)) };
  });

  // Restarts app groups; answers when it is done. ?root=APP_ROOT (that app),
  // ?prefix=DIR (every app at or below DIR, as Passenger's restart-app takes a
  // path prefix) or ?name=GROUP; &rolling=1 for one process at a time.
  app.post('/restart-app', async (req, reply) => {
    const q = req.query as { root?: string; prefix?: string; name?: string; rolling?: string };
    const all = [...pool.groups.values()];
    let matched: Group[];
    let what: string;
    if (q.name !== undefined) {
      matched = all.filter((g) => g.name === q.name);
      what = `named ${q.name}`;
    } else if (q.prefix !== undefined) {
      const dir = path.resolve(q.prefix);
      matched = all.filter((g) => g.appRoot === dir || g.appRoot.startsWith(dir === '/' ? '/' : `${dir}/`));
      what = `at or below ${dir}`;
    } else {
      const g = q.root ? pool.groups.get(path.resolve(q.root)) : undefined;
      matched = g ? [g] : [];
      what = `for ${q.root ?? '(no root given)'}`;
    }
    const visible = all.filter((x) => mayTouch(req, x)).map((x) => x.name);
    const denied = matched.filter((g) => !mayTouch(req, g));
    if (denied.length > 0 && denied.length === matched.length) return fail(reply, 403, 'E_ADMIN_DENIED', `not allowed: the app ${denied[0].name} does not run as you (uid ${viewerOf(req)})`);
    matched = matched.filter((g) => mayTouch(req, g));
    if (matched.length === 0) return fail(reply, 404, 'E_NO_GROUP', `no app group ${what}; groups: ${visible.join(', ') || 'none'}`);
    const rolling = q.rolling === '1' || q.rolling === 'true';
    for (const g of matched) {
      try {
        await g.restart(rolling);
      } catch (e) {
        return fail(reply, 500, 'E_SPAWN', `the restart of ${g.name} stopped: ${(e as Error).message}`);
      }
    }
    const alive = (g: Group): number[] => g.processes.filter((p) => p.life === 'alive').map((p) => p.pid);
    const done: RestartAppResult = { restarted: matched.map((g) => g.name).join(', '), groups: matched.map((g) => ({ name: g.name, app_root: g.appRoot, pids: alive(g) })), rolling, pids: matched.flatMap(alive) };
    return done;
  });

  app.post('/reopen-logs', async (req, reply) => {
    const denied = fullOnly(req, reply, 'reopening the logs');
    if (denied) return denied;
    const r = ctx.reopenLogs();
    const done: ReopenLogsResult = { log_file: r.logFile, app_log_files: r.appLogFiles };
    return done;
  });

  // Takes one process out of its group (it finishes its requests first). ?pid=PID
  app.post('/detach-process', async (req, reply) => {
    const pid = Number((req.query as { pid?: string }).pid);
    for (const g of pool.groups.values()) {
      const p = g.processes.find((x) => x.pid === pid);
      if (p) {
        if (!mayTouch(req, g)) return fail(reply, 403, 'E_ADMIN_DENIED', `not allowed: process ${pid} does not run as you (uid ${viewerOf(req)})`);
        g.retire(p, 'detached');
        const done: DetachProcessResult = { detached: pid, group: g.name };
        return done;
      }
    }
    return fail(reply, 404, 'E_NO_PROCESS', `no app process with PID ${pid}`);
  });
  app.setNotFoundHandler((req, reply) => {
    const body: ErrorBody = { code: 'E_ADMIN', message: `no admin endpoint ${req.method} ${req.url}` };
    void reply.code(404).send(body);
  });
  await app.ready();
  return { handle: (req, res) => route(req, res), close: () => app.close() };
}
