// The admin protocol: what the admin API answers, as plain data. The agent
// builds these documents and the tools read them; this module imports no
// server code, so a tool that renders a status loads none. The pool's
// snapshot types are the pool's own plain data (pool/snapshot.ts); they are
// re-exported here so a tool names the whole protocol from one place.
import { ERROR_CODES, type ErrorCode } from '../errors';
import type { PoolSnapshot } from '../pool/snapshot';

export type { GroupSnapshot, PoolSnapshot, ProcessSnapshot } from '../pool/snapshot';

/** GET /pool.json: the pool, each process's CPU and memory, and the instance. */
export interface StatusDocument extends PoolSnapshot {
  schema: 1;
  version: string;
  time: string;
  instance: { name: string; dir: string; watchdog_pid: number; core_pid: number; server: string };
}

/** A request in flight, for `passenger-status --show=requests`. */
export interface RequestSnapshot {
  method: string;
  path: string;
  group: string;
  /** null while it waits for a process */
  pid: number | null;
  /** websocket: an upgraded connection, open since age_ms */
  state: 'queued' | 'forwarded' | 'responding' | 'websocket';
  age_ms: number;
  client: string | null;
}

/** GET /requests.json */
export interface RequestsDocument {
  schema: 1;
  time: string;
  requests: RequestSnapshot[];
}

/** POST /restart-app: the groups restarted and the processes they have now. */
export interface RestartAppResult {
  restarted: string;
  groups: { name: string; app_root: string; pids: number[] }[];
  rolling: boolean;
  pids: number[];
}

/** POST /reopen-logs: the files reopened (log_file null: logging to a terminal). */
export interface ReopenLogsResult {
  log_file: string | null;
  app_log_files: string[];
}

/** POST /detach-process */
export interface DetachProcessResult {
  detached: number;
  group: string;
}

/** Every refusal and failure: a code from the error table, the message, and a hint when there is one. */
export interface ErrorBody {
  code: ErrorCode;
  message: string;
  hint?: string;
}

/** An error body as the agent sent it, or null when the answer is not one (an unknown code is not one). */
export function readErrorBody(json: unknown): ErrorBody | null {
  if (typeof json !== 'object' || json === null) return null;
  const e = json as { code?: unknown; message?: unknown; hint?: unknown };
  if (typeof e.code !== 'string' || !Object.prototype.hasOwnProperty.call(ERROR_CODES, e.code)) return null;
  return {
    code: e.code as ErrorCode,
    message: typeof e.message === 'string' ? e.message : '',
    ...(typeof e.hint === 'string' ? { hint: e.hint } : {}),
  };
}
