// What the parser request side (client-http.ts) shares with the forwarder it
// hands requests to (forward-builtin.ts): a request's slot in its
// connection's order, what the connection needs of a forwarding, and the
// responses the agent writes itself.
import { STATUS_CODES } from 'node:http';
import type * as net from 'node:net';
import type { ClientHttpConnection } from './client-http';
import type { ClientRequest, RequestBody } from './client-request';

/** What the connection needs of one request's forwarding. */
export interface Responder {
  /** Its turn came (it was pipelined behind PIPELINE_DEPTH others): route it. */
  admit(): void;
  /** The connection closed: release whatever it holds. Idempotent. */
  close(): void;
  /** Output waiting for the client was taken: it may send more. */
  drained(): void;
}

const NOBODY: Responder = { admit: () => undefined, close: () => undefined, drained: () => undefined };

/** One request on a connection, from its head to the end of its response. */
export class Slot {
  responder: Responder = NOBODY;
  /** Output held while an earlier response is under way. */
  out: (string | Buffer)[] | null = null;
  outBytes = 0;
  /** The response is complete (maybe still held). */
  done = false;
  /** The request's body was read to its end (the next bytes are another request). */
  bodyDone: boolean;

  constructor(
    readonly req: ClientRequest,
    /** The connection may carry another request after this one. */
    public keepAlive: boolean,
    hasBody: boolean,
  ) {
    this.bodyDone = !hasBody;
  }
}

/** What the server hands requests and connections to. */
export interface ClientHttpHandler {
  /** A request to forward (its slot is in the connection's order already); `admitted`: it may be routed now. */
  request(conn: ClientHttpConnection, slot: Slot, body: RequestBody | null, admitted: boolean): void;
  /** Whether a request goes to node:http with its connection (a static file). */
  handsOver(req: ClientRequest): boolean;
  /** Hands the connection on: node:http reads the request again from `head` and serves the connection from now on. */
  toNodeHttp(socket: net.Socket, head: Buffer): void;
  /** An upgrade request, with the socket and the bytes after its head. */
  upgrade(req: ClientRequest, socket: net.Socket, head: Buffer): void;
}

// Flags of a request head, found in one pass over its header names.
export const HOST = 1;
export const BODY = 2;
export const CONTINUE = 4;
export const EXPECT_OTHER = 8;

export function scanHead(raw: string[]): number {
  let f = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const n = raw[i];
    switch (n.length) {
      case 4:
        if (n.toLowerCase() === 'host') f |= HOST;
        break;
      case 6:
        if (n.toLowerCase() === 'expect') f |= raw[i + 1].toLowerCase() === '100-continue' ? CONTINUE : EXPECT_OTHER;
        break;
      case 14:
        if (raw[i + 1] !== '0' && n.toLowerCase() === 'content-length') f |= BODY;
        break;
      case 17:
        if (n.toLowerCase() === 'transfer-encoding') f |= BODY;
        break;
    }
  }
  return f;
}

let dateSecond = -1;
let dateText = '';
/** The Date header's value, made once a second. */
export function httpDate(): string {
  const now = Date.now();
  const s = Math.floor(now / 1000);
  if (s !== dateSecond) {
    dateSecond = s;
    dateText = new Date(now).toUTCString();
  }
  return dateText;
}

/** How long an idle keep-alive client connection is kept, as answers say it (client-timeouts.ts keeps to it). */
export const KEEP_ALIVE_SECONDS = 65;
/** The connection fields of an answer that keeps its connection. */
export const KEEP_ALIVE_FIELDS = `connection: keep-alive\r\nkeep-alive: timeout=${KEEP_ALIVE_SECONDS}`;

/** A complete response the connection or the agent answers with (never from the app). */
export function plainResponse(status: number, keepAlive: boolean, headers: string, body: string, headOnly: boolean): string {
  return `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? ''}\r\n${headers}content-length: ${Buffer.byteLength(body)}\r\ndate: ${httpDate()}\r\n`
    + `${keepAlive ? KEEP_ALIVE_FIELDS : 'connection: close'}\r\n\r\n${headOnly ? '' : body}`;
}
