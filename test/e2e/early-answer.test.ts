// Behind a real web server, an answer the agent gives before a large request
// body has arrived (a full queue, a refused app root) reaches the client as
// that answer: the agent reads the rest of the body and drops it before it
// closes, so the web server, still writing the body, finds no reset under its
// writes and passes the answer on instead of a 502 of its own. (Apache's
// mod_proxy answered 502 before; nginx with the one-line snippet passed the
// answer on either way, and is checked alongside.)
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test, type TestContext } from 'node:test';
import { eventually, poolStatus, stopAfter } from '../helpers';
import { APACHE, NGINX, sharedDir, startAgent, startApache, startNginx, upload, webApp, type Agent } from './web-servers';

const BODY = 5 << 20;

/** A request to the agent's socket that keeps its app process busy until the test ends. */
function busy(t: TestContext, agent: Agent, app: string): void {
  const s = net.connect(agent.socket);
  s.on('error', () => undefined);
  s.write(`GET /sleep?ms=120000 HTTP/1.1\r\nHost: x\r\nX-Passenger-Document-Root: ${path.join(app, 'public')}\r\n\r\n`);
  stopAfter(t, () => s.destroy());
}

for (const server of ['apache', 'nginx'] as const) {
  const missing = server === 'apache' ? !APACHE : !NGINX;
  test(`${server}: a multi-MB upload answered early by the agent (queue full, app root refused) gets that answer, not 502`, { skip: missing ? `${server} is not installed` : false }, async (t) => {
    const dir = sharedDir(t, `ptest-early-${server}-`);
    fs.mkdirSync(path.join(dir, 'ok'), { mode: 0o755 });
    fs.mkdirSync(path.join(dir, 'no'), { mode: 0o755 });
    const app = webApp(t, path.join(dir, 'ok'));
    const refused = webApp(t, path.join(dir, 'no'));
    // One process taking one request at a time, one request waiting for it: the next gets 503 at once.
    const agent = await startAgent(t, dir, path.join(dir, 'ok'), ['--min-instances', '1', '--max-pool-size', '1',
      '--force-max-concurrent-requests-per-process', '1', '--max-request-queue-size', '1']);
    const web = server === 'apache' ? await startApache(t, dir, agent.socket, [app, refused]) : await startNginx(t, dir, agent.socket, [app, refused]);
    const [port, refusedPort] = web.ports;

    // The first request spawns the process and waits for it; only once the
    // process has it does the second wait in the queue (sent together, the
    // second found the first still queued, and was refused in its place).
    busy(t, agent, app);
    await eventually(async () => (await poolStatus(agent.registry)).groups[0]?.processes[0]?.sessions === 1, 30_000, 'the process to take the first request');
    busy(t, agent, app);
    await eventually(async () => (await poolStatus(agent.registry)).groups[0]?.queue === 1, 30_000, 'one request to wait in the queue');
    for (const chunked of [false, true]) {
      const full = await upload(port, '/upload', BODY, { chunked });
      assert.equal(full.status, 503, `queue full, ${chunked ? 'chunked' : 'with a length'}: ${full.status} ${full.body.slice(0, 300)}`);
      assert.match(full.body, /under heavy load/);
      const denied = await upload(refusedPort, '/upload', BODY, { chunked });
      assert.equal(denied.status, 403, `app root refused, ${chunked ? 'chunked' : 'with a length'}: ${denied.status} ${denied.body.slice(0, 300)}`);
    }
    assert.ok(!/AH01084|AH01097|reset by peer|prematurely closed/.test(web.errorLog()), `the web server wrote no request body into a closed connection:\n${web.errorLog()}`);
  });
}

// The app's own answer before it read the body (an upload refused up front,
// as an Express app answering 401 or 413 without reading it): the agent
// sends it whole with Connection: close and reads and drops the rest of the
// body before it closes, on both request sides. Through Apache the client
// got 502 before (the builtin side closed at once; the node-http side stopped
// reading the body, and Apache gave up after its timeout).
for (const server of ['apache', 'nginx'] as const) {
  for (const side of ['builtin', 'node-http'] as const) {
    const missing = server === 'apache' ? !APACHE : !NGINX;
    test(`${server}, ${side}: a multi-MB upload the app answers without reading gets the app's answer, not 502`, { skip: missing ? `${server} is not installed` : false }, async (t) => {
      const dir = sharedDir(t, `ptest-appearly-${server}-`);
      fs.mkdirSync(path.join(dir, 'apps'), { mode: 0o755 });
      const app = webApp(t, path.join(dir, 'apps'));
      const agent = await startAgent(t, dir, path.join(dir, 'apps'), ['--forwarder', side, '--min-instances', '1', '--max-pool-size', '1']);
      const web = server === 'apache' ? await startApache(t, dir, agent.socket, [app]) : await startNginx(t, dir, agent.socket, [app]);
      for (const chunked of [false, true]) {
        const denied = await upload(web.port, '/deny', BODY, { chunked });
        assert.equal(denied.status, 401, `${chunked ? 'chunked' : 'with a length'}: ${denied.status} ${denied.body.slice(0, 300)}`);
        assert.equal(denied.body, 'denied\n');
      }
      const whole = await upload(web.port, '/upload', BODY, { chunked: true });
      assert.equal(whole.body, String(BODY), 'the app still takes whole uploads');
      assert.ok(!/AH01084|AH01097|reset by peer|prematurely closed/.test(web.errorLog()), `the web server wrote no request body into a closed connection:\n${web.errorLog()}`);
    });
  }
}
