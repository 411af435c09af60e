// A client connection held as the bare stream handle its listening socket
// accepted (Node's TCP or pipe handle, the one a net.Socket wraps), with no
// net.Socket around it: no stream state, event emitter or async id per
// connection. The request parser reads the handle itself (client-http.ts);
// what reaches this file is the end of the input, writes, and their
// completion, and the bytes of a connection whose parser let go of it while
// it was idle. A net.Socket is made only when the connection is handed on
// (an upgrade, a static file). The handle's methods are Node's internal
// stream bindings, the ones net.Socket is written on.
import * as net from 'node:net';

/** What the connection is told of its stream. */
export interface StreamOwner {
  /** Bytes read while no parser reads the handle. */
  data(d: Buffer): void;
  /** The client ended its side (FIN). */
  clientEnded(): void;
  /** Everything written was taken by the kernel after a write said to wait. */
  drain(): void;
  /** The handle is closed: the last call. */
  closed(): void;
}

/** Whom a queued write's completion is told: a client connection, or a tunnel's side (tunnel-relay.ts). */
export interface WriteOwner {
  written(bytes: number, status: number): void;
}

interface WriteReq {
  oncomplete: (this: WriteReq, status: number) => void;
  stream: WriteOwner | null;
  bytes: number;
  /** A Buffer being written is kept alive until its write completes. */
  buffer: Buffer | null;
}

interface ShutdownReq {
  oncomplete: (this: ShutdownReq, status: number) => void;
  stream: ClientStream | null;
}

const kStream = Symbol('passenger.clientStream');

/** Node's stream handle (tcp_wrap's TCP, pipe_wrap's Pipe): the part of it used here. */
export interface StreamHandle {
  readonly fd: number;
  isStreamBase?: boolean;
  /** Whether it is reading, as net.Socket keeps it (a Socket made from it later reads this). */
  reading?: boolean;
  onread: (this: StreamHandle, buf?: ArrayBuffer) => void;
  readStart(): number;
  readStop(): number;
  writeLatin1String(req: WriteReq, s: string): number;
  writeBuffer(req: WriteReq, b: Buffer): number;
  shutdown(req: ShutdownReq): number;
  close(cb: (this: StreamHandle) => void): void;
  getpeername?(out: { address?: string }): number;
  setNoDelay?(on: boolean): number;
  [kStream]?: ClientStream;
}

interface StreamBinding {
  WriteWrap: new () => WriteReq;
  ShutdownWrap: new () => ShutdownReq;
  streamBaseState: Int32Array;
  kReadBytesOrError: number;
  kArrayBufferOffset: number;
  kBytesWritten: number;
  kLastWriteWasAsync: number;
}
const binding = (process as unknown as { binding(name: string): unknown }).binding('stream_wrap') as StreamBinding;
const UV_EOF = (process as unknown as { binding(name: string): { UV_EOF: number } }).binding('uv').UV_EOF;
const state = binding.streamBaseState;

/** Bytes written and not yet taken by the kernel past which write() says to wait (net.Socket's default). */
export const HIGH_WATER = 16 * 1024;

// Handle and request callbacks shared by every connection: `this` names it.
function onRead(this: StreamHandle, buf?: ArrayBuffer): void {
  // While a parser reads the handle, what comes here is the end of input or an error.
  const s = this[kStream];
  const n = state[binding.kReadBytesOrError];
  if (s === undefined || n === 0) return;
  if (n > 0) s.owner.data(Buffer.from(buf as ArrayBuffer, state[binding.kArrayBufferOffset], n));
  else if (n === UV_EOF) s.owner.clientEnded();
  else s.destroy();
}
function onWritten(this: WriteReq, status: number): void {
  const s = this.stream;
  this.stream = null;
  this.buffer = null;
  s?.written(this.bytes, status);
}
function onShutdown(this: ShutdownReq): void {
  const s = this.stream;
  this.stream = null;
  s?.destroy();
}
function onClosed(this: StreamHandle): void {
  const s = this[kStream];
  this[kStream] = undefined;
  s?.owner.closed();
}
function ignoreError(): void { /* the socket's own listeners act on it */ }
function newWriteReq(): WriteReq {
  const r = new binding.WriteWrap();
  r.oncomplete = onWritten;
  r.stream = null;
  r.bytes = 0;
  r.buffer = null;
  return r;
}

/** The request object of the next write: one is kept while writes complete at once, a new one after a write is queued. */
let spareReq = newWriteReq();

/**
 * In a handle's read callback: the bytes read (a view of `buf`), or, when
 * there are none, 0 or a libuv error (UV_EOF at the end of input).
 */
export function readResult(buf?: ArrayBuffer): Buffer | number {
  const n = state[binding.kReadBytesOrError];
  return n > 0 ? Buffer.from(buf as ArrayBuffer, state[binding.kArrayBufferOffset], n) : n;
}

/**
 * Writes to `handle` (a string as latin1): 0 when the kernel took all of it,
 * the count of bytes queued otherwise (`owner`, if any, is told once they
 * are out, and a Buffer is kept until then; libuv keeps the order of
 * writes), < 0 a libuv error. Also for handles no ClientStream owns: a
 * connection to an app, whose net.Socket keeps reading and closing it, and
 * a tunnel's sides (tunnel-relay.ts).
 */
export function writeTo(handle: Pick<StreamHandle, 'writeLatin1String' | 'writeBuffer'>, data: string | Buffer, owner: WriteOwner | null): number {
  const req = spareReq;
  const err = typeof data === 'string' ? handle.writeLatin1String(req, data) : handle.writeBuffer(req, data);
  if (err !== 0) return err;
  if (state[binding.kLastWriteWasAsync] === 0) return 0;
  spareReq = newWriteReq();
  req.stream = owner;
  req.bytes = state[binding.kBytesWritten];
  if (typeof data !== 'string') req.buffer = data;
  return req.bytes;
}

export class ClientStream implements WriteOwner {
  destroyed = false;
  /** Bytes of queued writes not yet complete. */
  private pending = 0;
  /** A write said to wait: drain() is owed. */
  private waiting = false;
  /** end() was called: the write side shuts once what is queued is out. */
  private ending = false;
  private peer: string | undefined | null = null;

  constructor(readonly handle: StreamHandle, readonly owner: StreamOwner) {
    handle[kStream] = this;
    handle.onread = onRead;
  }

  /** The client's address (undefined over a Unix socket), read once. */
  get remoteAddress(): string | undefined {
    if (this.peer === null) {
      const out: { address?: string } = {};
      this.peer = this.handle.getpeername?.(out) === 0 ? out.address : undefined;
    }
    return this.peer;
  }

  /** Writes bytes (a string is latin1); false: wait for the owner's drain() before writing more. */
  write(data: string | Buffer): boolean {
    if (this.destroyed || this.ending) return false;
    const n = writeTo(this.handle, data, this);
    if (n < 0) {
      this.destroy();
      return false;
    }
    this.pending += n;
    if (this.pending >= HIGH_WATER) this.waiting = true;
    return !this.waiting;
  }

  /** Bytes written and not yet taken by the kernel. */
  get writableLength(): number {
    return this.pending;
  }

  get needDrain(): boolean {
    return this.waiting;
  }

  written(bytes: number, status: number): void {
    if (this.destroyed) return; // closing, or handed on meanwhile
    this.pending -= bytes;
    if (status < 0) {
      this.destroy();
      return;
    }
    if (this.pending > 0) return;
    if (this.ending) {
      this.shutdown();
    } else if (this.waiting) {
      this.waiting = false;
      this.owner.drain();
    }
  }

  readStart(): void {
    const h = this.handle;
    if (h.reading === true || this.destroyed) return;
    h.reading = true;
    h.readStart();
  }

  readStop(): void {
    const h = this.handle;
    if (h.reading !== true) return;
    h.reading = false;
    h.readStop();
  }

  /** Shuts the write side once what was written is out, then closes. */
  end(): void {
    if (this.destroyed || this.ending) return;
    this.ending = true;
    if (this.pending === 0) this.shutdown();
  }

  /** Closes now: what the kernel holds is still sent, queued writes are dropped. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.readStop();
    this.handle.close(onClosed);
  }

  /** The connection goes on as a net.Socket (the caller has its parser let go of the handle first). */
  handOver(): net.Socket {
    const h = this.handle;
    h[kStream] = undefined;
    this.destroyed = true;
    // The Socket starts reading itself, and takes over the read callback.
    this.readStop();
    const s = new net.Socket({ handle: h, allowHalfOpen: true, readable: true, writable: true } as net.SocketConstructorOpts);
    // Whoever takes it may listen only later (the node:http side loads with
    // the first handover): a client's reset meanwhile must not be an
    // uncaught error. The taker's own listeners see every error too.
    s.on('error', ignoreError);
    return s;
  }

  private shutdown(): void {
    const req = new binding.ShutdownWrap();
    req.oncomplete = onShutdown;
    req.stream = this;
    // 0: under way; anything else (done at once, or not connected): close now.
    if (this.handle.shutdown(req) !== 0) this.destroy();
  }
}
