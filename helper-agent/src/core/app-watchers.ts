// Periodic checks that drive the pool from outside: tmp/restart.txt and
// tmp/always_restart.txt in each app root, and memory_limit. All file and
// /proc reads are asynchronous and off the request path.
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Logger } from '../log';
import { privateDirtyKB } from '../platform/procfs';
import type { Group } from '../pool/group';
import type { Pool } from '../pool/pool';

async function mtimeOf(file: string): Promise<number | null> {
  try {
    return (await fs.promises.stat(file)).mtimeMs;
  } catch {
    return null;
  }
}

/**
 * Restarts a group when its tmp/restart.txt is touched (its mtime changes),
 * checking at most every stat_throttle_rate seconds; notes whether
 * tmp/always_restart.txt exists (then every request gets a fresh process).
 */
export class RestartFileWatcher {
  private readonly seen = new Map<Group, number>();
  private readonly startedAt = Date.now();
  private timer: NodeJS.Timeout | null = null;
  private checking = false;

  /** `rateSeconds`: the agent's stat_throttle_rate (groups created later check at this pace too). */
  constructor(private readonly pool: Pool, private readonly log: Logger, private readonly rateSeconds: number) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), Math.max(1, this.rateSeconds) * 1000);
    this.timer.unref();
    void this.check();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async check(): Promise<void> {
    if (this.checking) return;
    this.checking = true;
    try {
      for (const g of this.pool.groups.values()) {
        const tmp = path.join(g.appRoot, 'tmp');
        const [mtime, always] = await Promise.all([mtimeOf(path.join(tmp, 'restart.txt')), mtimeOf(path.join(tmp, 'always_restart.txt'))]);
        g.alwaysRestart = always !== null;
        // A touch before we started is no request to restart; any later change is.
        if (mtime !== null && mtime > (this.seen.get(g) ?? this.startedAt)) {
          this.seen.set(g, mtime);
          this.log.notice(`${path.join(tmp, 'restart.txt')} was touched: restarting ${g.name}`);
          g.restart(false).catch((e: Error) => this.log.error(`restarting ${g.name}: ${e.message}`));
        }
      }
    } finally {
      this.checking = false;
    }
  }
}

/** Replaces processes whose private dirty memory passes their group's memory_limit (MB); the pool logs why. */
export class MemoryLimiter {
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly pool: Pool, private readonly intervalMs = 5000) {}

  start(): void {
    this.timer = setInterval(() => void this.check(), this.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }

  async check(): Promise<void> {
    for (const g of this.pool.groups.values()) {
      const limitMB = g.options.memoryLimit;
      if (limitMB <= 0) continue;
      for (const p of [...g.processes]) {
        if (p.life !== 'alive' || p.replacement !== null) continue;
        const kb = await privateDirtyKB(p.pid);
        if (kb !== null && kb > limitMB * 1024) g.retire(p, 'memory_limit', `uses ${Math.round(kb / 1024)} MB (memory_limit ${limitMB} MB)`);
      }
    }
  }
}
