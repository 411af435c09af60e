// The connections from the agent to one app process: an undici pool of
// keep-alive connections, opened once when the process joins the pool.
import type { Pool as UndiciPoolType } from 'undici';

// Only the pool class: the whole undici package takes ~4x longer to load, and
// the agent's start time is on the path to a server's first response.
// Loaded when the first process joins, while the agent waits for it anyway.
type UndiciPool = UndiciPoolType;
let UndiciPoolClass: typeof UndiciPoolType | null = null;
function poolClass(): typeof UndiciPoolType {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  UndiciPoolClass ??= require('undici/lib/dispatcher/pool') as typeof UndiciPoolType;
  return UndiciPoolClass;
}
import type { AppProcess } from '../pool/process';

const POOL_OPTIONS = {
  connections: null,
  pipelining: 1,
  // Apps (and the app servers under them) may run requests of any length.
  headersTimeout: 0,
  bodyTimeout: 0,
  // Below Node's default server keepAliveTimeout (5 s), so we close idle
  // connections before the app does and rarely send onto a closing one.
  keepAliveTimeout: 4000,
} as const;

export function openTransport(p: AppProcess): void {
  const ep = p.handle.endpoint;
  const UndiciPool = poolClass();
  p.transport = 'socketPath' in ep
    ? new UndiciPool('http://app', { ...POOL_OPTIONS, socketPath: ep.socketPath })
    : new UndiciPool(`http://${ep.host}:${ep.port}`, POOL_OPTIONS);
}

export function transportOf(p: AppProcess): UndiciPool | null {
  return p.transport as UndiciPool | null;
}

export function closeTransport(p: AppProcess): void {
  const t = transportOf(p);
  p.transport = null;
  if (t) void t.destroy().catch(() => undefined);
}
