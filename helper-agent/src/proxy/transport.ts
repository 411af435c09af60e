// The connections from the agent to one app process, opened once when the
// process joins the pool: our own keep-alive client for the default request
// path, or an undici pool for @fastify/reply-from.
import type { Pool as UndiciPoolType } from 'undici';
import type { AppProcess } from '../pool/process';
import type { Options } from '../config';
import { AppClient } from './app-client';

// Only the pool class: the whole undici package takes ~4x longer to load.
let UndiciPoolClass: typeof UndiciPoolType | null = null;
function undiciPoolClass(): typeof UndiciPoolType {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  UndiciPoolClass ??= require('undici/lib/dispatcher/pool') as typeof UndiciPoolType;
  return UndiciPoolClass;
}

const UNDICI_OPTIONS = {
  connections: null,
  pipelining: 1,
  // Apps (and the app servers under them) may run requests of any length.
  headersTimeout: 0,
  bodyTimeout: 0,
  // Below Node's default server keepAliveTimeout (5 s), so we close idle
  // connections before the app does and rarely send onto a closing one.
  keepAliveTimeout: 4000,
} as const;

/** reply-from: an undici pool; every other forwarder: our own client. */
export function openTransport(p: AppProcess, forwarder: Options['forwarder']): void {
  const ep = p.handle.endpoint;
  if (forwarder !== 'reply-from') {
    p.transport = new AppClient(ep);
    return;
  }
  const UndiciPool = undiciPoolClass();
  p.transport = 'socketPath' in ep
    ? new UndiciPool('http://app', { ...UNDICI_OPTIONS, socketPath: ep.socketPath })
    : new UndiciPool(`http://${ep.host}:${ep.port}`, UNDICI_OPTIONS);
}

export function appClientOf(p: AppProcess): AppClient | null {
  return p.transport instanceof AppClient ? p.transport : null;
}

export function undiciPoolOf(p: AppProcess): UndiciPoolType | null {
  return (p.transport as UndiciPoolType | null) ?? null;
}

export function closeTransport(p: AppProcess): void {
  const t = p.transport;
  p.transport = null;
  if (t instanceof AppClient) t.destroy();
  else if (t) void (t as UndiciPoolType).destroy().catch(() => undefined);
}
