// The largest request body the web server allows, when it tells the agent.
// Apache refuses a body whose Content-Length is too large itself (the
// snippets' RewriteRule), but its LimitRequestBody does not apply to proxied
// requests, so a body without a length (chunked) would pass whatever its
// size: the Apache snippets send the limit in X-Passenger-Max-Body-Size, and
// the agent counts the body against it as it arrives. Only behind a web
// server (where the agent takes X-Passenger-* headers from it at all), and
// only for requests with a body.
import type { IncomingMessage } from 'node:http';
import { RequestBody, type BodyOverflow, type BodySource } from './client-request';
import type { RequestHead } from './headers';

export const MAX_BODY_SIZE_HEADER = 'x-passenger-max-body-size';

/** Digits only, and no more than Number holds exactly. */
const BYTES = /^\d{1,15}$/;

/**
 * The limit in bytes the web server sent with a request, or null for none.
 * Of several, the smallest: the snippets replace a client's own, and one
 * that slipped through another front end could only lower its own request's.
 */
export function bodyLimitOf(req: RequestHead): number | null {
  const raw = req.rawHeaders;
  let limit: number | null = null;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i];
    if (n.length !== 25 || n.toLowerCase() !== MAX_BODY_SIZE_HEADER) continue;
    const v = raw[i + 1].trim();
    if (!BYTES.test(v)) continue;
    const bytes = Number(v);
    if (limit === null || bytes < limit) limit = bytes;
  }
  return limit;
}

/**
 * node:http's request body counted against a limit: its bytes go through a
 * RequestBody (held while no reader takes them, dropped past the limit) as
 * on the parser side, so both sides answer the same.
 */
export function limitedBody(req: IncomingMessage, limit: number, overflow: BodyOverflow): RequestBody {
  const source: BodySource = { bodyFull: () => { req.pause(); }, bodyFree: () => { req.resume(); } };
  const body = new RequestBody(source);
  body.limit(limit, overflow);
  req.on('data', (chunk: Buffer) => { body.push(chunk); });
  req.on('end', () => { body.end(); });
  return body;
}
