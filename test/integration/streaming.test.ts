// Bodies stream both ways; a client that leaves releases its session.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import * as path from 'node:path';
import * as fs from 'node:fs';
import { test } from 'node:test';
import { appCopy, eventually, request, startServer } from '../helpers';

function privateDirtyMB(pid: number): number {
  const txt = fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  let kb = 0;
  for (const m of txt.matchAll(/^Private_Dirty:\s+(\d+) kB/gm)) kb += Number(m[1]);
  return kb / 1024;
}

const MB = 1024 * 1024;

// Both request paths: the default one and --forwarder reply-from.
for (const forwarder of ['builtin', 'node-http', 'reply-from'] as const) {
  // 300 MB each way: the agent's memory must not follow the size of what passes
  // (Node frees socket buffers at its next GC, so some tens of MB come and go).
  test(`${forwarder}: 300 MB uploads and downloads pass without the agent holding them`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--environment', 'production', '--forwarder', forwarder]);
    const corePid = Number(fs.readFileSync(path.join(s.instanceDir(), 'core.pid'), 'utf8'));
    const before = privateDirtyMB(corePid);
    let peak = before;
    const watch = setInterval(() => { try { peak = Math.max(peak, privateDirtyMB(corePid)); } catch { /* gone */ } }, 50);
    t.after(() => clearInterval(watch));

    const uploaded = await new Promise<string>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: s.port, path: '/upload', method: 'POST', headers: { 'content-length': String(300 * MB) } }, (res) => {
        let body = '';
        res.on('data', (d) => { body += d; });
        res.on('end', () => resolve(body));
      });
      req.on('error', reject);
      const chunk = Buffer.alloc(MB, 'u');
      let left = 300;
      const write = (): void => {
        while (left > 0) {
          left--;
          if (!req.write(chunk)) { req.once('drain', write); return; }
        }
        req.end();
      };
      write();
    });
    assert.equal(uploaded, String(300 * MB));

    const downloaded = await new Promise<number>((resolve, reject) => {
      http.get({ host: '127.0.0.1', port: s.port, path: '/download?mb=300' }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => { n += d.length; });
        res.on('end', () => resolve(n));
        res.on('error', reject);
      }).on('error', reject);
    });
    assert.equal(downloaded, 300 * MB);
    clearInterval(watch);
    t.diagnostic(`agent private dirty memory: ${before.toFixed(1)} MB before, ${peak.toFixed(1)} MB at most`);
    assert.ok(peak - before < 100, `agent private memory grew by ${(peak - before).toFixed(1)} MB while 600 MB passed`);
  });

  test(`${forwarder}: a client that disconnects releases its session`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    await eventually(async () => (await s.appPids()).length === 1, 20_000, 'a process');
    const req = http.get({ host: '127.0.0.1', port: s.port, path: '/sleep?ms=20000' });
    req.on('error', () => undefined);
    await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 1, 10_000, 'the session to start');
    req.destroy();
    await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 0, 10_000, 'the session to be released');
  });

  test(`${forwarder}: a client that leaves during a download cuts the app's response off too`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    const [pid] = await eventually(async () => { const p = await s.appPids(); return p.length === 1 ? p : null; }, 20_000, 'a process');
    await new Promise<void>((resolve, reject) => {
      const req = http.get({ host: '127.0.0.1', port: s.port, path: '/download?mb=2000' }, (res) => {
        let n = 0;
        res.on('data', (d: Buffer) => {
          n += d.length;
          if (n > 4 * MB) { req.destroy(); resolve(); }
        });
      });
      req.on('error', (e) => { if (!req.destroyed) reject(e); });
    });
    // Not left paused on a connection nobody reads: the app sees its response end early.
    await eventually(() => s.output().includes(`download cut short in ${pid}`), 15_000, 'the app to see the download cut short');
    await eventually(async () => (await s.status()).groups[0].processes[0].sessions === 0, 10_000, 'the session to be released');
  });
}

test('both request paths hand the app the same request headers: hop-by-hop and X-Passenger-* dropped, X-Forwarded-* added', async (t) => {
  const seen: Record<string, Record<string, string>> = {};
  for (const forwarder of ['builtin', 'node-http', 'reply-from'] as const) {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--forwarder', forwarder]);
    const r = await request(s.port, '/headers', {
      headers: {
        host: 'example.test', connection: 'close', 'keep-alive': 'timeout=9', te: 'trailers', 'proxy-connection': 'close',
        'x-passenger-app-root': '/elsewhere', 'x-forwarded-for': '192.0.2.1', 'x-custom': 'kept',
      },
    });
    assert.equal(r.status, 200, r.body);
    const h = JSON.parse(r.body) as Record<string, string>;
    for (const name of ['keep-alive', 'te', 'proxy-connection', 'x-passenger-app-root']) assert.equal(h[name], undefined, `${forwarder}: ${name}`);
    assert.equal(h['x-forwarded-for'], '192.0.2.1, 127.0.0.1', forwarder);
    assert.equal(h['x-forwarded-proto'], 'http', forwarder);
    assert.equal(h['x-custom'], 'kept', forwarder);
    assert.equal(h.host, 'example.test', forwarder);
    // Each path's own connection to the app says what it likes about itself.
    delete h.connection;
    seen[forwarder] = h;
  }
  assert.deepEqual(seen['reply-from'], seen.builtin);
  assert.deepEqual(seen['node-http'], seen.builtin);
});
