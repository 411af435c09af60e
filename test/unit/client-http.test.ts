// The parser request side's connection layer (proxy/client-http.ts,
// client-http-server.ts, client-stream.ts) in this process, with a handler
// that answers by itself, against raw loopback clients that misbehave: what
// a connection keeps, and what it hands on, when a client leaves at the
// wrong moment or keeps sending after its input ended.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import { test, type TestContext } from 'node:test';
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { ClientHttpServer } from '../../helper-agent/src/proxy/client-http-server';
import { parsersInUse, type ClientHttpConnection } from '../../helper-agent/src/proxy/client-http';
import { plainResponse, type ClientHttpHandler, type Slot } from '../../helper-agent/src/proxy/client-slot';
import { eventually, sleep } from '../helpers';

interface Held { conn: ClientHttpConnection; slot: Slot }

/** A handler that answers every request with 200 at once, except /slow ones, which wait for the test. */
class Handler implements ClientHttpHandler {
  readonly slow: Held[] = [];
  upgrades = 0;
  toNode = 0;
  taken = 0;
  request(conn: ClientHttpConnection, slot: Slot): void {
    this.taken++;
    if (slot.req.url === '/slow') this.slow.push({ conn, slot });
    else conn.end(slot, plainResponse(200, slot.keepAlive, '', 'ok', false));
  }
  handsOver(req: { url: string }): boolean {
    return req.url === '/static';
  }
  toNodeHttp(sock: net.Socket): void {
    this.toNode++;
    sock.on('error', () => undefined);
    sock.end('HTTP/1.1 200 OK\r\ncontent-length: 6\r\nconnection: close\r\n\r\nstatic');
  }
  upgrade(_req: unknown, sock: net.Socket): void {
    this.upgrades++;
    sock.on('error', () => undefined);
    sock.end('HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: test\r\n\r\n');
  }
}

async function listening(t: TestContext, h: Handler): Promise<{ port: number; server: ClientHttpServer }> {
  const server = new ClientHttpServer(h);
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.destroy(); return server.close(); });
  return { port: (server.server.address() as net.AddressInfo).port, server };
}

/** A raw client that writes `bytes` once connected; resolves with all it got when the server closes. */
function exchange(t: TestContext, port: number, bytes: string): { sock: net.Socket; got: Promise<string> } {
  const sock = net.connect(port, '127.0.0.1', () => sock.write(bytes, 'latin1'));
  t.after(() => sock.destroy());
  let text = '';
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => { text += d; });
  sock.on('error', () => undefined);
  return { sock, got: new Promise((resolve) => sock.on('close', () => resolve(text))) };
}

const GET_SLOW = 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\n';
const UPGRADE = 'GET /tunnel HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: test\r\n\r\n';

test('an upgrade or static file pipelined behind a request whose client reset is not handed on; the connection closes', async (t) => {
  const h = new Handler();
  const { port } = await listening(t, h);
  for (const next of [UPGRADE, 'GET /static HTTP/1.1\r\nHost: x\r\n\r\n']) {
    const c = exchange(t, port, `GET /slow HTTP/1.1\r\nHost: x\r\n\r\n${next}`);
    await eventually(() => h.slow.length === 1, 10_000, 'the first request');
    // The client resets while the connection reads nothing (it waits to hand the connection on).
    c.sock.resetAndDestroy();
    await c.got;
    const { conn, slot } = h.slow.pop() as Held;
    // The answer's write fails: the connection goes, and nothing is handed on.
    conn.end(slot, plainResponse(200, true, '', 'late', false));
    assert.equal(conn.destroyed, true);
    assert.deepEqual([h.upgrades, h.toNode], [0, 0]);
  }
  await eventually(() => parsersInUse() === 0, 10_000, 'every parser given back');
});

test('every parser goes back: after plain requests, upgrades and static files on connections that closed, none is held', async (t) => {
  const h = new Handler();
  const { port } = await listening(t, h);
  const clients = [];
  for (let i = 0; i < 30; i++) {
    clients.push(exchange(t, port, 'GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n').got);
    clients.push(exchange(t, port, UPGRADE).got);
    clients.push(exchange(t, port, 'GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /static HTTP/1.1\r\nHost: x\r\n\r\n').got);
  }
  const got = await Promise.all(clients);
  assert.equal(got.filter((x) => x.startsWith('HTTP/1.1 101 ')).length, 30);
  assert.equal(got.filter((x) => x.endsWith('static')).length, 30);
  assert.deepEqual([h.upgrades, h.toNode], [30, 30]);
  await eventually(() => parsersInUse() === 0, 10_000, `every parser given back (${parsersInUse()} held)`);
});

test('heads a client keeps sending after its input ended (a refused request behind a slow one) are not kept', async (t) => {
  v8.setFlagsFromString('--expose-gc');
  const gc = vm.runInNewContext('gc') as () => void;
  const h = new Handler();
  const { port } = await listening(t, h);
  // HTTP/1.1 without Host: refused (400) once the slow request before it is answered; the input ends there.
  const c = exchange(t, port, 'GET /slow HTTP/1.1\r\nHost: x\r\n\r\nGET /nohost HTTP/1.1\r\n\r\n');
  await eventually(() => h.slow.length === 1, 10_000, 'the first request');
  gc();
  const before = process.memoryUsage().heapUsed;
  // Heads of more than 32 fields reach the connection in pieces before they are complete.
  const head = `GET / HTTP/1.1\r\n${Array.from({ length: 40 }, (_, i) => `x-h${i}: ${'v'.repeat(300)}\r\n`).join('')}\r\n`;
  const HEADS = 2000;
  for (let i = 0; i < HEADS; i++) {
    c.sock.write(head);
    // One head per turn of the loop: each arrives in a read of its own.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await eventually(() => c.sock.writableLength === 0, 10_000, 'every head sent');
  await sleep(100);
  gc();
  const grown = process.memoryUsage().heapUsed - before;
  t.diagnostic(`heap grew by ${(grown / 1048576).toFixed(1)} MB while ${(HEADS * head.length / 1048576).toFixed(1)} MB of heads came`);
  assert.ok(grown < 8 * 1048576, `the heap grew by ${(grown / 1048576).toFixed(1)} MB`);
  const { conn, slot } = h.slow.pop() as Held;
  conn.end(slot, plainResponse(200, true, '', 'slow', false));
  const text = await c.got;
  assert.deepEqual([...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => m[1]), ['200', '400']);
});

test('a client that pipelines 2,000 requests in one packet has 32 taken: the 32nd is answered with Connection: close', async (t) => {
  const h = new Handler();
  const { port } = await listening(t, h);
  const c = exchange(t, port, GET_SLOW + 'GET /a HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2000));
  await eventually(() => h.slow.length === 1, 10_000, 'the first request');
  await eventually(() => h.taken >= 32, 10_000, 'the requests read');
  assert.equal(h.taken, 32);
  const { conn, slot } = h.slow.pop() as Held;
  conn.end(slot, plainResponse(200, true, '', 'slow', false));
  const text = await c.got;
  const connection = [...text.matchAll(/connection: (\S+)\r\n/g)].map((m) => m[1]);
  assert.equal(connection.length, 32);
  assert.deepEqual([connection[30], connection[31]], ['keep-alive', 'close']);
});
