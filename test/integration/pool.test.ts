// The pool with real app processes: min instances, crash replacement,
// least-busy routing, max pool size, retry of refused connections.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { appCopy, assertLogged, eventually, isAlive, request, startServer } from '../helpers';

test('min_instances processes are spawned at start', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '3', '--max-pool-size', '4']);
  const pids = await eventually(async () => { const p = await s.appPids(); return p.length === 3 ? p : null; }, 20_000, 'three processes');
  for (const pid of pids) assert.ok(isAlive(pid));
  const doc = await s.status();
  assert.equal(doc.max_pool_size, 4);
  assert.equal(doc.process_count, 3);
});

for (const [signal, forwarder] of [['SIGKILL', 'builtin'], ['SIGTERM', 'builtin'], ['SIGKILL', 'reply-from']] as const) {
  test(`a process killed with ${signal} is replaced while the other keeps serving (${forwarder} request path)`, async (t) => {
    const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2', '--forwarder', forwarder]);
    const before = await eventually(async () => { const p = await s.appPids(); return p.length === 2 ? p : null; }, 20_000, 'two processes');
    const victim = before[0];
    process.kill(victim, signal);
    // Requests keep succeeding meanwhile (served by the survivor or the replacement).
    for (let i = 0; i < 20; i++) assert.equal((await request(s.port, '/pid')).status, 200);
    const after = await eventually(async () => {
      const p = await s.appPids();
      return p.length === 2 && !p.includes(victim) ? p : null;
    }, 15_000, 'a replacement process');
    assert.ok(after.includes(before[1]), 'the survivor was left alone');
    // Whichever the agent noticed first: the exit, or a refused connection.
    await assertLogged(() => s.output(), new RegExp(`process ${victim} .*(exited unexpectedly|refused a connection)`));
  });
}

test('requests go to the least busy process', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2']);
  await eventually(async () => (await s.appPids()).length === 2, 20_000, 'two processes');
  // Hold a session on one process...
  const held = request(s.port, '/sleep?ms=8000');
  const busy = await eventually(async () => {
    const doc = await s.status();
    return doc.groups[0].processes.find((p) => p.sessions === 1)?.pid;
  }, 10_000, 'one busy process');
  // ...and every other request goes to the idle one.
  for (let i = 0; i < 10; i++) {
    const r = await request(s.port, '/pid');
    assert.notEqual(Number(r.body), busy, 'a short request went to the busy process');
  }
  assert.match((await held).body, new RegExp(`slept 8000 in ${busy}`));
});

test('the pool never exceeds max_pool_size; requests beyond the processes\' concurrency wait and succeed', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '1', '--max-pool-size', '2', '--force-max-concurrent-requests-per-process', '1']);
  await eventually(async () => (await s.appPids()).length >= 1, 20_000, 'a process');
  const reqs = Array.from({ length: 6 }, () => request(s.port, '/sleep?ms=400'));
  let maxSeen = 0;
  let done = false;
  const all = Promise.all(reqs).finally(() => { done = true; });
  while (!done) {
    const doc = await s.status();
    const n = doc.groups[0].processes.length + doc.groups[0].spawning;
    maxSeen = Math.max(maxSeen, n);
    for (const p of doc.groups[0].processes) assert.ok(p.sessions <= 1, 'a process took more than its concurrency');
  }
  const results = await all;
  for (const r of results) assert.equal(r.status, 200);
  assert.ok(maxSeen <= 2, `saw ${maxSeen} processes`);
  assert.equal(new Set(results.map((r) => r.body.split(' in ')[1])).size, 2, 'both processes served');
});

test('a request whose process refuses the connection is retried on another process', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2', '--max-pool-size', '2', '--environment', 'production']);
  await eventually(async () => (await s.appPids()).length === 2, 20_000, 'two processes');
  // Break one process's socket: connecting to it now fails, as to a process that just died.
  // (each process listens in a directory of its own under apps/)
  const socks = path.join(s.instanceDir(), 'apps');
  const broken = path.join(socks, fs.readdirSync(socks).sort()[0]);
  for (const f of fs.readdirSync(broken)) fs.rmSync(path.join(broken, f));
  const results = await Promise.all(Array.from({ length: 10 }, () => request(s.port, '/pid')));
  for (const r of results) assert.equal(r.status, 200, r.body);
  await assertLogged(() => s.output(), /refused a connection \(ENOENT\); taking it out of rotation/);
  // The broken process is replaced.
  await eventually(async () => (await s.appPids()).length === 2, 20_000, 'a replacement');
});
