// Where a WebSocket byte stream may be cut: between two frames. A leaving
// process's WebSockets get their close frame there (forward-upgrade.ts).

/** A server's close frame: status 1001, "going away" (RFC 6455 7.4.1). */
export const GOING_AWAY = Buffer.from([0x88, 0x02, 0x03, 0xe9]);

/**
 * Follows the frame boundaries of one direction of a WebSocket (RFC 6455
 * 5.2), so that a close frame can be put between two frames. It reads only
 * headers (2 to 14 bytes a frame) and skips payloads by their length.
 */
export class FrameBoundaries {
  /** Payload (and mask) bytes of the current frame still to come. */
  private need = 0;
  /** Header bytes read so far of a header split across chunks. */
  private head: number[] = [];

  atBoundary(): boolean {
    return this.need === 0 && this.head.length === 0;
  }

  /** Reads `buf` to its end or, when `stopAtBoundary`, up to the first frame boundary; returns the bytes read. */
  feed(buf: Buffer, stopAtBoundary = false): number {
    let i = 0;
    while (i < buf.length) {
      if (this.need > 0) {
        const n = Math.min(this.need, buf.length - i);
        this.need -= n;
        i += n;
        continue;
      }
      if (stopAtBoundary && this.head.length === 0) return i;
      const h = this.head;
      h.push(buf[i++]);
      if (h.length < 2) continue;
      const len7 = h[1] & 0x7f;
      const ext = len7 === 126 ? 2 : len7 === 127 ? 8 : 0;
      if (h.length < 2 + ext) continue;
      let len = len7;
      if (ext > 0) {
        len = 0;
        for (let k = 2; k < 2 + ext; k++) len = len * 256 + h[k];
      }
      this.need = len + ((h[1] & 0x80) !== 0 ? 4 : 0);
      this.head = [];
    }
    return i;
  }
}
