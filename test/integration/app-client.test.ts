// The agent's HTTP/1.1 client to app processes, against real servers on real
// sockets: the response shapes apps send, request bodies, connection reuse.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as net from 'node:net';
import * as path from 'node:path';
import { Readable } from 'node:stream';
import { test, type TestContext } from 'node:test';
import { AppClient, type AppRequest, type Endpoint } from '../../helper-agent/src/proxy/app-client';
import { eventually, tmpDir } from '../helpers';

interface Reply { status: number; statusText: string; headers: string[]; body: string }

function send(client: AppClient, req: Partial<AppRequest>): Promise<Reply> {
  return new Promise((resolve, reject) => {
    let got: Omit<Reply, 'body'> | null = null;
    const chunks: Buffer[] = [];
    client.dispatch({ method: 'GET', path: '/', headers: ['host', 'app'], body: null, ...req }, {
      onConnect() {},
      onHeaders(status, headers, _resume, statusText) { got = { status, statusText, headers }; return true; },
      onData(chunk) { chunks.push(Buffer.from(chunk)); return true; },
      onComplete() { resolve({ ...(got as Omit<Reply, 'body'>), body: Buffer.concat(chunks).toString() }); },
      onError: reject,
    });
  });
}

function header(r: Reply, name: string): string | undefined {
  for (let i = 0; i < r.headers.length; i += 2) if (r.headers[i].toLowerCase() === name) return r.headers[i + 1];
  return undefined;
}

async function serve(t: TestContext, server: net.Server): Promise<{ endpoint: Endpoint; connections: () => number }> {
  const socketPath = path.join(tmpDir(t, 'ptest-client-'), 'app.sock');
  let n = 0;
  server.on('connection', () => { n++; });
  await new Promise<void>((resolve) => server.listen(socketPath, resolve));
  t.after(() => new Promise<void>((resolve) => { (server as http.Server).closeAllConnections?.(); server.close(() => resolve()); }));
  return { endpoint: { socketPath }, connections: () => n };
}

test('app client: plain, HEAD, 204, interim 1xx, many headers, and one connection reused throughout', async (t) => {
  const app = http.createServer((req, res) => {
    if (req.url === '/head') return void res.writeHead(200, { 'content-length': '5' }).end(req.method === 'HEAD' ? undefined : 'hello');
    if (req.url === '/204') return void res.writeHead(204).end();
    if (req.url === '/early') {
      res.writeEarlyHints({ link: '</a.css>; rel=preload' });
      return void res.end('after hints');
    }
    if (req.url === '/many') {
      for (let i = 0; i < 60; i++) res.setHeader(`x-h${i}`, String(i));
      return void res.end('many');
    }
    res.setHeader('set-cookie', ['a=1', 'b=2']);
    res.end(`you asked ${req.method} ${req.url}`);
  });
  const { endpoint, connections } = await serve(t, app);
  const client = new AppClient(endpoint);
  t.after(() => client.destroy());

  const plain = await send(client, { path: '/x?y=1' });
  assert.equal(plain.status, 200);
  assert.equal(plain.statusText, 'OK');
  assert.equal(plain.body, 'you asked GET /x?y=1');
  assert.deepEqual(plain.headers.filter((_h, i) => plain.headers[i - 1]?.toLowerCase() === 'set-cookie'), ['a=1', 'b=2']);
  const head = await send(client, { method: 'HEAD', path: '/head' });
  assert.equal(head.status, 200);
  assert.equal(header(head, 'content-length'), '5');
  assert.equal(head.body, '');
  assert.equal((await send(client, { path: '/204' })).status, 204);
  const early = await send(client, { path: '/early' });
  assert.equal(early.status, 200, 'the 103 is not passed on');
  assert.equal(early.body, 'after hints');
  const many = await send(client, { path: '/many' });
  assert.equal(header(many, 'x-h59'), '59');
  assert.equal((await send(client, {})).status, 200);
  assert.equal(connections(), 1, 'one keep-alive connection carried every request');
});

test('app client: request bodies with and without a length; a response that ends with its connection', async (t) => {
  const app = http.createServer((req, res) => {
    let n = 0;
    req.on('data', (c: Buffer) => { n += c.length; });
    req.on('end', () => res.end(`${req.headers['transfer-encoding'] ?? 'length'} ${n}`));
  });
  const { endpoint } = await serve(t, app);
  const client = new AppClient(endpoint);
  t.after(() => client.destroy());
  const chunks = Array.from({ length: 50 }, () => Buffer.alloc(64 * 1024, 'x'));
  const chunked = await send(client, { method: 'POST', body: Readable.from(chunks) });
  assert.equal(chunked.body, `chunked ${50 * 64 * 1024}`);
  const sized = await send(client, { method: 'PUT', headers: ['host', 'app', 'content-length', '11'], body: Readable.from([Buffer.from('hello world')]) });
  assert.equal(sized.body, 'length 11');

  // HTTP/1.0-style: no length, no chunks, the end of the connection ends the body.
  const raw = net.createServer((sock) => sock.once('data', () => sock.end('HTTP/1.1 200 OK\r\nconnection: close\r\n\r\nuntil the end')));
  const closing = new AppClient((await serve(t, raw)).endpoint);
  t.after(() => closing.destroy());
  assert.equal((await send(closing, {})).body, 'until the end');
  assert.equal((await send(closing, {})).body, 'until the end', 'a new connection for the next request');
});

test('app client: errors carry the codes the retry rules read', async (t) => {
  const dir = tmpDir(t, 'ptest-client-');
  const missing = new AppClient({ socketPath: path.join(dir, 'none.sock') });
  await assert.rejects(send(missing, {}), { code: 'ENOENT' });

  const hangUp = net.createServer((sock) => sock.once('data', () => sock.destroy()));
  const dropped = new AppClient((await serve(t, hangUp)).endpoint);
  await assert.rejects(send(dropped, {}), (e: NodeJS.ErrnoException) => e.code === 'E_APP_CONNECTION_LOST' || e.code === 'ECONNRESET');

  const garbage = net.createServer((sock) => sock.once('data', () => sock.write('NOT HTTP AT ALL\r\n\r\n')));
  const confused = new AppClient((await serve(t, garbage)).endpoint);
  await assert.rejects(send(confused, {}), { code: 'E_APP_BAD_RESPONSE' });

  // A handler that throws on the headers (as writeHead does on a header it cannot send) fails its request only.
  const plain = new AppClient((await serve(t, http.createServer((_q, r) => r.end('x')))).endpoint);
  t.after(() => plain.destroy());
  const thrown = await new Promise<Error>((resolve) => plain.dispatch({ method: 'GET', path: '/', headers: [], body: null }, {
    onConnect() {}, onHeaders() { throw new Error('cannot send that header'); }, onData() { return true; }, onComplete() { resolve(new Error('completed')); }, onError: resolve,
  }));
  assert.equal(thrown.message, 'cannot send that header');
  assert.equal((await send(plain, {})).body, 'x', 'the client serves on');

  const gone = new AppClient((await serve(t, http.createServer((_q, r) => r.end('x')))).endpoint);
  gone.destroy();
  await assert.rejects(send(gone, {}), { code: 'E_APP_CONNECTION_LOST' });
});

test('app client: an idle connection is closed by the agent before the app\'s own keep-alive timeout, and the next request opens another', async (t) => {
  const app = http.createServer((_req, res) => res.end('ok'));
  // The app's default keep-alive timeout (5 s) is what the agent must beat: a
  // connection the app closes while a request is on its way to it loses that request.
  const closedBy: string[] = [];
  app.on('connection', (sock: net.Socket) => {
    let ended = false;
    sock.on('end', () => { ended = true; });
    sock.on('close', () => closedBy.push(ended ? 'agent' : 'app'));
  });
  const { endpoint, connections } = await serve(t, app);
  const client = new AppClient(endpoint);
  t.after(() => client.destroy());
  assert.equal((await send(client, {})).body, 'ok');
  await eventually(() => closedBy.length === 1, 15_000, 'the idle connection to close');
  assert.deepEqual(closedBy, ['agent'], 'the agent closed it first');
  assert.equal((await send(client, {})).body, 'ok');
  assert.equal(connections(), 2);
});

test('app client: a request written to a connection the app has already closed fails through onError with a code the retry rules read, and the client serves on', async (t) => {
  // The app answers as if it kept the connection, then closes it at once:
  // the agent reuses it before it has read the end.
  const app = net.createServer((sock) => {
    sock.on('error', () => undefined);
    sock.once('data', () => {
      sock.write('HTTP/1.1 200 OK\r\ncontent-length: 1\r\n\r\nx');
      sock.destroy();
    });
  });
  const { endpoint, connections } = await serve(t, app);
  const client = new AppClient(endpoint);
  t.after(() => client.destroy());
  const second = await new Promise<{ thrown: unknown; result: Promise<Reply> | null }>((resolve) => {
    client.dispatch({ method: 'GET', path: '/', headers: ['host', 'app'], body: null }, {
      onConnect() {},
      onHeaders() { return true; },
      onData() { return true; },
      onComplete() {
        // In the same tick as the first answer: its connection is back in the idle list.
        let result: Promise<Reply> | null = null;
        let thrown: unknown = null;
        try {
          result = send(client, {});
          result.catch(() => undefined);
        } catch (e) {
          thrown = e;
        }
        resolve({ thrown, result });
      },
      onError(e) { throw e; },
    });
  });
  assert.equal(second.thrown, null, 'dispatch does not throw');
  await assert.rejects(second.result as Promise<Reply>, (e: NodeJS.ErrnoException) => ['EPIPE', 'ECONNRESET', 'E_APP_CONNECTION_LOST'].includes(e.code ?? ''));
  assert.equal(connections(), 1, 'the second request went to the first connection');
  assert.equal((await send(client, {})).body, 'x', 'the next request opens a connection of its own');
  assert.equal(connections(), 2);
});
