// How long the request side waits on a client, in one place for both of its
// implementations: the parser side's sweep (client-http-server.ts) and the
// node:http server (the fallback, and the one the parser side hands static
// files to), so that they close the same connections, the same way. A head
// that is not complete within the keep-alive time is answered 408 and the
// connection closes; an idle connection closes without a word; a connection
// whose request is being answered is never timed out.
import type { ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { KEEP_ALIVE_SECONDS, plainResponse } from './client-slot';

export interface ClientTimeouts {
  /** An idle keep-alive connection closes after this; a head must be complete within it. */
  readonly keepAliveMs: number;
  /** How often connections are checked against it: one timer per server, none per connection or request. */
  readonly sweepMs: number;
}

/** Checked every 5 s, or four times within a shorter keep-alive time, so that one is kept to as closely. */
export function clientTimeouts(keepAliveMs: number): ClientTimeouts {
  return { keepAliveMs, sweepMs: Math.min(5_000, Math.ceil(keepAliveMs / 4)) };
}

/** What the request side runs with, as its answers' `keep-alive: timeout=` says. */
export const CLIENT_TIMEOUTS = clientTimeouts(KEEP_ALIVE_SECONDS * 1000);

/**
 * node:http's options for them. Its head timeout counts from a head's first
 * byte (from the connection's start for its first request), and is off
 * unless given: with requestTimeout 0 (a request may take as long as its
 * app), its default is 0, and a connection that never completed a head would
 * be held for good. Its idle timer starts when an answer is out.
 */
export function nodeHttpOptions(t: ClientTimeouts): ServerOptions {
  return { keepAliveTimeout: t.keepAliveMs, headersTimeout: t.keepAliveMs, requestTimeout: 0, connectionsCheckingInterval: t.sweepMs };
}

/** The parser of a node:http connection (`socket.parser`, not public). */
type ParsedSocket = Socket & { parser?: { headersCompleted?(): boolean } | null; _httpMessage?: ServerResponse | null };

/**
 * The server's 'timeout': a keep-alive connection's idle timer ran out
 * (node:http sets it only between requests). Idle, it closes quietly; with a
 * head begun and not complete (a timer that each byte restarts), it is
 * answered 408 like a head the server's check found late.
 */
export function onNodeHttpTimeout(sock: Socket): void {
  if ((sock as ParsedSocket).parser?.headersCompleted?.() === false) refuse(sock, 408);
  else sock.destroy();
}

/** node:http's answers to what it could not read as a request (its own when nobody listens for 'clientError'). */
const CLIENT_ERROR_STATUS: Record<string, number> = { HPE_HEADER_OVERFLOW: 431, HPE_CHUNK_EXTENSIONS_OVERFLOW: 413, ERR_HTTP_REQUEST_TIMEOUT: 408 };

/**
 * The server's 'clientError', answered as node:http would (400 for a
 * malformed request, 431, 413, 408), but for two head timeouts. A connection
 * that sent no byte was idle, not slow: it closes quietly, as on the parser
 * side (a client that finds a 408 on a connection it never used could take
 * it for the answer to its next request). A head pipelined behind a request
 * still being answered does not cut that answer: its time runs again once the
 * connection is idle, on the idle timer (onNodeHttpTimeout).
 */
export function onNodeHttpClientError(err: NodeJS.ErrnoException, sock: Socket): void {
  const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? 400;
  if (status === 408 && (sock as ParsedSocket)._httpMessage != null) return;
  if (status === 408 && sock.bytesRead === 0) sock.destroy();
  else refuse(sock, status);
}

/** Answers `status` unless a response has begun on the connection, then closes it. */
function refuse(sock: Socket, status: number): void {
  const res = (sock as ParsedSocket)._httpMessage;
  if (sock.writable && (res == null || !res.headersSent)) sock.write(plainResponse(status, false, '', '', true));
  sock.destroy();
}
