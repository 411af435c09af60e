// What the request side itself answers and how it frames what passes, on
// raw connections: the default side (requests read with Node's HTTP parser
// on a plain socket server) and the node:http fallback (--forwarder
// node-http) must behave alike. Malformed requests get 400, an oversize head
// 431; pipelined requests come back in order, at most 32 taken ahead of
// their answers; a chunked request body streams to the app after a 100
// Continue; a response without a length goes chunked to HTTP/1.1 and ends
// with the connection for HTTP/1.0.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { appCopy, eventually, request, startServer, stopAfter } from '../helpers';

interface Raw {
  sock: net.Socket;
  /** Everything received so far (latin1). */
  text(): string;
  /** Settles when the server closed the connection. */
  closed: Promise<void>;
}

/** A raw connection that writes `first` at once; it is destroyed at the end of the test at the latest. */
function raw(t: TestContext, port: number, first: string): Raw {
  let got = '';
  const sock = net.connect(port, '127.0.0.1', () => sock.write(first, 'latin1'));
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => { got += d; });
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  stopAfter(t, () => sock.destroy());
  return { sock, text: () => got, closed };
}

interface Answer {
  status: number;
  /** Lowercase names. */
  headers: Record<string, string>;
  body: string;
  framing: 'length' | 'chunked' | 'close' | 'none';
}

/**
 * The complete responses at the start of `text`, in order (a last one cut
 * short is left out). Bodies are framed as HTTP/1.1 says: by length, by
 * chunks, or (`closed`) by the end of the connection; 1xx answers have none.
 */
function answers(text: string, closed = false): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  while (at < text.length) {
    const end = text.indexOf('\r\n\r\n', at);
    if (end === -1) break;
    const [line, ...fields] = text.slice(at, end).split('\r\n');
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(line)?.[1]);
    const headers: Record<string, string> = {};
    for (const f of fields) headers[f.slice(0, f.indexOf(':')).toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
    let pos = end + 4;
    let body = '';
    let framing: Answer['framing'];
    if (status < 200 || status === 204 || status === 304) {
      framing = 'none';
    } else if (headers['content-length'] !== undefined) {
      framing = 'length';
      const n = Number(headers['content-length']);
      if (pos + n > text.length) break;
      body = text.slice(pos, pos + n);
      pos += n;
    } else if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
      framing = 'chunked';
      let complete = false;
      for (;;) {
        const eol = text.indexOf('\r\n', pos);
        if (eol === -1) break;
        const size = parseInt(text.slice(pos, eol), 16);
        if (size === 0) {
          if (text.startsWith('\r\n', eol + 2)) { pos = eol + 4; complete = true; }
          break;
        }
        if (eol + 2 + size + 2 > text.length) break;
        body += text.slice(eol + 2, eol + 2 + size);
        pos = eol + 2 + size + 2;
      }
      if (!complete) break;
    } else {
      if (!closed) break;
      framing = 'close';
      body = text.slice(pos);
      pos = text.length;
    }
    out.push({ status, headers, body, framing });
    at = pos;
  }
  return out;
}

/** One write of 64 KB of small requests behind a slow one: 32 are taken, the 32nd closes the connection, the app sees no more. */
async function pipelinedPast32(t: TestContext, forwarder: string): Promise<void> {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const one = 'GET /pid HTTP/1.1\r\nHost: x\r\n\r\n';
  // The first one keeps every answer behind it waiting while the rest is read.
  const c = raw(t, s.port, 'GET /sleep?ms=1000 HTTP/1.1\r\nHost: x\r\n\r\n' + one.repeat(Math.floor(64 * 1024 / one.length)));
  await c.closed;
  const got = answers(c.text(), true);
  assert.equal(got.length, 32);
  assert.ok(got.every((a) => a.status === 200));
  assert.deepEqual([got[30].headers.connection, got[31].headers.connection], ['keep-alive', 'close']);
  const processed = (await s.status()).groups[0].processes.reduce((n, p) => n + p.processed, 0);
  assert.equal(processed, 32, 'the app saw the 32 taken, no more');
}

for (const forwarder of ['builtin', 'node-http'] as const) {
  test(`${forwarder}: malformed requests get 400, an oversize head 431, and the server serves on`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    const cases: [string, RegExp][] = [
      ['GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['NOT A REQUEST\r\n\r\n', /^HTTP\/1\.1 400 /],
      ['GET / HTTP/1.1\r\nConnection: close\r\n\r\n', /^HTTP\/1\.1 400 /], // HTTP/1.1 without Host
      [`GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20 * 1024)}\r\n\r\n`, /^HTTP\/1\.1 431 /],
    ];
    for (const [bytes, expected] of cases) {
      const c = raw(t, s.port, bytes);
      await c.closed;
      assert.match(c.text(), expected, JSON.stringify(bytes.slice(0, 60)));
    }
    // A malformed request after a good one on the same connection ends it with a 400
    // (the default side answers the good one first; node:http drops it).
    const c = raw(t, s.port, 'GET /pid HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n');
    await c.closed;
    const got = answers(c.text(), true).map((a) => a.status);
    assert.deepEqual(got, forwarder === 'builtin' ? [200, 400] : [400], c.text());
    assert.equal((await request(s.port, '/pid')).status, 200);
  });

  test(`${forwarder}: pipelined requests are answered in order on a connection that stays open`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    const c = raw(t, s.port, ['/sleep?ms=400', '/pid', '/sleep?ms=10', '/chunked'].map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
    await eventually(() => answers(c.text()).length === 4, 20_000, 'four answers');
    const got = answers(c.text());
    assert.deepEqual(got.map((a) => a.status), [200, 200, 200, 200]);
    assert.match(got[0].body, /^slept 400 in \d+$/);
    assert.match(got[1].body, /^\d+$/);
    assert.match(got[2].body, /^slept 10 in \d+$/);
    assert.deepEqual([got[3].framing, got[3].body], ['chunked', 'one,two']);
    assert.equal(c.sock.destroyed, false, 'the connection stays open');
    c.sock.write('GET /pid HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n');
    await c.closed;
    const all = answers(c.text(), true);
    assert.equal(all.length, 5);
    assert.equal(all[4].headers.connection, 'close');
  });

  test(`${forwarder}: a client that pipelines 64 KB of requests in one write has 32 taken: the 32nd is answered with Connection: close, the rest reach no app`, (t) => pipelinedPast32(t, forwarder));

  test(`${forwarder}: a chunked request body streams to the app after a 100 Continue`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    const c = raw(t, s.port, 'POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n');
    await eventually(() => c.text().startsWith('HTTP/1.1 100 Continue\r\n\r\n'), 20_000, 'the 100 Continue');
    assert.doesNotMatch(c.text(), /HTTP\/1\.1 200/, 'no answer before the body');
    c.sock.write('5\r\nhello\r\n');
    c.sock.write(`${(70_000).toString(16)}\r\n${'b'.repeat(70_000)}\r\n0\r\n\r\n`);
    await eventually(() => answers(c.text()).length === 2, 20_000, 'the app to count the body');
    assert.deepEqual(answers(c.text()).map((a) => [a.status, a.body]), [[100, ''], [200, '70005']]);
  });

  test(`${forwarder}: HTTP/1.0: a response without a length ends with the connection; keep-alive is kept when asked for`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    const c = raw(t, s.port, 'GET /chunked HTTP/1.0\r\n\r\n');
    await c.closed;
    assert.deepEqual(answers(c.text(), true).map((a) => [a.status, a.framing, a.body]), [[200, 'close', 'one,two']]);
    // A response with a length keeps an HTTP/1.0 connection that asked for keep-alive.
    const k = raw(t, s.port, 'GET /download?mb=0 HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /download?mb=0 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    await eventually(() => answers(k.text()).length === 2, 20_000, 'two answers');
    assert.deepEqual(answers(k.text()).map((a) => [a.status, a.headers.connection]), [[200, 'keep-alive'], [200, 'keep-alive']]);
    k.sock.write('GET /download?mb=0 HTTP/1.0\r\n\r\n');
    await k.closed;
    assert.equal(answers(k.text(), true).length, 3);
  });
}

test('direct: static files and app requests share a keep-alive connection', async (t) => {
  const dir = appCopy(t, 'static-site');
  fs.mkdirSync(path.join(dir, 'public'), { recursive: true });
  fs.writeFileSync(path.join(dir, 'public', 'file.txt'), 'from public\n');
  const s = await startServer(t, dir, []);
  const c = raw(t, s.port, ['/a', '/file.txt', '/b'].map((p) => `GET ${p} HTTP/1.1\r\nHost: x\r\n\r\n`).join(''));
  await eventually(() => answers(c.text()).length === 3, 20_000, 'three answers');
  assert.deepEqual(answers(c.text()).map((a) => a.body), ['app saw GET /a\n', 'from public\n', 'app saw GET /b\n']);
  assert.equal(c.sock.destroyed, false);
});

test('builtin: keep-alive connections idle past two sweeps serve on: pipelined requests, a body after 100 Continue, a head in pieces, a malformed request', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  const first = 'GET /pid HTTP/1.1\r\nHost: x\r\n\r\n';
  const conns = Array.from({ length: 4 }, () => raw(t, s.port, first));
  await eventually(() => conns.every((c) => answers(c.text()).length === 1), 20_000, 'the first answers');
  // The connections wait through two of the server's 5 s sweeps, which park an idle connection's parser.
  await new Promise((resolve) => setTimeout(resolve, 11_000));
  const [a, b, c, d] = conns;
  a.sock.write('GET /sleep?ms=50 HTTP/1.1\r\nHost: x\r\n\r\nPOST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhelloGET /chunked HTTP/1.1\r\nHost: x\r\n\r\n');
  b.sock.write('POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: 70000\r\nExpect: 100-continue\r\n\r\n');
  c.sock.write('GET /pi');
  d.sock.write('GET / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n');
  await eventually(() => answers(a.text()).length === 4, 20_000, 'three more answers on the pipelining connection');
  assert.deepEqual(answers(a.text()).slice(1).map((x) => [x.status, x.body.replace(/\d+$/, 'N')]), [[200, 'slept 50 in N'], [200, 'N'], [200, 'one,two']]);
  assert.equal(answers(a.text())[2].body, '5');
  await eventually(() => b.text().includes('HTTP/1.1 100 Continue'), 20_000, 'the 100 Continue');
  b.sock.write('b'.repeat(70_000));
  await eventually(() => answers(b.text()).length === 3, 20_000, 'the upload counted');
  assert.deepEqual(answers(b.text()).slice(1).map((x) => [x.status, x.body]), [[100, ''], [200, '70000']]);
  await new Promise((resolve) => setTimeout(resolve, 100));
  c.sock.write('d HTTP/1.1\r\nHost: x\r\n\r\n');
  await eventually(() => answers(c.text()).length === 2, 20_000, 'the request sent in two pieces');
  assert.equal(answers(c.text())[1].status, 200);
  await d.closed;
  assert.deepEqual(answers(d.text(), true).map((x) => x.status), [200, 400]);
  for (const x of [a, b, c]) assert.equal(x.sock.destroyed, false, 'the connection stays open');
});

// The fastify path takes the same 32 (its server is node:http's).
test('reply-from: a client that pipelines 64 KB of requests in one write has 32 taken: the 32nd is answered with Connection: close, the rest reach no app', (t) => pipelinedPast32(t, 'reply-from'));
