// One app process as the pool sees it: counters, state, and the handle that
// can stop it. Nothing here knows HTTP; the proxy hangs its transport on it.
import type { Group } from './group';

/**
 * A process's life, changed only by its group (leaving.ts):
 * alive: it serves (unless it waits for a replacement without serving);
 * draining: it takes nothing new while its requests and WebSockets run out,
 *   for a bounded time (its drain timer);
 * stopping: it was told to leave, and its exit is awaited (KILL after shutdown_timeout);
 * dead: it exited (and is no longer listed).
 */
export type Life = 'alive' | 'draining' | 'stopping' | 'dead';

/** Why a process is replaced or leaves: the log and passenger-status name it. */
export type LeaveReason =
  | 'max_requests' | 'memory_limit' | 'max_request_time' | 'always_restart' | 'restart' | 'rolling_restart'
  | 'idle' | 'detached' | 'unreachable' | 'evicted' | 'stop';

/** An alive process waiting for its replacement to come up. */
export interface Replacement {
  readonly reason: LeaveReason;
  /** It takes requests meanwhile (memory_limit, ...); not after max_requests, or while a rolling restart waits. */
  serving: boolean;
}

/** What the spawner hands the pool for a process that is up and listening. */
export interface ProcessHandle {
  readonly pid: number;
  /** Where the app listens: a Unix socket path, or a TCP port on 127.0.0.1. */
  readonly endpoint: { socketPath: string } | { host: string; port: number };
  /** Called once, when the process has exited. */
  onExit(cb: (code: number | null, signal: string | null) => void): void;
  /**
   * Tells it to leave, and KILL to its process group after `timeoutMs`;
   * resolves when it is gone. `drainMs`: in direct mode, how long its own
   * requests in flight may run (else half of `timeoutMs`).
   */
  stop(timeoutMs: number, drainMs?: number): Promise<void>;
  /** Direct mode: counters the process reports about the requests it accepted itself. */
  onReport?(cb: (r: ProcessReport) => void): void;
  /**
   * Its loader's channel token. Only Node apps under the loader have one: they
   * survive a crash of the agent core, and the next core adopts them and hears
   * them by it.
   */
  readonly channelToken?: string;
  /** Direct mode: it accepts client connections itself and drains them when it leaves. */
  readonly direct?: boolean;
  /** The user and group it runs as, when the agent (as root) switched to them; kept in its record across core restarts. */
  readonly user?: { uid: number; gid: number };
  /** Node apps: the version of Node the process reported (not known for adopted processes). */
  readonly nodeVersion?: string;
}

/** What a process in direct mode reports (batched, about once a second). */
export interface ProcessReport {
  sessions: number;
  processed: number;
  /** ms since the epoch */
  lastUsed: number;
}

export class AppProcess {
  /** HTTP requests in flight: what routing, max concurrency and scale_at_sessions go by. */
  sessions = 0;
  /**
   * Open WebSockets (upgraded connections). Counted apart from sessions: an
   * idle socket costs the app next to nothing, so it neither keeps a process
   * from taking requests nor makes the group spawn.
   */
  websockets = 0;
  processed = 0;
  lastUsed: number;
  life: Life = 'alive';
  /** Set while it is alive and waits for a replacement. */
  replacement: Replacement | null = null;
  /** Why it leaves, once it does (draining or stopping). */
  leaveReason: LeaveReason | null = null;
  /** While draining: tells it to leave when its drain time is up. */
  drainTimer: NodeJS.Timeout | null = null;
  /** The proxy's connection pool to this process; opaque to the pool. */
  transport: unknown = null;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  resolveExited: () => void = () => undefined;

  constructor(
    readonly id: number,
    readonly group: Group,
    readonly handle: ProcessHandle,
    readonly spawnedAt: number,
  ) {
    this.lastUsed = spawnedAt;
    this.exited = new Promise((resolve) => { this.resolveExited = resolve; });
  }

  get pid(): number {
    return this.handle.pid;
  }

  /** Takes new requests: alive, and not held back while its replacement starts. */
  get enabled(): boolean {
    return this.life === 'alive' && (this.replacement === null || this.replacement.serving);
  }

  /** Can take another session now (maxConcurrency 0 = unlimited). */
  hasCapacity(maxConcurrency: number): boolean {
    return this.enabled && (maxConcurrency === 0 || this.sessions < maxConcurrency);
  }
}
