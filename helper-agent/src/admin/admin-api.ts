// The admin API, on a Unix socket in the instance directory (mode 0600):
// what passenger-status and passenger-config read and ask for.
import Fastify, { type FastifyInstance } from 'fastify';
import * as fs from 'node:fs';
import type { InstanceDir } from '../instance/instance-dir';
import { isLiveStat, lifetimeCpuPercent, privateDirtyKB, readStat, uptimeTicksSync } from '../platform/procfs';
import type { Pool } from '../pool/pool';
import { snapshotPool, type PoolSnapshot } from '../pool/snapshot';
import { VERSION } from '../version';

export interface StatusDocument extends PoolSnapshot {
  schema: 1;
  version: string;
  time: string;
  instance: { name: string; dir: string; watchdog_pid: number; core_pid: number; server: string };
}

/** The pool snapshot with each process's CPU and memory read from /proc. */
export async function statusDocument(pool: Pool, inst: InstanceDir, server: string, watchdogPid: number): Promise<StatusDocument> {
  const snap = snapshotPool(pool);
  const nowTicks = uptimeTicksSync();
  await Promise.all(snap.groups.flatMap((g) => g.processes.map(async (p) => {
    const [st, pd] = await Promise.all([readStat(p.pid), privateDirtyKB(p.pid)]);
    if (isLiveStat(st)) {
      p.cpu_percent = lifetimeCpuPercent(st, nowTicks);
      p.rss_kb = st.rssKB;
    }
    p.private_dirty_kb = pd;
  })));
  return {
    schema: 1,
    version: VERSION,
    time: new Date().toISOString(),
    instance: { name: inst.name, dir: inst.dir, watchdog_pid: watchdogPid, core_pid: process.pid, server },
    ...snap,
  };
}

export async function startAdminApi(pool: Pool, inst: InstanceDir, server: string, watchdogPid: number): Promise<FastifyInstance> {
  const app = Fastify({ logger: false });
  app.get('/ping', async () => ({ ok: true }));
  app.get('/pool.json', async () => statusDocument(pool, inst, server, watchdogPid));
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ code: 'E_ADMIN', message: `no admin endpoint ${req.method} ${req.url}` });
  });
  try { fs.unlinkSync(inst.adminSocket); } catch { /* none */ }
  // Created owner-only from the start: no window where others could connect.
  const oldMask = process.umask(0o177);
  try {
    await app.listen({ path: inst.adminSocket });
  } finally {
    process.umask(oldMask);
  }
  fs.chmodSync(inst.adminSocket, 0o600);
  return app;
}
