// Which headers cross the agent, for every request path: hop-by-hop headers
// describe one connection (the client's to us, or ours to the app) and never
// pass; X-Passenger-* is between the web server and the agent, never for the
// app; the app hears who the client is through X-Forwarded-For/-Proto.
// Two shapes of the same rules: raw name/value lists (the default path and
// upgrades) and header objects (reply-from).
import type { IncomingMessage } from 'node:http';

/** What the request paths read of a client's request: node:http's IncomingMessage has it, and so does the parser-based side's ClientRequest (client-request.ts). */
export type RequestHead = Pick<IncomingMessage, 'method' | 'url' | 'headers' | 'rawHeaders'> & { readonly socket: ClientPeer };
/** The client's connection, as far as headers and cookies need it: a net.Socket, a TLS socket or the parser side's stream. */
export interface ClientPeer { readonly remoteAddress?: string; readonly encrypted?: boolean }

/** Request headers about the client's connection, not ours to the app. */
export const REQUEST_HOP_BY_HOP: readonly string[] = ['connection', 'keep-alive', 'transfer-encoding', 'upgrade', 'expect', 'proxy-connection', 'te'];
/** Response headers about the app's connection, not ours to the client. */
export const RESPONSE_HOP_BY_HOP: readonly string[] = ['connection', 'keep-alive', 'transfer-encoding'];

const REQUEST_DROP = new Set(REQUEST_HOP_BY_HOP);
const RESPONSE_DROP = new Set(RESPONSE_HOP_BY_HOP);
const XFF = 'x-forwarded-for';
const XFP = 'x-forwarded-proto';
const PASSENGER_PREFIX = 'x-passenger-';

// Names are lowercased only when their length is one of those we look at:
// most headers pass on a length check.
function lengthsOf(names: Iterable<string>): Uint8Array {
  const a = new Uint8Array(64);
  for (const n of names) a[n.length] = 1;
  return a;
}
const REQUEST_LENGTHS = lengthsOf([...REQUEST_HOP_BY_HOP, XFF, XFP]);
const RESPONSE_LENGTHS = lengthsOf(RESPONSE_HOP_BY_HOP);

const COMMA = ', ';

/** X-Passenger-*, in any case. */
function isPassengerHeader(name: string): boolean {
  return name.length > 12 && name.charCodeAt(1) === 45 && (name.charCodeAt(0) | 32) === 120 && name.slice(2, 12).toLowerCase() === 'passenger-';
}

/** True for a response header name that belongs to the app's connection. */
export function isResponseHopByHop(name: string): boolean {
  return name.length < 64 && RESPONSE_LENGTHS[name.length] === 1 && RESPONSE_DROP.has(name.toLowerCase());
}

/**
 * Request headers for the app, as a raw list: the client's, minus hop-by-hop
 * and X-Passenger-* ones, plus X-Forwarded-For (the client's address appended;
 * on a Unix socket the web server in front has said who the client is) and
 * X-Forwarded-Proto (http unless the web server said otherwise).
 */
export function appHeaders(req: RequestHead): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let xff: string | null = null;
  let proto = false;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (isPassengerHeader(name)) continue;
    if (name.length < 64 && REQUEST_LENGTHS[name.length] === 1) {
      const n = name.toLowerCase();
      if (REQUEST_DROP.has(n)) continue;
      if (n === XFF) { xff = xff === null ? raw[i + 1] : xff + COMMA + raw[i + 1]; continue; }
      if (n === XFP) proto = true;
    }
    out.push(name, raw[i + 1]);
  }
  const addr = req.socket.remoteAddress;
  if (addr === undefined) {
    if (xff !== null) out.push(XFF, xff);
  } else {
    out.push(XFF, xff === null ? addr : xff + COMMA + addr);
  }
  if (!proto) out.push(XFP, 'http');
  return out;
}

/** The same rules on a header object (lowercase names, as Node parses them), changed in place. */
export function rewriteAppHeaders(headers: Record<string, unknown>, req: IncomingMessage): Record<string, unknown> {
  for (const name of REQUEST_HOP_BY_HOP) delete headers[name];
  for (const name of Object.keys(headers)) if (name.startsWith(PASSENGER_PREFIX)) delete headers[name];
  const prior = req.headers[XFF];
  const addr = req.socket.remoteAddress;
  const xff = addr === undefined ? prior : prior ? `${prior}, ${addr}` : addr;
  if (xff === undefined) delete headers[XFF];
  else headers[XFF] = xff;
  headers[XFP] ??= 'http';
  return headers;
}

/** Drops hop-by-hop headers from a raw response header list, in place. */
export function stripResponseHopByHop(headers: string[]): string[] {
  let w = 0;
  for (let i = 0; i < headers.length; i += 2) {
    if (isResponseHopByHop(headers[i])) continue;
    headers[w] = headers[i];
    headers[w + 1] = headers[i + 1];
    w += 2;
  }
  headers.length = w;
  return headers;
}

/** Drops hop-by-hop headers from a response header object, in place. */
export function stripResponseHopByHopObject(headers: Record<string, unknown>): Record<string, unknown> {
  for (const name of RESPONSE_HOP_BY_HOP) delete headers[name];
  return headers;
}

/** Who the client is: its address, or behind a web server (a Unix socket) the last X-Forwarded-For entry. */
export function clientOf(req: RequestHead): string | null {
  const addr = req.socket.remoteAddress;
  if (addr !== undefined) return addr;
  const xff = req.headers[XFF];
  if (typeof xff !== 'string' || xff === '') return null;
  return xff.slice(xff.lastIndexOf(',') + 1).trim();
}
