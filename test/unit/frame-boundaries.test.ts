// Where a close frame may go in a WebSocket byte stream: the frame
// boundaries, whatever the chunks the bytes come in.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameBoundaries } from '../../helper-agent/src/proxy/websocket-frames';

function frame(len: number, masked = false): Buffer {
  const head = len < 126 ? Buffer.from([0x82, len]) : len < 65536 ? Buffer.from([0x82, 126, len >> 8, len & 0xff]) : Buffer.concat([Buffer.from([0x82, 127]), (() => { const b = Buffer.alloc(8); b.writeBigUInt64BE(BigInt(len)); return b; })()]);
  if (masked) head[1] |= 0x80;
  return Buffer.concat([head, Buffer.alloc(masked ? 4 : 0), Buffer.alloc(len, 1)]);
}

test('frame boundaries are found across any split of the stream, for 7-bit, 16-bit and 64-bit lengths, masked or not', () => {
  const frames = [frame(0), frame(5), frame(125), frame(126), frame(300, true), frame(70_000), frame(3, true)];
  const stream = Buffer.concat(frames);
  const ends = new Set<number>();
  let at = 0;
  for (const f of frames) ends.add(at += f.length);
  for (const size of [1, 2, 3, 7, 100, 4096, stream.length]) {
    const fb = new FrameBoundaries();
    for (let i = 0; i < stream.length; i += size) {
      const chunk = stream.subarray(i, Math.min(i + size, stream.length));
      assert.equal(fb.feed(chunk), chunk.length);
      const end = i + chunk.length;
      assert.equal(fb.atBoundary(), ends.has(end), `chunks of ${size}: boundary at ${end}`);
    }
  }
});

test('feed(…, true) stops at the first boundary: what comes after it is left unread', () => {
  const a = frame(10);
  const b = frame(20);
  const fb = new FrameBoundaries();
  fb.feed(a.subarray(0, 4));
  assert.equal(fb.atBoundary(), false);
  const rest = Buffer.concat([a.subarray(4), b]);
  assert.equal(fb.feed(rest, true), a.length - 4, 'up to the end of the first frame');
  assert.equal(fb.atBoundary(), true);
  assert.equal(fb.feed(b, true), 0, 'already at a boundary: nothing more');
});
