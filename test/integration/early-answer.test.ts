// An answer given before a request's body is over (an app root the agent
// refuses, max_request_time while the app still reads, an app that answers
// without reading the body, a 417 to an unknown expectation) goes out at
// once; the rest of the body is then read and dropped, and only at its end
// does the connection close, so a web server still writing the body finds no
// reset under its writes. The app's request is cut off at once all the same.
// Raw connections to the agent's socket, as a web server makes them, on both
// request sides.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { eventually, stopAfter, tmpDir } from '../helpers';
import { startAgent, webApp } from '../e2e/web-servers';

const FIRST = 1 << 20;
const REST = 4 << 20;

interface Upload {
  text(): string;
  /** The rest of the body, after the answer came. */
  finish(): void;
  /** Settles when the connection closed: whether the agent ended it (FIN), and the first error on it. */
  closed: Promise<{ ended: boolean; error: string | null }>;
  sock: net.Socket;
}

/** A POST of FIRST + REST bytes with a Content-Length, of which only FIRST is sent at first. */
function upload(t: TestContext, socket: string, urlPath: string, docRoot: string, extraHead = ''): Upload {
  const sock = net.connect(socket);
  let got = '';
  let ended = false;
  let error: string | null = null;
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => { got += d; });
  sock.on('end', () => { ended = true; });
  sock.on('error', (e: NodeJS.ErrnoException) => { error ??= e.code ?? e.message; });
  const closed = new Promise<{ ended: boolean; error: string | null }>((resolve) => sock.on('close', () => resolve({ ended, error })));
  stopAfter(t, () => sock.destroy());
  sock.write(`POST ${urlPath} HTTP/1.1\r\nHost: x\r\nContent-Length: ${FIRST + REST}\r\nX-Passenger-Document-Root: ${docRoot}\r\n${extraHead}\r\n`);
  sock.write(Buffer.alloc(FIRST, 'b'));
  return { sock, closed, text: () => got, finish: () => { sock.end(Buffer.alloc(REST, 'b')); } };
}

/** The app's log lines about its uploads. */
function uploads(out: string): string[] {
  return out.match(/upload (?:begun|ended after \d+ bytes|aborted after \d+ bytes)/g) ?? [];
}

for (const side of ['builtin', 'node-http'] as const) {
  test(`${side}: an early answer goes out at once, the rest of the body is read and dropped, then the connection closes`, async (t) => {
    const dir = tmpDir(t, `ptest-early-${side}-`);
    fs.mkdirSync(path.join(dir, 'ok'));
    fs.mkdirSync(path.join(dir, 'no'));
    const slow = webApp(t, path.join(dir, 'ok'));
    fs.writeFileSync(path.join(slow, 'Passengerfile.json'), JSON.stringify({ max_request_time: 1 }));
    const refused = webApp(t, path.join(dir, 'no'));
    const agent = await startAgent(t, dir, path.join(dir, 'ok'), ['--forwarder', side, '--min-instances', '1']);

    // An app root the agent refuses: 403 before a byte of the body is taken.
    const denied = upload(t, agent.socket, '/upload', path.join(refused, 'public'));
    await eventually(() => /^HTTP\/1\.1 \d+ [^]*\r\n\r\n[^]*\n/.test(denied.text()), 15_000, 'the answer');
    assert.match(denied.text(), /^HTTP\/1\.1 403 /);
    assert.match(denied.text(), /\r\nconnection: close\r\n/i);
    assert.equal(denied.sock.destroyed, false, 'the connection waits for the rest of the body');
    denied.finish();
    assert.deepEqual(await denied.closed, { ended: true, error: null }, 'the whole body was taken, then the agent ended the connection');

    // max_request_time while the app reads the body: 504, and the app's request is cut off at once.
    const late = upload(t, agent.socket, '/upload-seen', path.join(slow, 'public'));
    await eventually(() => /^HTTP\/1\.1 504 [^]*\r\n\r\n[^]*\n/.test(late.text()), 30_000, 'the 504');
    assert.match(late.text(), /\r\nconnection: close\r\n/i);
    await eventually(() => uploads(agent.output()).some((u) => u.startsWith('upload aborted')), 15_000, 'the app to see its request cut off');
    assert.equal(late.sock.destroyed, false, 'the connection waits for the rest of the body');
    late.finish();
    assert.deepEqual(await late.closed, { ended: true, error: null }, 'the whole body was taken, then the agent ended the connection');
    assert.ok(!uploads(agent.output()).some((u) => u.startsWith('upload ended')), 'no body ended in the app');
    assert.equal(late.text().match(/HTTP\/1\.1 /g)?.length, 1, 'one answer');
  });
}

/** A POST of `bytes` with Connection: close (the client stays until the agent closes, as a FIN would be leaving): the answer's text. */
function wholeUpload(socket: string, urlPath: string, docRoot: string, bytes: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(socket);
    let got = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => { got += d; });
    sock.on('error', reject);
    sock.on('close', () => resolve(got));
    sock.write(`POST ${urlPath} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ${bytes}\r\nX-Passenger-Document-Root: ${docRoot}\r\n\r\n`);
    sock.write(Buffer.alloc(bytes, 'b'));
  });
}

for (const side of ['builtin', 'node-http'] as const) {
  test(`${side}: an app's answer before it read the body, and a 417, go out whole; the rest of the body is read and dropped, then the connection closes`, async (t) => {
    const dir = tmpDir(t, `ptest-appearly-${side}-`);
    fs.mkdirSync(path.join(dir, 'apps'));
    const app = webApp(t, path.join(dir, 'apps'));
    const docRoot = path.join(app, 'public');
    const agent = await startAgent(t, dir, path.join(dir, 'apps'), ['--forwarder', side, '--min-instances', '1', '--max-pool-size', '1']);

    // The app answers 401 (chunked) at once and never reads the body.
    const denied = upload(t, agent.socket, '/deny', docRoot);
    await eventually(() => /^HTTP\/1\.1 401 [^]*\r\n\r\n7\r\ndenied\n\r\n0\r\n\r\n$/.test(denied.text()), 15_000, 'the whole answer');
    assert.match(denied.text(), /\r\nconnection: close\r\n/i);
    assert.equal(denied.sock.destroyed, false, 'the connection waits for the rest of the body');
    denied.finish();
    assert.deepEqual(await denied.closed, { ended: true, error: null }, 'the whole body was taken, then the agent ended the connection');

    // The app's connection, left with half a body, carries no other request: the next upload reaches the app whole.
    const next = await wholeUpload(agent.socket, '/upload', docRoot, 100_000);
    assert.match(next, /^HTTP\/1\.1 200 [^]*\r\n\r\n(?:[0-9a-f]+\r\n)?100000(?:\r\n0\r\n\r\n)?$/, next);

    // An expectation the agent cannot meet: 417 before the body, then the same.
    const refused = upload(t, agent.socket, '/upload', docRoot, 'Expect: something-else\r\n');
    await eventually(() => /^HTTP\/1\.1 417 [^]*\r\n\r\n$/.test(refused.text()), 15_000, 'the 417');
    assert.match(refused.text(), /\r\nconnection: close\r\n/i);
    assert.equal(refused.sock.destroyed, false, 'the connection waits for the rest of the body');
    refused.finish();
    assert.deepEqual(await refused.closed, { ended: true, error: null }, 'the whole body was taken, then the agent ended the connection');
  });
}
