// A client's request as the parser-based request side (client-http.ts) reads
// it: the head as the parser hands it over (the header object is built only
// when something asks for it), and the body as a stream whose pause stops
// reading from the client.
import type { IncomingHttpHeaders } from 'node:http';
import type { ClientPeer } from './headers';

// Duplicates as node:http folds them: these keep the first value, set-cookie
// becomes a list, cookie is joined with '; ', every other header with ', '.
const SINGLE = new Set(['content-type', 'content-length', 'user-agent', 'referer', 'host', 'authorization',
  'proxy-authorization', 'if-modified-since', 'if-unmodified-since', 'from', 'location', 'max-forwards',
  'retry-after', 'etag', 'last-modified', 'server', 'age', 'expires']);

function headerObject(raw: string[]): IncomingHttpHeaders {
  const h: Record<string, string | string[]> = {};
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i].toLowerCase();
    const value = raw[i + 1];
    const had = h[name];
    if (had === undefined) {
      h[name] = name === 'set-cookie' ? [value] : value;
    } else if (name === 'set-cookie') {
      (had as string[]).push(value);
    } else if (!SINGLE.has(name)) {
      h[name] = `${had as string}${name === 'cookie' ? '; ' : ', '}${value}`;
    }
  }
  return h as IncomingHttpHeaders;
}

export class ClientRequest {
  private parsed: IncomingHttpHeaders | null = null;

  constructor(
    readonly method: string,
    readonly url: string,
    /** Name, value, name, value..., as the client sent them. */
    readonly rawHeaders: string[],
    /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
    readonly httpVersionMinor: number,
    readonly socket: ClientPeer,
  ) {}

  /** Lowercase names, duplicates folded as node:http folds them. */
  get headers(): IncomingHttpHeaders {
    return (this.parsed ??= headerObject(this.rawHeaders));
  }

  /** The head again as bytes on the wire (a connection handed to node:http reads it once more). */
  wireHead(): string {
    let s = `${this.method} ${this.url} HTTP/1.${this.httpVersionMinor}\r\n`;
    const raw = this.rawHeaders;
    for (let i = 0; i < raw.length; i += 2) s += `${raw[i]}: ${raw[i + 1]}\r\n`;
    return `${s}\r\n`;
  }
}

/** The connection a body is read from: told when its reader cannot take more, and when it can again. */
export interface BodySource {
  bodyFull(body: RequestBody): void;
  bodyFree(body: RequestBody): void;
}

/** Told when a body passes its limit (body-limit.ts). */
export interface BodyOverflow {
  bodyTooLarge(limit: number): void;
}

/** Bytes held for a reader that is not reading (not yet connected to an app, or paused) before the client is no longer read. */
const HELD_LIMIT = 64 * 1024;

/**
 * A request body: the parser pushes slices of what the client sent, a reader
 * (app-client.ts) takes them with one 'data' and one 'end' listener. While
 * the reader is paused or not there yet, slices are held, and past
 * HELD_LIMIT the connection stops reading the client. Past its limit (when
 * it has one), or once its request was answered without it, the reader hears
 * no more of it, not even its end, and the rest of it is read and dropped.
 */
export class RequestBody {
  private onData: ((chunk: Buffer) => void) | null = null;
  private onEnd: (() => void) | null = null;
  private held: Buffer[] = [];
  private heldBytes = 0;
  private paused = false;
  private full = false;
  private received = false;
  private endSent = false;
  private seen = 0;
  private max = Infinity;
  private overflow: BodyOverflow | null = null;
  /** It passed its limit, or its request was answered without it: what comes is dropped. */
  dropping = false;

  constructor(private readonly source: BodySource) {}

  on(event: 'data' | 'end', fn: ((chunk: Buffer) => void) | (() => void)): this {
    if (this.dropping) return this;
    if (event === 'data') this.onData = fn as (chunk: Buffer) => void;
    else this.onEnd = fn as () => void;
    this.flush();
    return this;
  }

  off(event: 'data' | 'end', fn: ((chunk: Buffer) => void) | (() => void)): this {
    if (event === 'data' && this.onData === fn) this.onData = null;
    else if (event === 'end' && this.onEnd === fn) this.onEnd = null;
    return this;
  }

  pause(): this {
    this.paused = true;
    return this;
  }

  resume(): this {
    if (!this.paused) return this;
    this.paused = false;
    this.flush();
    return this;
  }

  /** All of the body was received. */
  get complete(): boolean {
    return this.received;
  }

  /** At most `bytes` reach the reader; the slice that would pass them goes to `overflow` instead. */
  limit(bytes: number, overflow: BodyOverflow): void {
    this.max = bytes;
    this.overflow = overflow;
  }

  /** From the parser: the next slice. */
  push(chunk: Buffer): void {
    if (this.dropping) return;
    if ((this.seen += chunk.length) > this.max) {
      this.over();
      return;
    }
    if (this.onData !== null && !this.paused && this.held.length === 0) {
      this.onData(chunk);
      return;
    }
    this.held.push(chunk);
    this.heldBytes += chunk.length;
    if (!this.full && this.heldBytes > HELD_LIMIT) {
      this.full = true;
      this.source.bodyFull(this);
    }
  }

  /** From the parser: the body is over. */
  end(): void {
    this.received = true;
    this.flush();
  }

  /** Past the limit: the rest is dropped, and the one told of the overflow answers. */
  private over(): void {
    if (this.dropping) return;
    this.drop();
    this.overflow?.bodyTooLarge(this.max);
  }

  /**
   * The request was answered before its body was over: the reader is let go
   * of (it hears no more, not even the end), what was held goes, and the
   * connection reads on, dropping the rest.
   */
  drop(): void {
    if (this.dropping) return;
    this.dropping = true;
    this.onData = null;
    this.onEnd = null;
    this.held = [];
    this.heldBytes = 0;
    if (this.full) {
      this.full = false;
      this.source.bodyFree(this);
    }
  }

  private flush(): void {
    while (this.held.length > 0 && this.onData !== null && !this.paused) {
      const c = this.held.shift() as Buffer;
      this.heldBytes -= c.length;
      this.onData(c);
    }
    if (this.full && this.heldBytes <= HELD_LIMIT / 2) {
      this.full = false;
      this.source.bodyFree(this);
    }
    if (this.received && !this.endSent && this.held.length === 0 && this.onEnd !== null) {
      this.endSent = true;
      this.onEnd();
    }
  }
}
