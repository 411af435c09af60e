// What a failure at the app's side means, and what follows from it: every
// request path (the default one, reply-from, upgrades) classifies an upstream
// error into one of the project's own codes (errors.ts), whatever client
// raised it (our app client, undici, node:http), and asks here whether the
// process leaves rotation and whether the request may go to another process:
// only when the app cannot have acted on it, or the method is idempotent and
// nothing came back.
import type { IncomingHttpHeaders } from 'node:http';
import { PassengerError } from '../errors';

export const MAX_ATTEMPTS = 3;

/** The codes an upstream failure is classified into (E_BAD_GATEWAY: anything else). */
export type UpstreamCode = 'E_APP_UNREACHABLE' | 'E_APP_CONNECTION_LOST' | 'E_APP_BAD_RESPONSE' | 'E_BAD_GATEWAY';

/**
 * Low-level codes (system, undici, Node's HTTP parser) by what they say
 * about the app. Ours pass through unchanged.
 */
const UPSTREAM_CODES: ReadonlyMap<string, UpstreamCode> = new Map<string, UpstreamCode>([
  // The process's socket refused us: it is gone or broken, and never saw the request.
  ['ECONNREFUSED', 'E_APP_UNREACHABLE'],
  ['ENOENT', 'E_APP_UNREACHABLE'],
  ['E_APP_UNREACHABLE', 'E_APP_UNREACHABLE'],
  // The connection died before any response byte: the app may have acted on it.
  ['UND_ERR_SOCKET', 'E_APP_CONNECTION_LOST'],
  ['ECONNRESET', 'E_APP_CONNECTION_LOST'],
  ['EPIPE', 'E_APP_CONNECTION_LOST'],
  ['UND_ERR_CLOSED', 'E_APP_CONNECTION_LOST'],
  ['UND_ERR_DESTROYED', 'E_APP_CONNECTION_LOST'],
  ['E_APP_CONNECTION_LOST', 'E_APP_CONNECTION_LOST'],
  ['E_APP_BAD_RESPONSE', 'E_APP_BAD_RESPONSE'],
]);

const IDEMPOTENT = new Set(['GET', 'HEAD', 'OPTIONS', 'TRACE', 'PUT', 'DELETE']);

/** The innermost error code of an error and its causes (what the log names). */
export function rootCode(err: unknown): string | undefined {
  let e = err as { code?: string; cause?: unknown } | undefined;
  let code: string | undefined;
  for (let i = 0; e && i < 4; i++) {
    if (e.code) code = e.code;
    e = e.cause as typeof e;
  }
  return code;
}

/** The project's code for a failure at the app's side. */
export function upstreamCode(err: unknown): UpstreamCode {
  const code = rootCode(err);
  if (code === undefined) return 'E_BAD_GATEWAY';
  if (code.startsWith('HPE_')) return 'E_APP_BAD_RESPONSE';
  return UPSTREAM_CODES.get(code) ?? 'E_BAD_GATEWAY';
}

/** The error the agent answers a failed forward with (a 502), keeping the low-level one as its cause. */
export function upstreamError(err: Error, code: UpstreamCode = upstreamCode(err)): PassengerError {
  const e = new PassengerError(code, `the app process failed to answer: ${err.message}`);
  (e as { cause?: unknown }).cause = err;
  return e;
}

/** Whether the process leaves rotation: it refused a connection, so it is gone or broken. */
export function shouldDetach(code: UpstreamCode): boolean {
  return code === 'E_APP_UNREACHABLE';
}

export function hasBody(h: IncomingHttpHeaders): boolean {
  return h['transfer-encoding'] !== undefined || (h['content-length'] !== undefined && h['content-length'] !== '0');
}

/** A request that failed before any response byte: may it go to another process? */
export function mayRetry(code: UpstreamCode, method: string, withBody: boolean, attempts: number): boolean {
  if (attempts >= MAX_ATTEMPTS || withBody) return false;
  // A refused connection never reached the app: safe for any method. A lost
  // one may have reached it, so only methods that can be repeated.
  return code === 'E_APP_UNREACHABLE' || (code === 'E_APP_CONNECTION_LOST' && IDEMPOTENT.has(method));
}
