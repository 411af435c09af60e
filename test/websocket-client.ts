// A WebSocket client by hand (RFC 6455), for the tests: the handshake with
// its accept key, masked frames out, messages in (of any length, fragmented
// or not), and the closing handshake. It depends on nothing, so a failure
// points at the server side.
import * as crypto from 'node:crypto';
import * as net from 'node:net';

const GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

export interface Message {
  opcode: number;
  data: Buffer;
}

export interface Handshake {
  status: number;
  /** Lowercased names; the last value of a repeated header. */
  headers: Record<string, string>;
  /** The Sec-WebSocket-Accept a correct server sends for our key. */
  expectedAccept: string;
  /** The open connection after a 101, else null. */
  ws: WsConnection | null;
  /** Without a 101: the response body, read to the end of the connection. */
  body: Promise<string>;
}

export class WsConnection {
  private buf: Buffer = Buffer.alloc(0);
  private readonly messages: Message[] = [];
  private waiters: ((m: Message | null) => void)[] = [];
  private parts: Buffer[] = [];
  private msgOpcode = 0;
  private ended = false;
  /** Resolves when the TCP connection has closed. */
  readonly closed: Promise<void>;

  constructor(readonly socket: net.Socket, rest: Buffer) {
    this.closed = new Promise((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (d: Buffer) => this.onData(d));
    socket.on('close', () => {
      this.ended = true;
      for (const w of this.waiters.splice(0)) w(null);
    });
    if (rest.length > 0) this.onData(rest);
  }

  private onData(d: Buffer): void {
    this.buf = this.buf.length === 0 ? d : Buffer.concat([this.buf, d]);
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b.length < off + len) return;
      const fin = (b[0] & 0x80) !== 0;
      const opcode = b[0] & 0x0f;
      const payload = Buffer.from(b.subarray(off, off + len));
      this.buf = b.subarray(off + len);
      if (opcode >= 8) {
        this.deliver({ opcode, data: payload });
        continue;
      }
      if (opcode !== 0) this.msgOpcode = opcode;
      this.parts.push(payload);
      if (fin) {
        this.deliver({ opcode: this.msgOpcode, data: Buffer.concat(this.parts) });
        this.parts = [];
      }
    }
  }

  private deliver(m: Message): void {
    const w = this.waiters.shift();
    if (w) w(m);
    else this.messages.push(m);
  }

  /** Sends one message in one masked frame (text for a string). */
  send(data: string | Buffer, opcode = typeof data === 'string' ? 1 : 2): void {
    const payload = typeof data === 'string' ? Buffer.from(data) : data;
    const n = payload.length;
    const head = n < 126 ? Buffer.from([0x80 | opcode, 0x80 | n])
      : n < 65536 ? Buffer.from([0x80 | opcode, 0x80 | 126, n >> 8, n & 0xff])
        : Buffer.concat([Buffer.from([0x80 | opcode, 0x80 | 127]), (() => { const l = Buffer.alloc(8); l.writeBigUInt64BE(BigInt(n)); return l; })()]);
    const mask = crypto.randomBytes(4);
    const masked = Buffer.alloc(n);
    for (let i = 0; i < n; i++) masked[i] = payload[i] ^ mask[i & 3];
    this.socket.write(Buffer.concat([head, mask, masked]));
  }

  /** The next message (or control frame); null once the connection is gone. */
  next(timeoutMs = 20_000): Promise<Message | null> {
    const m = this.messages.shift();
    if (m) return Promise.resolve(m);
    if (this.ended) return Promise.resolve(null);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)), timeoutMs);
      this.waiters.push((x) => { clearTimeout(timer); resolve(x); });
    });
  }

  /** Sends a message and returns the answer's text. */
  async echo(data: string | Buffer): Promise<Message> {
    this.send(data);
    const m = await this.next();
    if (m === null) throw new Error('the connection closed instead of answering');
    return m;
  }

  /** The closing handshake: a close frame out, the server's close frame back, then the connection's end. */
  async close(): Promise<Message | null> {
    this.send(Buffer.from([0x03, 0xe8]), 8);
    const m = await this.next();
    await this.closed;
    return m;
  }
}

/** Opens a WebSocket to 127.0.0.1:port (or a Unix socket path) with the given extra request headers. */
export function wsHandshake(port: number, urlPath = '/', headers: Record<string, string> = {}, timeoutMs = 30_000): Promise<Handshake> {
  const key = crypto.randomBytes(16).toString('base64');
  const expectedAccept = crypto.createHash('sha1').update(key + GUID).digest('base64');
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    const timer = setTimeout(() => { sock.destroy(); reject(new Error(`no handshake answer for ${urlPath} within ${timeoutMs} ms`)); }, timeoutMs);
    let head: Buffer = Buffer.alloc(0);
    const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('');
    sock.write(`GET ${urlPath} HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
    sock.on('error', (e) => { clearTimeout(timer); reject(e); });
    const onData = (d: Buffer): void => {
      head = Buffer.concat([head, d]);
      const end = head.indexOf('\r\n\r\n');
      if (end === -1) return;
      clearTimeout(timer);
      sock.off('data', onData);
      const lines = head.subarray(0, end).toString('latin1').split('\r\n');
      const status = Number(lines[0].split(' ')[1]);
      const h: Record<string, string> = {};
      for (const l of lines.slice(1)) {
        const i = l.indexOf(':');
        h[l.slice(0, i).trim().toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = head.subarray(end + 4);
      if (status === 101) {
        resolve({ status, headers: h, expectedAccept, ws: new WsConnection(sock, rest), body: Promise.resolve('') });
        return;
      }
      const chunks = [rest];
      const body = new Promise<string>((res) => {
        sock.on('data', (c: Buffer) => chunks.push(c));
        sock.on('close', () => res(Buffer.concat(chunks).toString()));
      });
      resolve({ status, headers: h, expectedAccept, ws: null, body });
    };
    sock.on('data', onData);
  });
}
