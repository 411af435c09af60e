// WebSockets through `passenger start`: the handshake reaches a process and
// its 101 comes back, messages flow both ways, a plain request passes beside
// an open socket, and the socket is accounted on its process until it closes.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as path from 'node:path';
import { test } from 'node:test';
import WebSocket from 'ws';
import { BIN, ROOT, appCopy, eventually, request, runCli, sleep, startServer, type Server } from '../helpers';
import { wsHandshake } from '../websocket-client';

async function processes(s: Server): Promise<{ pid: number; sessions: number; websockets: number }[]> {
  return (await s.status()).groups[0].processes;
}

async function requestsJson(s: Server): Promise<{ method: string; path: string; pid: number | null; state: string; client: string | null; age_ms: number }[]> {
  const r = await runCli(BIN.config, ['api-call', 'GET', '/requests.json', '--instance-registry-dir', s.registry]);
  assert.equal(r.code, 0, r.stderr);
  return (JSON.parse(r.stdout) as { requests: never[] }).requests;
}

for (const forwarder of ['builtin', 'node-http', 'reply-from'] as const) {
  test(`${forwarder}: a WebSocket handshake, short and 64 KB echoes, a request beside it, accounting until it closes`, async (t) => {
    const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1', '--forwarder', forwarder]);
    const [pid] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'a process');
    const h = await wsHandshake(s.port, '/chat');
    assert.equal(h.status, 101);
    assert.equal(h.headers['sec-websocket-accept'], h.expectedAccept);
    assert.equal(h.headers.upgrade.toLowerCase(), 'websocket');
    assert.equal(h.headers['x-served-by'], String(pid));
    const ws = h.ws!;
    assert.equal((await ws.echo('hello')).data.toString(), 'hello');
    const big = Buffer.alloc(64 * 1024, 7);
    for (let i = 0; i < big.length; i++) big[i] = i % 251;
    const back = await ws.echo(big);
    assert.equal(back.opcode, 2);
    assert.ok(back.data.equals(big), '64 KB come back unchanged');

    // A plain request beside the open socket.
    const plain = await request(s.port, '/');
    assert.equal(plain.status, 200);
    assert.match(plain.body, /^hello from/);
    assert.equal((await ws.echo('still there')).data.toString(), 'still there');

    // Accounted on its process as a WebSocket, not as a session.
    await eventually(async () => { const [p] = await processes(s); return p.websockets === 1 && p.sessions === 0; }, 10_000, '1 WebSocket, 0 sessions');
    const listed = await requestsJson(s);
    const entry = listed.find((r) => r.state === 'websocket');
    assert.ok(entry, JSON.stringify(listed));
    assert.equal(entry.path, '/chat');
    assert.equal(entry.pid, pid);
    assert.equal(entry.client, '127.0.0.1');
    const text = await runCli(BIN.status, ['--show=requests', '--instance-registry-dir', s.registry]);
    assert.match(text.stdout, new RegExp(`^GET +/chat +${pid} +websocket +\\d+\\.\\ds +127\\.0\\.0\\.1$`, 'm'));
    const pool = await runCli(BIN.status, ['--instance-registry-dir', s.registry]);
    assert.match(pool.stdout, /Sessions: 0 +Processed: \d+ +Uptime: \S+ +WebSockets: 1$/m);

    const closing = await ws.close();
    assert.equal(closing?.opcode, 8, 'the app answers the close frame');
    await eventually(async () => { const [p] = await processes(s); return p.websockets === 0 && p.sessions === 0; }, 10_000, 'the WebSocket to be freed');
    assert.deepEqual((await requestsJson(s)).filter((r) => r.state === 'websocket'), []);
  });

  test(`${forwarder}: an upgrade the app refuses is relayed as its response; a client that leaves frees the socket`, async (t) => {
    const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1', '--forwarder', forwarder]);
    const refused = await wsHandshake(s.port, '/refuse');
    assert.equal(refused.status, 403);
    assert.equal(await refused.body, 'no socket\n');
    await eventually(async () => { const [p] = await processes(s); return p !== undefined && p.sessions === 0 && p.websockets === 0; }, 10_000, 'the session to be released');
    // Cut without a closing handshake: freed all the same.
    const h = await wsHandshake(s.port, '/');
    assert.equal(h.status, 101);
    await eventually(async () => (await processes(s))[0].websockets === 1, 10_000, 'the WebSocket to be counted');
    h.ws!.socket.destroy();
    await eventually(async () => (await processes(s))[0].websockets === 0, 10_000, 'the WebSocket to be freed');
  });
}

test('idle WebSockets neither take the room of requests nor make the group spawn', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1', '--max-pool-size', '3', '--force-max-concurrent-requests-per-process', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const open = [];
  for (let i = 0; i < 12; i++) {
    const h = await wsHandshake(s.port, `/ws${i}`);
    assert.equal(h.status, 101);
    open.push(h.ws!);
  }
  // Twelve sockets on a process that takes one request at a time: it still takes requests.
  for (let i = 0; i < 3; i++) assert.equal((await request(s.port, '/')).status, 200);
  const doc = await s.status();
  assert.equal(doc.process_count, 1);
  assert.equal(doc.groups[0].spawning, 0);
  assert.equal(doc.groups[0].processes[0].websockets, 12);
  for (const ws of open) assert.equal((await ws.echo('x')).data.toString(), 'x');
  for (const ws of open) ws.socket.destroy();
  await eventually(async () => (await processes(s))[0].websockets === 0, 10_000, 'every WebSocket to be freed');
});

test('an upgrade that cannot get a process gets the answer a request gets (queue full: 503)', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1', '--max-pool-size', '1',
    '--force-max-concurrent-requests-per-process', '1', '--max-request-queue-size', '1']);
  await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
  const slow = request(s.port, '/sleep?ms=4000');
  await eventually(async () => (await processes(s))[0].sessions === 1, 10_000, 'the slow request to run');
  const queued = request(s.port, '/');
  await eventually(async () => (await s.status()).groups[0].queue === 1, 10_000, 'a request to wait');
  const h = await wsHandshake(s.port, '/');
  assert.equal(h.status, 503);
  assert.match(await h.body, /under heavy load \(queue full\)/);
  assert.equal((await slow).status, 200);
  assert.equal((await queued).status, 200);
});

test('sticky sessions: the handshake goes to the process the cookie names', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '2', '--max-pool-size', '2', '--sticky-sessions']);
  await eventually(async () => (await s.appPids()).length === 2, 20_000, 'two processes');
  for (let i = 0; i < 2; i++) {
    // A request held open on one process makes the next go to the other: both get cookies.
    const slow = request(s.port, '/sleep?ms=1500');
    const r = await request(s.port, '/pid');
    await slow;
    const cookie = (r.headers['set-cookie'] ?? [])[0]?.split(';')[0];
    assert.ok(cookie, 'a sticky cookie');
    for (let j = 0; j < 3; j++) {
      const h = await wsHandshake(s.port, '/', { Cookie: cookie });
      assert.equal(h.status, 101);
      assert.equal(h.headers['x-served-by'], r.body, `the socket went to the cookie's process (${cookie})`);
      h.ws!.socket.destroy();
    }
  }
});

test('a `ws` client against a `ws` server app', async (t) => {
  const app = appCopy(t, 'ws-echo');
  fs.cpSync(path.join(ROOT, 'node_modules', 'ws'), path.join(app, 'node_modules', 'ws'), { recursive: true });
  const s = await startServer(t, app, ['--min-instances', '1']);
  const [pid] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'a process');
  const ws = new WebSocket(`ws://127.0.0.1:${s.port}/live`);
  const got: (string | Buffer)[] = [];
  const next = (): Promise<string | Buffer> => eventually(() => got.shift(), 20_000, 'a message');
  ws.on('message', (d: Buffer, binary: boolean) => got.push(binary ? d : d.toString()));
  await new Promise<void>((resolve, reject) => { ws.once('open', () => resolve()); ws.once('error', reject); });
  ws.send('pid');
  assert.equal(await next(), String(pid));
  const big = Buffer.alloc(64 * 1024, 3);
  ws.send(big);
  assert.ok((await next() as Buffer).equals(big));
  assert.equal((await new Promise<http.IncomingMessage>((r) => http.get(s.url('/'), r))).statusCode, 200);
  await eventually(async () => (await processes(s))[0].websockets === 1, 10_000, 'the socket to be counted');
  const closed = new Promise<number>((r) => ws.once('close', (code: number) => r(code)));
  ws.close(1000);
  assert.equal(await closed, 1000);
  await eventually(async () => (await processes(s))[0].websockets === 0, 10_000, 'the socket to be freed');
});

test('stopping the server with a WebSocket open closes it and exits', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1']);
  const h = await wsHandshake(s.port, '/');
  assert.equal(h.status, 101);
  assert.equal((await h.ws!.echo('x')).data.toString(), 'x');
  assert.equal(await s.stop(), 0);
  await h.ws!.closed;
});

function privateDirtyMB(pid: number): number {
  const txt = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  let kb = 0;
  for (const m of txt.matchAll(/^Private_Dirty:\s+(\d+) kB/gm)) kb += Number(m[1]);
  return kb / 1024;
}

test('100 MB through a WebSocket both ways without the agent holding them', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1']);
  const corePid = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  const h = await wsHandshake(s.port, '/');
  assert.equal(h.status, 101);
  const ws = h.ws!;
  const before = privateDirtyMB(corePid);
  let peak = before;
  const watch = setInterval(() => { try { peak = Math.max(peak, privateDirtyMB(corePid)); } catch { /* gone */ } }, 50);
  t.after(() => clearInterval(watch));
  const chunk = Buffer.alloc(1024 * 1024, 5);
  const total = 100;
  let sent = 0;
  // Sends as fast as the socket takes it; the echoes are read meanwhile.
  const sending = (async () => {
    while (sent < total) {
      sent++;
      ws.send(chunk);
      if (ws.socket.writableNeedDrain) await new Promise((r) => ws.socket.once('drain', r));
    }
  })();
  let got = 0;
  while (got < total * chunk.length) {
    const m = await ws.next(60_000);
    assert.ok(m !== null, 'the connection stayed open');
    got += m.data.length;
  }
  await sending;
  clearInterval(watch);
  assert.equal(got, total * chunk.length);
  t.diagnostic(`agent private dirty memory: ${before.toFixed(1)} MB before, ${peak.toFixed(1)} MB at most`);
  assert.ok(peak - before < 100, `agent private memory grew by ${(peak - before).toFixed(1)} MB while 200 MB passed`);
  await ws.close();
});

/** Bytes process `pid` has read with read(2) and its kind (/proc/PID/io's rchar), in MB. */
function readMB(pid: number): number {
  return Number(/^rchar: (\d+)$/m.exec(fs.readFileSync(`/proc/${pid}/io`, 'utf8'))![1]) / (1024 * 1024);
}

test('a client that stops reading: the agent stops reading the app, and all arrives in order once it reads', async (t) => {
  const s = await startServer(t, appCopy(t, 'websocket'), ['--min-instances', '1']);
  const [appPid] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'a process');
  const corePid = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
  const h = await wsHandshake(s.port, '/');
  assert.equal(h.status, 101);
  const ws = h.ws!;
  const appBefore = privateDirtyMB(appPid);
  const readBefore = readMB(corePid);
  ws.socket.pause();
  // 64 numbered 1 MB messages, sent as fast as they are taken; the app
  // echoes each at once, whether or not its echoes are taken.
  const total = 64;
  for (let i = 0; i < total; i++) {
    const m = Buffer.alloc(1024 * 1024, i);
    m.writeUInt32BE(i, 0);
    ws.send(m);
    if (ws.socket.writableNeedDrain) await new Promise((r) => ws.socket.once('drain', r));
  }
  // The echoes the agent did not read wait in the app, and the agent reads no more.
  let last = -1;
  const read = await eventually(async () => {
    const now = readMB(corePid) - readBefore;
    const still = Math.abs(now - last) < 0.05 && privateDirtyMB(appPid) - appBefore > 48;
    last = now;
    if (!still) await sleep(250);
    return still && now;
  }, 60_000, 'the app to hold the echoes and the agent to stop reading');
  // It read the 64 MB sent, and of the 64 MB echoed no more than the socket buffers on the way to the client hold.
  t.diagnostic(`the agent read ${read.toFixed(1)} MB while the client read nothing`);
  assert.ok(read < 64 + 24, `the agent read ${read.toFixed(1)} MB: it went on reading the app for a client that does not read`);
  ws.socket.resume();
  let next = 0;
  let bytes = 0;
  while (bytes < total * 1024 * 1024) {
    const m = await ws.next(60_000);
    assert.ok(m !== null, 'the connection stayed open');
    // The app echoes each message as one frame.
    assert.equal(m.data.readUInt32BE(0), next, 'in order');
    assert.equal(m.data[m.data.length - 1], next & 0xff, 'unchanged');
    next++;
    bytes += m.data.length;
  }
  assert.equal(next, total);
  await ws.close();
});
