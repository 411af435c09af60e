// When a failed forward may be sent to another process: only when the app
// cannot have acted on it, or the method is idempotent and nothing came back.
import type { IncomingHttpHeaders } from 'node:http';

export const MAX_ATTEMPTS = 3;

/** The process's socket refused us: it is gone or broken. */
const CONNECT_FAILURES = new Set(['ECONNREFUSED', 'ENOENT']);
/** The connection died before any response byte. */
const NO_RESPONSE_FAILURES = new Set(['UND_ERR_SOCKET', 'ECONNRESET', 'EPIPE', 'UND_ERR_CLOSED', 'UND_ERR_DESTROYED']);
const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** The innermost error code of an error and its causes. */
export function rootCode(err: unknown): string | undefined {
  let e = err as { code?: string; cause?: unknown } | undefined;
  let code: string | undefined;
  for (let i = 0; e && i < 4; i++) {
    if (e.code) code = e.code;
    e = e.cause as typeof e;
  }
  return code;
}

export function isConnectFailure(code: string | undefined): boolean {
  return code !== undefined && CONNECT_FAILURES.has(code);
}

export function hasBody(h: IncomingHttpHeaders): boolean {
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/** A request that failed before any response byte: may it go to another process? */
export function mayRetry(code: string | undefined, method: string, withBody: boolean, attempts: number): boolean {
  if (attempts >= MAX_ATTEMPTS || withBody || code === undefined) return false;
  // A refused connection never reached the app: safe for any method. The
  // others may have reached it, so only methods that can be repeated.
  return CONNECT_FAILURES.has(code) || (NO_RESPONSE_FAILURES.has(code) && IDEMPOTENT.has(method));
}
