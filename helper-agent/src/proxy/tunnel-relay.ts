// The bytes of an open tunnel (a WebSocket), moved between its two sockets'
// handles without the sockets' streams: what a side reads goes from its
// handle's read callback to the exchange, and from there straight to the
// other side's handle, with no buffering, events or stream state per
// message. The sockets keep the rest: the end of input and read errors
// (handed to their own callback), closing, and any write made while their
// own stream still holds output (which must go out first).
import type { Socket } from 'node:net';
import { HIGH_WATER, readResult, writeTo, type StreamHandle, type WriteOwner } from './client-stream';

const kSide = Symbol('passenger.tunnelSide');

type RelayHandle = StreamHandle & { [kSide]?: TunnelSide };
type RelaySocket = Socket & { [kSide]?: TunnelSide };

/** What a side hands its bytes to, and is told when the other side took its output. */
export interface SideOwner {
  /** Bytes read from this side. */
  read(side: TunnelSide, chunk: Buffer): void;
  /** What was written to this side is out: its peer may be read again. */
  drained(side: TunnelSide): void;
}

// Callbacks shared by every tunnel (no closures: an idle WebSocket should cost little); `this` names the side.
function onRelayRead(this: RelayHandle, buf?: ArrayBuffer): void {
  const side = this[kSide];
  const r = readResult(buf);
  if (typeof r !== 'number' && side !== undefined) side.owner.read(side, r);
  else if (r !== 0) side?.socketRead.call(this, buf);
}
function onSocketData(this: RelaySocket, chunk: Buffer): void {
  const side = this[kSide];
  side?.owner.read(side, chunk);
}
function onSocketDrain(this: RelaySocket): void {
  const side = this[kSide];
  side?.owner.drained(side);
}
const noRead = (): void => undefined;

/** One socket of a tunnel, read and written through its handle. */
export class TunnelSide implements WriteOwner {
  /** The socket's own read callback: the end of input and errors still go to it. */
  readonly socketRead: (this: StreamHandle, buf?: ArrayBuffer) => void;
  private readonly handle: RelayHandle | null;
  /** Bytes written straight to the handle and not yet out. */
  private pending = 0;
  /** A write said to wait: drained() is owed. */
  private waiting = false;

  constructor(readonly sock: Socket, readonly owner: SideOwner) {
    const h = (sock as unknown as { _handle?: RelayHandle | null })._handle ?? null;
    this.handle = h !== null && h.isStreamBase === true ? h : null;
    this.socketRead = this.handle?.onread ?? noRead;
    if (this.handle !== null) {
      this.handle[kSide] = this;
      this.handle.onread = onRelayRead;
    }
    // What the socket's stream read before (or reads without a handle) comes as 'data', and goes the same way.
    (sock as RelaySocket)[kSide] = this;
    sock.on('data', onSocketData);
    sock.on('drain', onSocketDrain);
  }

  /** Output for this side; false: wait for the owner's drained() before writing more. */
  write(chunk: Buffer): boolean {
    const h = this.handle;
    const sock = this.sock;
    // The stream's own queue goes first, and an ended or closed socket answers as it would.
    if (h === null || sock.writableLength > 0 || sock.writableEnded || sock.destroyed) return sock.write(chunk);
    const n = writeTo(h, chunk, this);
    if (n < 0) {
      sock.destroy();
      return false;
    }
    this.pending += n;
    if (this.pending >= HIGH_WATER) this.waiting = true;
    return !this.waiting;
  }

  written(bytes: number, status: number): void {
    this.pending -= bytes;
    if (status < 0) {
      this.sock.destroy();
      return;
    }
    if (this.pending === 0 && this.waiting) {
      this.waiting = false;
      this.owner.drained(this);
    }
  }

  /** Stops reading this side until resume(). */
  pause(): void {
    const h = this.handle;
    if (h === null) {
      this.sock.pause();
      return;
    }
    if (h.reading !== true) return;
    h.reading = false;
    h.readStop();
  }

  resume(): void {
    const h = this.handle;
    if (h === null) {
      this.sock.resume();
      return;
    }
    if (h.reading === true || this.sock.destroyed) return;
    h.reading = true;
    h.readStart();
  }
}
