// How long the request side waits on a client, on each of its sides: the
// parser side (client-http-server.ts), the node:http one (the fallback, and
// where the parser side hands static files) and reply-from's fastify server,
// each run in this process on a loopback port with a keep-alive time of a
// fraction of a second, against raw client sockets. A head that does not
// complete in time gets 408 and the connection closes; an idle connection
// closes without a byte; a request being answered is never cut, and a
// connection used again in time is served.
import assert from 'node:assert/strict';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import * as net from 'node:net';
import { test, type TestContext } from 'node:test';
import { fastifyServer, nodeHttpServer, nodeHttpSide } from '../../helper-agent/src/core/request-server';
import { ClientHttpServer } from '../../helper-agent/src/proxy/client-http-server';
import type { ClientHttpConnection } from '../../helper-agent/src/proxy/client-http';
import { plainResponse, type ClientHttpHandler, type Slot } from '../../helper-agent/src/proxy/client-slot';
import { clientTimeouts } from '../../helper-agent/src/proxy/client-timeouts';
import { PassengerError } from '../../helper-agent/src/errors';

/** The keep-alive time of most cases here. */
const SHORT_MS = 400;
/** How long /slow takes to answer: well past SHORT_MS. */
const SLOW_MS = 3 * SHORT_MS;
/** However loaded the machine, a timed-out connection closes within this. */
const CLOSE_DEADLINE_MS = 10_000;

const GET = (path: string): string => `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

/** Answers /slow after SLOW_MS, anything else at once. */
function nodeHttpListener(req: IncomingMessage, res: ServerResponse): void {
  const body = req.url === '/slow' ? 'slow' : req.url === '/static' ? 'static' : 'ok';
  if (req.url === '/slow') setTimeout(() => res.end(body), SLOW_MS);
  else res.end(body);
}

/** The same for the parser side; /static goes on to `toNode`, as a static file does. */
class Handler implements ClientHttpHandler {
  constructor(private readonly toNode: Server | null) {}
  request(conn: ClientHttpConnection, slot: Slot): void {
    const answer = (body: string): void => conn.end(slot, plainResponse(200, slot.keepAlive, '', body, false));
    if (slot.req.url === '/refuse') {
      // As the forwarder answers before a body is over: the rest is dropped, the connection closes after it.
      conn.dropBody(slot);
      slot.keepAlive = false;
      conn.end(slot, plainResponse(401, false, '', 'no', false));
    } else if (slot.req.url === '/slow') setTimeout(answer, SLOW_MS, 'slow');
    else answer('ok');
  }
  handsOver(req: { url: string }): boolean {
    return this.toNode !== null && req.url === '/static';
  }
  toNodeHttp(sock: net.Socket, head: Buffer): void {
    // As the request server hands a connection on.
    sock.on('error', () => undefined);
    sock.unshift(head);
    this.toNode?.emit('connection', sock);
  }
  upgrade(_req: unknown, sock: net.Socket): void {
    sock.destroy();
  }
}

async function nodeHttp(t: TestContext, keepAliveMs: number, listens: boolean): Promise<Server> {
  const server = await nodeHttpServer(nodeHttpListener, listens, clientTimeouts(keepAliveMs));
  t.after(() => {
    server.closeAllConnections();
    server.close();
  });
  return server;
}

/** Starts a side with `keepAliveMs`; resolves with its port. */
const SIDES = {
  builtin: async (t: TestContext, keepAliveMs: number): Promise<number> => {
    const server = new ClientHttpServer(new Handler(null), undefined, clientTimeouts(keepAliveMs));
    await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
    t.after(() => { server.destroy(); return server.close(); });
    return (server.server.address() as net.AddressInfo).port;
  },
  'node-http': async (t: TestContext, keepAliveMs: number): Promise<number> => {
    const server = await nodeHttp(t, keepAliveMs, true);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  },
  // `--forwarder reply-from`: its fastify server, with a route in place of the forwarding.
  'reply-from': async (t: TestContext, keepAliveMs: number): Promise<number> => {
    const app = await fastifyServer(clientTimeouts(keepAliveMs));
    app.get('/*', (req, reply) => { nodeHttpListener(req.raw, reply.hijack().raw); });
    await app.listen({ port: 0, host: '127.0.0.1' });
    t.after(() => {
      app.server.closeAllConnections();
      return app.close();
    });
    return (app.server.address() as net.AddressInfo).port;
  },
};

interface Answer { status: number; body: string; end: number }

/** The complete responses (all framed by content-length here) at the start of `text`; `end`: where each ends. */
function answers(text: string): Answer[] {
  const out: Answer[] = [];
  let at = 0;
  for (;;) {
    const head = text.indexOf('\r\n\r\n', at);
    if (head === -1) break;
    const fields = text.slice(at, head);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(fields)?.[1] ?? 0);
    if (head + 4 + length > text.length) break;
    at = head + 4 + length;
    out.push({ status: Number(/^HTTP\/1\.1 (\d{3}) /.exec(fields)?.[1]), body: text.slice(head + 4, at), end: at });
  }
  return out;
}

interface Raw {
  sock: net.Socket;
  text(): string;
  /** Settles when the server closed the connection, or rejects after CLOSE_DEADLINE_MS. */
  closed(): Promise<void>;
  /** Runs `fn` once, as soon as `n` complete answers are in. */
  onAnswers(n: number, fn: () => void): void;
  /** Writes `bytes` one at a time, every `everyMs`, until the connection closes. */
  trickle(bytes: string, everyMs: number): void;
}

/** A raw client that writes `first` once connected; it is destroyed when the test ends at the latest. */
function raw(t: TestContext, port: number, first: string): Raw {
  let got = '';
  const waiting: { n: number; fn: () => void }[] = [];
  const sock = net.connect(port, '127.0.0.1', () => { if (first) sock.write(first, 'latin1'); });
  sock.setNoDelay(true);
  sock.setEncoding('latin1');
  sock.on('error', () => undefined);
  sock.on('data', (d: string) => {
    got += d;
    const n = answers(got).length;
    for (const w of waiting.filter((x) => x.n <= n)) {
      waiting.splice(waiting.indexOf(w), 1);
      w.fn();
    }
  });
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  let timer: NodeJS.Timeout | undefined;
  t.after(() => {
    clearInterval(timer);
    sock.destroy();
  });
  return {
    sock,
    text: () => got,
    closed: () => within(closed, CLOSE_DEADLINE_MS, 'the server to close the connection'),
    onAnswers: (n, fn) => waiting.push({ n, fn }),
    trickle: (bytes, everyMs) => {
      let i = 0;
      timer = setInterval(() => {
        if (sock.destroyed || i === bytes.length) clearInterval(timer);
        else sock.write(bytes[i++], 'latin1');
      }, everyMs);
    },
  };
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms); });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}

/** A head that never completes, however long it is trickled. */
const ENDLESS_HEAD = `GET / HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(8000)}`;

function statuses(c: Raw): number[] {
  return answers(c.text()).map((a) => a.status);
}

for (const [side, start] of Object.entries(SIDES)) {
  test(`${side}: a head that does not complete in time gets 408 and the connection closes: sent in part, or trickled a byte at a time`, async (t) => {
    const port = await start(t, SHORT_MS);
    const part = raw(t, port, 'GET / HTTP/1.1\r\nHost: x\r\nX-Wa');
    const trickled = raw(t, port, '');
    trickled.trickle(ENDLESS_HEAD, SHORT_MS / 10);
    await Promise.all([part.closed(), trickled.closed()]);
    for (const c of [part, trickled]) {
      assert.deepEqual(statuses(c), [408], c.text());
      assert.equal(answers(c.text())[0].end, c.text().length, 'nothing after the 408');
      assert.match(c.text(), /\r\nconnection: close\r\n/i);
    }
  });

  test(`${side}: after an answer, a keep-alive connection left idle closes without a byte more; one whose next head stops halfway, or trickles, gets 408`, async (t) => {
    const port = await start(t, SHORT_MS);
    const idle = raw(t, port, GET('/'));
    const halfway = raw(t, port, GET('/'));
    halfway.onAnswers(1, () => halfway.sock.write('GET / HTTP/1.1\r\nHo'));
    const trickled = raw(t, port, GET('/'));
    trickled.onAnswers(1, () => trickled.trickle(ENDLESS_HEAD, SHORT_MS / 10));
    // One that never sent a byte is idle too.
    const silent = raw(t, port, '');
    await Promise.all([idle.closed(), halfway.closed(), trickled.closed(), silent.closed()]);
    assert.deepEqual(answers(idle.text()).map((a) => [a.status, a.body]), [[200, 'ok']]);
    assert.equal(answers(idle.text())[0].end, idle.text().length, 'nothing after the answer');
    assert.match(idle.text(), /\r\nconnection: keep-alive\r\n/i);
    assert.deepEqual(statuses(halfway), [200, 408], halfway.text());
    assert.deepEqual(statuses(trickled), [200, 408], trickled.text());
    assert.equal(silent.text(), '');
  });

  test(`${side}: a request answered slower than the timeout is not cut, on a new connection or a reused one: its answer arrives whole`, async (t) => {
    const port = await start(t, SHORT_MS);
    const c = raw(t, port, GET('/slow'));
    // The next one goes as soon as the first answer is in, well within the keep-alive time.
    c.onAnswers(1, () => c.sock.write(GET('/slow')));
    // Once both are answered, the connection is idle and times out.
    await c.closed();
    assert.deepEqual(answers(c.text()).map((a) => [a.status, a.body]), [[200, 'slow'], [200, 'slow']]);
    assert.equal(answers(c.text())[1].end, c.text().length);
  });

  test(`${side}: a head pipelined behind a request answered slower than the timeout does not cut that answer; it gets 408 once the connection is idle`, async (t) => {
    const port = await start(t, SHORT_MS);
    const c = raw(t, port, `${GET('/slow')}GET / HT`);
    await c.closed();
    assert.deepEqual(answers(c.text()).map((a) => [a.status, a.body]), [[200, 'slow'], [408, '']]);
  });

  test(`${side}: a keep-alive connection that sends its next request within the timeout is served, again and again past it`, async (t) => {
    const keepAliveMs = 1_500;
    const port = await start(t, keepAliveMs);
    const ROUNDS = 12;
    const c = raw(t, port, GET('/'));
    // Each request goes a tenth of the keep-alive time after the last answer: together well past it.
    for (let n = 1; n < ROUNDS; n++) c.onAnswers(n, () => setTimeout(() => c.sock.write(GET('/')), keepAliveMs / 10));
    await c.closed();
    assert.deepEqual(statuses(c), Array(ROUNDS).fill(200));
    assert.equal(answers(c.text())[ROUNDS - 1].end, c.text().length);
  });
}

test('builtin: a body refused before its end is read and dropped for the keep-alive time at most: one that ends is followed by the close at once, one that trickles on is closed', async (t) => {
  const post = (bytes: number): string => `POST /refuse HTTP/1.1\r\nHost: x\r\nContent-Length: ${bytes}\r\n\r\n`;
  // Its keep-alive time is well past the close deadline: the end of the body closes the connection, not the sweep.
  const ends = raw(t, await SIDES.builtin(t, 5 * CLOSE_DEADLINE_MS), `${post(10)}12345`);
  ends.onAnswers(1, () => ends.sock.write('67890'));
  const endless = raw(t, await SIDES.builtin(t, SHORT_MS), post(1e9));
  endless.onAnswers(1, () => endless.trickle('x'.repeat(10_000), SHORT_MS / 10));
  await Promise.all([ends.closed(), endless.closed()]);
  for (const c of [ends, endless]) {
    assert.deepEqual(answers(c.text()).map((a) => [a.status, a.body]), [[401, 'no']], c.text());
    assert.equal(answers(c.text())[0].end, c.text().length, 'nothing after the answer');
    assert.match(c.text(), /\r\nconnection: close\r\n/i);
  }
  // The trickle went on past the answer and was cut by the keep-alive time, not by its own end.
  assert.ok(endless.sock.bytesWritten > post(1e9).length, 'body bytes were sent after the answer');
});

test('node-http: a body answered before its end by the agent (a refused app, a refused Expect) is read and dropped for the keep-alive time at most', async (t) => {
  // The forwarder of the node:http side, routing nothing: every request is refused before its body is read.
  const start = async (keepAliveMs: number): Promise<number> => {
    const { server } = await nodeHttpSide({ groupFor: () => new PassengerError('E_APP_ROOT_DENIED', 'refused'), log: { warn: () => undefined } }, true, clientTimeouts(keepAliveMs));
    t.after(() => {
      server.closeAllConnections();
      server.close();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return (server.address() as net.AddressInfo).port;
  };
  const post = (bytes: number, extra = ''): string => `POST / HTTP/1.1\r\nHost: x\r\n${extra}Content-Length: ${bytes}\r\n\r\n`;
  // Its keep-alive time is well past the close deadline: the end of the body closes the connection, not a timer.
  const ends = raw(t, await start(5 * CLOSE_DEADLINE_MS), `${post(10)}12345`);
  ends.onAnswers(1, () => ends.sock.write('67890'));
  const short = await start(SHORT_MS);
  const endless = raw(t, short, post(1e9));
  endless.onAnswers(1, () => endless.trickle('x'.repeat(10_000), SHORT_MS / 10));
  const expect = raw(t, short, post(1e9, 'Expect: something-else\r\n'));
  expect.onAnswers(1, () => expect.trickle('x'.repeat(10_000), SHORT_MS / 10));
  await Promise.all([ends.closed(), endless.closed(), expect.closed()]);
  for (const [c, status] of [[ends, 403], [endless, 403], [expect, 417]] as const) {
    assert.deepEqual(statuses(c), [status], c.text());
    assert.equal(answers(c.text())[0].end, c.text().length, 'nothing after the answer');
    assert.match(c.text(), /\r\nconnection: close\r\n/i);
  }
  // The trickles went on past the answers, and were cut by the keep-alive time.
  assert.ok(endless.sock.bytesWritten > post(1e9).length, 'body bytes were sent after the 403');
  assert.ok(expect.sock.bytesWritten > post(1e9, 'Expect: something-else\r\n').length, 'body bytes were sent after the 417');
});

test('builtin: a connection handed on to node:http (a static file) keeps the same timeouts there', async (t) => {
  const timeouts = clientTimeouts(SHORT_MS);
  // Never listened on, as the request server's own: it is only handed connections.
  const toNode = await nodeHttp(t, SHORT_MS, false);
  const server = new ClientHttpServer(new Handler(toNode), undefined, timeouts);
  await new Promise<void>((resolve) => server.server.listen(0, '127.0.0.1', resolve));
  t.after(() => { server.destroy(); return server.close(); });
  const port = (server.server.address() as net.AddressInfo).port;
  const idle = raw(t, port, GET('/static'));
  const halfway = raw(t, port, GET('/static'));
  halfway.onAnswers(1, () => halfway.sock.write('GET / HTTP/1.1\r\nHo'));
  const trickled = raw(t, port, GET('/static'));
  trickled.onAnswers(1, () => trickled.trickle(ENDLESS_HEAD, SHORT_MS / 10));
  const slow = raw(t, port, GET('/static'));
  slow.onAnswers(1, () => slow.sock.write(GET('/slow')));
  await Promise.all([idle.closed(), halfway.closed(), trickled.closed(), slow.closed()]);
  assert.deepEqual(answers(idle.text()).map((a) => [a.status, a.body]), [[200, 'static']]);
  assert.equal(answers(idle.text())[0].end, idle.text().length, 'nothing after the answer');
  assert.deepEqual(statuses(halfway), [200, 408], halfway.text());
  assert.deepEqual(statuses(trickled), [200, 408], trickled.text());
  assert.deepEqual(answers(slow.text()).map((a) => a.body), ['static', 'slow']);
});
