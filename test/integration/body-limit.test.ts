// The request body limit a web server sends in X-Passenger-Max-Body-Size
// (the Apache snippets do): a body that passes it gets 413 and the app's
// request is cut off, or, once the app has answered, the response is cut
// short; the app never takes part of a body for all of it. Raw connections
// to the agent's socket, as the web server makes them, on both request sides;
// standalone, where no web server speaks for the client, the header is not
// taken.
import assert from 'node:assert/strict';
import * as net from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { BIN, appCopy, assertLogged, eventually, runCli, startServer, stopAfter, tmpDir } from '../helpers';
import { startAgent, webApp, type Agent } from '../e2e/web-servers';

const LIMIT = 10 * 1024;

interface Raw {
  sock: net.Socket;
  text(): string;
  /** Settles when the agent closed the connection. */
  closed: Promise<void>;
}

/** A connection to the agent's socket, destroyed at the end of the test at the latest. */
function connect(t: TestContext, to: { socket?: string; port?: number }): Promise<Raw> {
  let got = '';
  const sock = to.socket !== undefined ? net.connect(to.socket) : net.connect(to.port as number, '127.0.0.1');
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => { got += d; });
  sock.on('error', () => undefined);
  const closed = new Promise<void>((resolve) => sock.on('close', () => resolve()));
  stopAfter(t, () => sock.destroy());
  return new Promise((resolve, reject) => {
    sock.once('connect', () => resolve({ sock, text: () => got, closed }));
    sock.once('error', reject);
  });
}

function head(urlPath: string, headers: Record<string, string>): string {
  return `POST ${urlPath} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`;
}

/** `bytes` of body as chunks of at most 4 KB. */
function chunks(bytes: number): string {
  let s = '';
  for (let left = bytes; left > 0; left -= 4096) {
    const n = Math.min(left, 4096);
    s += `${n.toString(16)}\r\n${'b'.repeat(n)}\r\n`;
  }
  return s;
}
const LAST = '0\r\n\r\n';

/** The response (with a length or chunked) ends with `body`. */
function endsWith(text: string, body: string): boolean {
  return new RegExp(`\r\n\r\n(?:[0-9a-f]+\r\n)?${body}(?:\r\n0\r\n\r\n)?$`).test(text);
}

/** The app's log lines about its uploads. */
function uploads(agent: Pick<Agent, 'output'>): string[] {
  return agent.output().match(/upload (?:begun|ended after \d+ bytes|aborted after \d+ bytes)/g) ?? [];
}

for (const side of ['builtin', 'node-http'] as const) {
  test(`${side}: a chunked body past the web server's limit gets 413 and the app's request is cut off; one under it passes whole`, async (t) => {
    const dir = tmpDir(t, `ptest-bodylimit-${side}-`);
    const app = webApp(t, dir);
    const agent = await startAgent(t, dir, dir, ['--forwarder', side, '--min-instances', '1']);
    const web = { 'X-Passenger-Document-Root': path.join(app, 'public'), 'X-Passenger-Max-Body-Size': String(LIMIT) };

    // Under the limit: the whole body reaches the app.
    const small = await connect(t, { socket: agent.socket });
    small.sock.write(head('/upload-seen', web) + chunks(LIMIT) + LAST);
    await eventually(() => endsWith(small.text(), '10240'), 60_000, 'the app to count the whole body');
    assert.match(small.text(), /^HTTP\/1\.1 200 /);
    await eventually(() => uploads(agent).includes(`upload ended after ${LIMIT} bytes`), 15_000, 'the app log');

    // Past it, while the app reads: part of the body reaches it, then 413.
    const big = await connect(t, { socket: agent.socket });
    big.sock.write(head('/upload-seen', web) + chunks(8192));
    await eventually(() => uploads(agent).filter((u) => u === 'upload begun').length === 2, 15_000, 'the app to take the request');
    big.sock.write(chunks(50_000 - 8192) + LAST);
    await big.closed;
    assert.match(big.text(), /^HTTP\/1\.1 413 /, big.text());
    assert.match(big.text(), /\r\nconnection: close\r\n/i);
    const cut = await eventually(() => uploads(agent).find((u) => u.startsWith('upload aborted')), 15_000, 'the app to see its request cut off');
    assert.ok(Number(/\d+/.exec(cut)?.[0]) <= LIMIT, cut);
    assert.deepEqual(uploads(agent).filter((u) => u.startsWith('upload ended')), [`upload ended after ${LIMIT} bytes`], 'no body past the limit ended in the app');
    await assertLogged(() => agent.output(), /the request body passed 10240 bytes \(the web server's limit\): answered 413/);

    // Past it once the app answered: the response is cut short (no last chunk).
    const late = await connect(t, { socket: agent.socket });
    late.sock.write(head('/answer-first', web) + chunks(4096));
    await eventually(() => late.text().includes('answered first'), 15_000, 'the app\'s answer to begin');
    late.sock.write(chunks(50_000) + LAST);
    await late.closed;
    assert.match(late.text(), /^HTTP\/1\.1 200 /);
    assert.ok(!late.text().endsWith('0\r\n\r\n'), 'the response was cut short');
    await eventually(() => uploads(agent).filter((u) => u.startsWith('upload aborted')).length === 2, 15_000, 'the app to see its request cut off');

    // Without the header there is no limit, and the header never reaches the app.
    const free = await connect(t, { socket: agent.socket });
    free.sock.write(head('/upload', { 'X-Passenger-Document-Root': path.join(app, 'public') }) + chunks(50_000) + LAST);
    await eventually(() => endsWith(free.text(), '50000'), 60_000, 'the whole body without a limit');
    const echoed = await connect(t, { socket: agent.socket });
    echoed.sock.write(head('/headers', web) + chunks(100) + LAST);
    await eventually(() => echoed.text().includes('}'), 15_000, 'the headers the app saw');
    assert.ok(!/max-body-size/i.test(echoed.text()), echoed.text());
  });
}

test('standalone: a client\'s X-Passenger-Max-Body-Size is not taken (no web server speaks for it)', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1']);
  const c = await connect(t, { port: s.port });
  c.sock.write(head('/upload', { 'X-Passenger-Max-Body-Size': '10' }) + chunks(50_000) + LAST);
  await eventually(() => endsWith(c.text(), '50000'), 60_000, 'the whole body');
  assert.match(c.text(), /^HTTP\/1\.1 200 /);
});

test('passenger agent takes --forwarder builtin or node-http, and refuses reply-from by name', async (t) => {
  const dir = tmpDir(t, 'ptest-agent-forwarder-');
  const r = await runCli(BIN.passenger, ['agent', '--forwarder', 'reply-from', '--socket', path.join(dir, 'agent.sock'), '--instance-registry-dir', dir]);
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /--forwarder reply-from is for passenger start only/);
});
