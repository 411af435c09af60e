// Plain-data pictures of the pool for passenger-status and the admin API.
// The JSON schema is documented in README.md ("passenger-status --show=json").
import type { Pool } from './pool';

export interface ProcessSnapshot {
  pid: number;
  /** lifetime: alive, shutting_down */
  state: 'alive' | 'shutting_down';
  /** Why it is being replaced (while alive) or leaves (shutting down): max_requests, memory_limit, restart, idle, ...; null otherwise */
  leave_reason: string | null;
  /** HTTP requests in flight */
  sessions: number;
  /** open WebSockets (not counted in sessions) */
  websockets: number;
  processed: number;
  /** ms since the epoch */
  spawned_at: number;
  uptime_s: number;
  /** ms since the epoch */
  last_used: number;
  /** filled in by the agent from /proc; null when it could not be read */
  cpu_percent: number | null;
  private_dirty_kb: number | null;
  rss_kb: number | null;
  vmsize_kb?: number | null;
}

export interface GroupSnapshot {
  name: string;
  app_root: string;
  environment: string;
  queue: number;
  spawning: number;
  processes: ProcessSnapshot[];
  last_spawn_error: string | null;
  /** A restart of the group is under way */
  restarting: boolean;
  /** "node" (under the loader) or "generic" (app_start_command) */
  app_type: 'node' | 'generic';
  /** filled in by the agent: who the group's processes run as */
  user?: string;
  uid?: number;
  group?: string;
  gid?: number;
  /** Node apps: the interpreter and its version (`process.version`), once a process has reported it */
  nodejs?: string;
  node_version?: string | null;
}

export interface PoolSnapshot {
  max_pool_size: number;
  process_count: number;
  capacity_used: number;
  top_level_queue: number;
  groups: GroupSnapshot[];
}

export function snapshotPool(pool: Pool): PoolSnapshot {
  const now = pool.now();
  const groups: GroupSnapshot[] = [];
  for (const g of pool.groups.values()) {
    groups.push({
      name: g.name,
      app_root: g.appRoot,
      environment: g.options.environment,
      queue: g.queue.length,
      spawning: g.spawning,
      last_spawn_error: g.lastSpawnError ? g.lastSpawnError.message : null,
      restarting: g.isRestarting,
      app_type: g.options.appStartCommand ? 'generic' : 'node',
      ...(g.options.appStartCommand ? {} : {
        nodejs: g.options.nodejs ?? 'node',
        node_version: g.processes.find((p) => p.handle.nodeVersion)?.handle.nodeVersion ?? null,
      }),
      processes: g.processes.map((p) => ({
        pid: p.pid,
        state: p.life === 'alive' ? 'alive' : 'shutting_down',
        leave_reason: p.replacement?.reason ?? p.leaveReason,
        sessions: p.sessions,
        websockets: p.websockets,
        processed: p.processed,
        spawned_at: p.spawnedAt,
        uptime_s: Math.floor((now - p.spawnedAt) / 1000),
        last_used: p.lastUsed,
        cpu_percent: null,
        private_dirty_kb: null,
        rss_kb: null,
        vmsize_kb: null,
      })),
    });
  }
  return {
    max_pool_size: pool.maxPoolSize,
    process_count: pool.processCount(),
    capacity_used: pool.capacityUsed(),
    top_level_queue: 0,
    groups,
  };
}
