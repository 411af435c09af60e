// The pool's logic as pure code: a fake spawner, a fake clock, and the
// invariants checked after every step.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { groupOptions, defaults, type GroupOptions } from '../../helper-agent/src/config';
import { verifyInvariants } from '../../helper-agent/src/pool/invariants';
import { Pool } from '../../helper-agent/src/pool/pool';
import type { AppProcess, ProcessHandle } from '../../helper-agent/src/pool/process';
import { leastBusy } from '../../helper-agent/src/pool/choose-process';
import { snapshotPool } from '../../helper-agent/src/pool/snapshot';
import { KILL_WAIT_MS, STOP_DRAIN_MS, STOP_FLUSH_MS, coreStopBoundMs, drainMs, leaveTimeoutMs, watchdogStopBoundMs } from '../../helper-agent/src/pool/stop-policy';
import { UNASKED_RETRIES, spawnDelay } from '../../helper-agent/src/pool/spawn-backoff';

class FakeHandle implements ProcessHandle {
  readonly endpoint = { socketPath: '/dev/null' };
  private exitCb: ((c: number | null, s: string | null) => void) | null = null;
  stopped = false;
  constructor(readonly pid: number) {}
  onExit(cb: (c: number | null, s: string | null) => void): void { this.exitCb = cb; }
  async stop(): Promise<void> { this.stopped = true; this.exit(0, null); }
  exit(code: number | null, signal: string | null): void {
    const cb = this.exitCb;
    this.exitCb = null;
    cb?.(code, signal);
  }
}

/** A spawner whose spawns complete (or fail) when the test says so. */
class FakeSpawner {
  pending: { resolve: (h: FakeHandle) => void; reject: (e: Error) => void; options: GroupOptions }[] = [];
  handles: FakeHandle[] = [];
  private nextPid = 1000;
  spawn(options: GroupOptions): Promise<ProcessHandle> {
    return new Promise((resolve, reject) => this.pending.push({ resolve, reject, options }));
  }
  finishOne(): FakeHandle {
    const p = this.pending.shift();
    assert.ok(p, 'a spawn is pending');
    const h = new FakeHandle(this.nextPid++);
    this.handles.push(h);
    p.resolve(h);
    return h;
  }
  failOne(msg = 'boom'): void {
    const p = this.pending.shift();
    assert.ok(p, 'a spawn is pending');
    p.reject(new Error(msg));
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

function setup(opts: Partial<GroupOptions> = {}, maxPoolSize = 6) {
  let now = 1_000_000;
  const spawner = new FakeSpawner();
  // selfCheck: the agent's own check also runs after every change, as under the integration tests.
  const pool = new Pool({ maxPoolSize, spawner, log: { info() {}, warn() {}, error() {} }, now: () => now, selfCheck: true });
  const options = { ...groupOptions(defaults('/app')), ...opts };
  const check = (): void => verifyInvariants(pool);
  return { pool, spawner, options, check, advance: (ms: number) => { now += ms; } };
}

test('routing: fewest sessions first; ties go to the oldest process', () => {
  const mk = (sessions: number) => ({ sessions, hasCapacity: (max: number) => max === 0 || sessions < max }) as unknown as AppProcess;
  const a = mk(2);
  const b = mk(1);
  const c = mk(1);
  assert.equal(leastBusy([a, b, c], 0), b);
  assert.equal(leastBusy([a, b, c], 1), null);
  assert.equal(leastBusy([a], 2), null);
  assert.equal(leastBusy([], 0), null);
});

test('routing: open WebSockets only break ties between equally busy processes', () => {
  const mk = (sessions: number, websockets: number) => ({ sessions, websockets, hasCapacity: (max: number) => max === 0 || sessions < max }) as unknown as AppProcess;
  const many = mk(0, 50);
  const few = mk(0, 2);
  const busy = mk(1, 0);
  assert.equal(leastBusy([many, few], 0), few, 'new sockets spread out');
  assert.equal(leastBusy([busy, many], 0), many, 'requests in flight weigh more than idle sockets');
  assert.equal(leastBusy([many], 1), many, 'sockets take no request slot');
});

test('a WebSocket is counted apart from sessions: no slot, no spawn, no idle shutdown, freed on close', async () => {
  const { pool, spawner, options, check, advance } = setup({ minInstances: 0, maxConcurrency: 1, scaleAtSessions: 2, poolIdleTime: 60 });
  const g = pool.group(options);
  g.wait(() => undefined);
  spawner.finishOne();
  await flush();
  const p = g.processes[0];
  g.release(p);
  for (let i = 0; i < 5; i++) {
    const q = g.checkout();
    assert.equal(q, p, 'the handshake takes the slot like any request');
    g.upgraded(p);
    check();
  }
  assert.equal(p.websockets, 5);
  assert.equal(p.sessions, 0);
  assert.equal(g.checkout(), p, 'the process still takes a request');
  g.release(p);
  assert.equal(spawner.pending.length, 0, 'sockets make the group spawn nothing');
  advance(120_000);
  pool.reapIdle();
  assert.equal(p.life, 'alive', 'a process with open WebSockets is not idle');
  for (let i = 0; i < 5; i++) g.websocketClosed(p);
  check();
  assert.equal(p.websockets, 0);
  advance(120_000);
  pool.reapIdle();
  assert.notEqual(p.life, 'alive', 'once they closed, it is');
});

test('a group spawns min_instances processes, one at a time while it has none', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 3 });
  const g = pool.group(options);
  check();
  assert.equal(spawner.pending.length, 1, 'a cold group starts one process first');
  spawner.finishOne();
  await flush();
  check();
  assert.equal(spawner.pending.length, 2, 'then the rest at once');
  spawner.finishOne();
  spawner.finishOne();
  await flush();
  check();
  assert.equal(g.processes.length, 3);
});

test('checkout picks the least busy process and release frees it', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 2 });
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  spawner.finishOne();
  await flush();
  const p1 = g.checkout();
  const p2 = g.checkout();
  check();
  assert.ok(p1 && p2 && p1 !== p2, 'two sessions go to two processes');
  g.release(p1);
  check();
  assert.equal(g.checkout(), p1);
});

test('requests wait in the group queue until a process is up, then go first come first served', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 });
  const g = pool.group(options);
  const got: number[] = [];
  for (let i = 0; i < 3; i++) g.wait((err, p) => { assert.equal(err, null); got.push(i); void p; });
  check();
  assert.equal(g.queue.length, 3);
  spawner.finishOne();
  await flush();
  check();
  assert.deepEqual(got, [0, 1, 2]);
  assert.equal(g.processes[0].sessions, 3);
});

test('with a concurrency limit, waiting requests go to the first process that frees up and the pool never exceeds its size', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1, maxConcurrency: 1 }, 2);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  const first = g.checkout();
  assert.ok(first);
  const served: AppProcess[] = [];
  for (let i = 0; i < 4; i++) g.wait((_e, p) => { if (p) served.push(p); });
  check();
  assert.equal(spawner.pending.length, 1, 'one more process for the waiting requests');
  spawner.finishOne();
  await flush();
  check();
  assert.equal(served.length, 1);
  assert.equal(pool.capacityUsed(), 2);
  assert.equal(spawner.pending.length, 0, 'the pool is full: no third process');
  g.release(first);
  check();
  assert.equal(served.length, 2);
  assert.equal(served[1], first, 'the freed process takes the next waiting request');
});

test('a full queue answers at once with E_QUEUE_FULL', async () => {
  const { pool, options, check } = setup({ minInstances: 1, maxRequestQueueSize: 2 });
  const g = pool.group(options);
  const errors: string[] = [];
  for (let i = 0; i < 3; i++) g.wait((e) => { if (e) errors.push((e as { code?: string }).code ?? ''); });
  check();
  assert.deepEqual(errors, ['E_QUEUE_FULL']);
});

test('a process that exits is replaced; a spawn failure fails waiting requests and backs off', async () => {
  const { pool, spawner, options, check, advance } = setup({ minInstances: 1 });
  const g = pool.group(options);
  const h = spawner.finishOne();
  await flush();
  advance(60_000);
  h.exit(null, 'SIGKILL');
  check();
  assert.equal(g.processes.length, 0);
  assert.equal(spawner.pending.length, 1, 'a replacement is spawned at once');
  let failed: Error | null = null;
  g.wait((e) => { failed = e; });
  spawner.failOne('the app exited');
  await flush();
  check();
  assert.equal((failed as Error | null)?.message, 'the app exited');
  // The first failure is retried at once, later ones wait longer and longer.
  assert.equal(spawner.pending.length, 1);
  spawner.failOne();
  await flush();
  check();
  assert.equal(spawner.pending.length, 0, 'backing off');
  assert.ok(g.backingOff());
  let answered: Error | null = null;
  g.wait((e) => { answered = e; });
  assert.ok(answered, 'while backing off with no process, a request is answered with the last error at once');
  pool.close();
});

test('a process that dies soon after it came up is a crash: replaced at once, no backoff, waiting requests go to the replacement', async () => {
  const { pool, spawner, options, check, advance } = setup({ minInstances: 2, maxConcurrency: 1 });
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  spawner.finishOne();
  await flush();
  check();
  // Both busy, a third request waits; then a kill storm: every process killed within a second of its start.
  assert.ok(g.checkout() && g.checkout());
  let served: AppProcess | null = null;
  let failed: Error | null = null;
  g.wait((e, p) => { failed = e; served = p; });
  for (let i = 0; i < 6; i++) {
    advance(300);
    const victim = g.processes[g.processes.length - 1];
    (victim.handle as FakeHandle).exit(null, 'SIGKILL');
    check();
    assert.equal(g.spawnFailures, 0, 'a crash is not a failed spawn');
    assert.equal(g.backingOff(), false);
    assert.equal(spawner.pending.length, 1, 'replaced at once');
    assert.equal(failed, null, 'the waiting request was not failed');
    spawner.finishOne();
    await flush();
    check();
    if (i === 0) assert.ok(served, 'the waiting request went to the replacement');
  }
  while (spawner.pending.length > 0) { spawner.finishOne(); await flush(); }
  check();
  assert.equal(g.processes.filter((p) => p.life === 'alive').length, 2, 'back at min_instances');
  pool.close();
});

test('the backoff resets once a process has lived through the minimum uptime', async () => {
  const { pool, spawner, options, check, advance } = setup({ minInstances: 1 });
  const g = pool.group(options);
  spawner.failOne();
  await flush();
  spawner.failOne();
  await flush();
  assert.equal(g.spawnFailures, 2);
  advance(spawnDelay(2));
  pool.spawnIfNeeded(g);
  const h = spawner.finishOne();
  await flush();
  advance(5_000);
  pool.forgiveStable();
  assert.equal(g.spawnFailures, 2, 'not yet: 5 s of uptime');
  advance(6_000);
  pool.forgiveStable();
  assert.equal(g.spawnFailures, 0);
  // Later trouble starts afresh: the first failed spawn is retried at once.
  h.exit(null, 'SIGKILL');
  check();
  assert.equal(spawner.pending.length, 1, 'replaced at once');
  spawner.failOne();
  await flush();
  check();
  assert.equal(g.backingOff(), false);
  assert.equal(spawner.pending.length, 1, 'a first failure is retried at once');
  pool.close();
});

test('an app that keeps failing to start waits for a request instead of retrying for nobody', async () => {
  const { pool, spawner, options, check, advance } = setup({ minInstances: 1 });
  const g = pool.group(options);
  for (let i = 0; i <= UNASKED_RETRIES; i++) {
    advance(60_000);
    pool.spawnIfNeeded(g);
    spawner.failOne();
    await flush();
    check();
  }
  advance(60_000);
  pool.spawnIfNeeded(g);
  assert.equal(spawner.pending.length, 0, 'no request asks for it: no more spawns');
  let answered: Error | null | undefined;
  g.wait((e) => { answered = e; });
  assert.equal(spawner.pending.length, 1, 'a request asks: it is tried again');
  spawner.finishOne();
  await flush();
  check();
  assert.equal(answered, null);
  pool.close();
});

test('behind a web server a group with no process and no request is forgotten after pool_idle_time', async () => {
  let now = 1_000_000;
  const spawner = new FakeSpawner();
  const pool = new Pool({ maxPoolSize: 6, spawner, log: { info() {}, warn() {}, error() {} }, now: () => now, forgetIdleGroups: true });
  const base = groupOptions(defaults('/app'));
  const broken = pool.group({ ...base, appRoot: '/broken', minInstances: 1, poolIdleTime: 300 });
  const working = pool.group({ ...base, appRoot: '/working', minInstances: 1, poolIdleTime: 300 });
  spawner.failOne(); // /broken
  spawner.finishOne(); // /working
  await flush();
  while (spawner.pending.length > 0) {
    spawner.failOne(); // /broken, retried a few times, then left alone
    await flush();
    now += 60_000;
    pool.spawnIfNeeded(broken);
  }
  assert.equal(broken.spawnFailures, UNASKED_RETRIES + 1);
  now = broken.lastWanted + 299_000;
  pool.forgetIdle();
  assert.equal(pool.groups.size, 2, 'not idle long enough yet');
  now += 2_000;
  pool.forgetIdle();
  assert.deepEqual([...pool.groups.keys()], ['/working'], 'the group with a live process stays');
  assert.equal(broken.forgotten, true);
  assert.equal(working.forgotten, false);
  verifyInvariants(pool);
  pool.close();
});

test('backoff doubles up to a cap', () => {
  assert.equal(spawnDelay(0), 0);
  assert.equal(spawnDelay(1), 0);
  assert.equal(spawnDelay(2), 500);
  assert.equal(spawnDelay(3), 1000);
  assert.equal(spawnDelay(30), 30_000);
});

test('idle processes above min_instances are shut down after pool_idle_time', async () => {
  const { pool, spawner, options, check, advance } = setup({ minInstances: 1, poolIdleTime: 10, maxConcurrency: 1 });
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  const busy = g.checkout()!;
  g.wait(() => undefined);
  spawner.finishOne();
  await flush();
  g.release(busy);
  g.release(g.processes[1]);
  check();
  assert.equal(g.processes.length, 2);
  advance(11_000);
  pool.reapIdle();
  await flush();
  check();
  assert.equal(g.processes.length, 1, 'one idle process shut down, min_instances kept');
});

test('an adopted process is idle from its adoption, not from its spawn: a new core does not shut down what its predecessor just used', async () => {
  const { pool, options, check, advance } = setup({ minInstances: 1, poolIdleTime: 10 });
  const spawnedAt = 1_000_000 - 60_000;
  for (const pid of [2001, 2002]) pool.adopt(options, new FakeHandle(pid), pid, spawnedAt);
  const g = pool.group(options);
  check();
  pool.reapIdle();
  await flush();
  assert.equal(g.processes.length, 2, 'both kept right after adoption');
  advance(11_000);
  pool.reapIdle();
  await flush();
  check();
  assert.equal(g.processes.length, 1, 'idle for pool_idle_time since adoption: one goes, min_instances kept');
});

test('a detached process drains: it is told to leave only when its sessions end', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 });
  const g = pool.group(options);
  const h = spawner.finishOne();
  await flush();
  const p = g.checkout()!;
  assert.equal(g.retire(p, 'detached'), true);
  assert.equal(g.retire(p, 'detached'), false, 'safe to call twice');
  check();
  assert.equal(p.life, 'draining');
  assert.equal(p.leaveReason, 'detached');
  assert.equal(h.stopped, false);
  assert.equal(g.checkout(), null, 'a detached process takes no new session');
  g.release(p);
  assert.equal(h.stopped, true);
  await flush();
  check();
});

test('invariants: a process waits for a replacement only while alive; a drain timer runs only while a leaving process has work', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 }, 1);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  const p = g.checkout()!;
  g.retire(p, 'memory_limit'); // a full pool: it drains now, and waits for nothing
  assert.equal(p.life, 'draining');
  assert.equal(p.replacement, null);
  assert.equal(p.leaveReason, 'memory_limit');
  assert.notEqual(p.drainTimer, null);
  check();
  p.replacement = { reason: 'memory_limit', serving: true };
  assert.throws(() => verifyInvariants(pool), /waits for a replacement but is draining/);
  p.replacement = null;
  p.sessions = 0;
  assert.throws(() => verifyInvariants(pool), /is draining with 0 sessions and 0 WebSockets, with a drain timer/);
  p.sessions = 1;
  check();
  g.release(p);
  assert.equal(p.drainTimer, null);
  assert.notEqual(p.life, 'draining', 'told to leave once its last request ended');
  await flush();
  check();
});

test('replace: with room in the pool the new process comes first, then the old one leaves', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 }, 2);
  const g = pool.group(options);
  const old = spawner.finishOne();
  await flush();
  const p = g.processes[0];
  g.retire(p, 'memory_limit');
  check();
  assert.equal(p.life, 'alive', 'the old process still serves');
  assert.deepEqual(p.replacement, { reason: 'memory_limit', serving: true });
  assert.equal(p.enabled, true);
  assert.equal(spawner.pending.length, 1);
  spawner.finishOne();
  await flush();
  check();
  assert.equal(old.stopped, true, 'the old process left once the new one was up');
  assert.equal(g.processes.length, 1);
});

test('replace: with a full pool the old process drains first, then the replacement starts', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 }, 1);
  const g = pool.group(options);
  const old = spawner.finishOne();
  await flush();
  g.retire(g.processes[0], 'memory_limit');
  check();
  assert.equal(old.stopped, true);
  await flush();
  assert.equal(spawner.pending.length, 1, 'the replacement follows');
});

test('rolling restart replaces one process at a time and keeps one serving throughout', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 2 }, 2);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  spawner.finishOne();
  await flush();
  const before = g.processes.map((p) => p.pid);
  const done = g.restart(true);
  let finished = false;
  void done.then(() => { finished = true; }, () => undefined);
  for (let i = 0; i < 2; i++) {
    await flush();
    check();
    assert.ok(!finished, `the restart is not done before replacement ${i + 1} of 2 serves`);
    assert.ok(g.enabledCount() >= 1, 'a process serves during the restart');
    spawner.finishOne();
    await flush();
  }
  await flush();
  assert.ok(finished, 'the restart is done once the last replacement serves');
  await done;
  check();
  assert.equal(g.processes.length, 2);
  assert.ok(g.processes.every((p) => !before.includes(p.pid)));
});

test('restarts never interleave: one asked while another runs starts once it is over', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 }, 2);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  const first = g.processes[0];
  const order: string[] = [];
  const a = g.restart(true).then(() => { order.push('first done'); });
  const b = g.restart(false).then(() => { order.push('second done'); });
  assert.equal(g.isRestarting, true);
  await flush();
  check();
  assert.deepEqual(first.replacement, { reason: 'rolling_restart', serving: true }, 'the rolling restart runs first');
  assert.equal(spawner.pending.length, 1, 'only the first restart spawns');
  const second = spawner.finishOne();
  await a;
  await flush();
  check();
  assert.equal(first.life, 'dead');
  assert.equal(second.stopped, true, 'then the second restart replaced the first one\'s new process');
  spawner.finishOne();
  await b;
  assert.deepEqual(order, ['first done', 'second done']);
  assert.equal(g.isRestarting, false);
  check();
});

test('passenger-status says why a process is replaced or leaves', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 }, 2);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  const p = g.checkout()!;
  g.retire(p, 'memory_limit');
  check();
  let [snap] = snapshotPool(pool).groups[0].processes;
  assert.deepEqual([snap.state, snap.leave_reason], ['alive', 'memory_limit'], 'it serves while its replacement starts');
  spawner.finishOne();
  await flush();
  check();
  snap = snapshotPool(pool).groups[0].processes.find((x) => x.pid === p.pid)!;
  assert.deepEqual([snap.state, snap.leave_reason], ['shutting_down', 'memory_limit'], 'it drains its request');
  assert.equal(snapshotPool(pool).groups[0].processes.find((x) => x.pid !== p.pid)?.leave_reason, null);
  g.release(p);
  await flush();
  check();
});

test('a full pool: a group with waiting requests and no process takes the idle process of another group', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1 }, 1);
  const a = pool.group(options);
  spawner.finishOne();
  await flush();
  const b = pool.group({ ...options, appRoot: '/other', minInstances: 0 });
  let served = false;
  b.wait(() => { served = true; });
  check();
  assert.equal(a.processes[0]?.life ?? 'dead', 'dead', 'the idle process of the other group gave way');
  await flush();
  spawner.finishOne();
  await flush();
  check();
  assert.ok(served);
  assert.equal(b.processes.length, 1);
});

test('a queued request can be cancelled, and times out after max_request_queue_time', async () => {
  const { pool, options, check } = setup({ minInstances: 1, maxRequestQueueTime: 0.05 as number });
  const g = pool.group(options);
  let err: Error | null = null;
  const entry = g.wait(() => undefined);
  g.wait((e) => { err = e; });
  g.cancelWait(entry!);
  assert.equal(g.queue.length, 1);
  await new Promise((r) => setTimeout(r, 100));
  assert.equal((err as { code?: string } | null)?.code, 'E_QUEUE_TIMEOUT');
  assert.equal(g.queue.length, 0);
  check();
  await pool.close();
});

test('scale_at_sessions: when every process is that busy, one more process is spawned', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1, scaleAtSessions: 2 }, 3);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  g.checkout();
  assert.equal(spawner.pending.length, 0);
  g.checkout();
  check();
  assert.equal(spawner.pending.length, 1, 'a second process for the load');
  spawner.finishOne();
  await flush();
  check();
  assert.equal(g.processes.length, 2);
});

test('max_requests N: a process takes at most N requests, and none while its replacement starts', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1, maxRequests: 3 }, 2);
  const g = pool.group(options);
  const old = spawner.finishOne();
  await flush();
  const p = g.processes[0];
  for (let i = 0; i < 3; i++) {
    assert.equal(g.checkout(), p, `request ${i + 1} goes to the first process`);
    check();
    g.release(p);
    check();
  }
  assert.equal(p.enabled, false, 'the 3rd request was its last');
  assert.deepEqual(p.replacement, { reason: 'max_requests', serving: false });
  assert.equal(spawner.pending.length, 1, 'its replacement is under way');
  assert.equal(g.checkout(), null, 'a 4th request waits');
  let servedBy: AppProcess | null = null;
  g.wait((err, proc) => { assert.equal(err, null); servedBy = proc; });
  check();
  spawner.finishOne();
  await flush();
  check();
  assert.ok(servedBy !== null && servedBy !== p, 'the waiting request went to the replacement');
  assert.equal(old.stopped, true, 'the old process left');
});

test('max_requests: requests in flight count, so concurrent requests never exceed the limit', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 1, maxRequests: 2 }, 2);
  const g = pool.group(options);
  const old = spawner.finishOne();
  await flush();
  const p = g.processes[0];
  assert.equal(g.checkout(), p);
  assert.equal(g.checkout(), p);
  assert.equal(g.checkout(), null, 'two in flight reach the limit of two');
  check();
  spawner.finishOne();
  await flush();
  assert.equal(p.life, 'draining', 'it leaves once the replacement is up');
  assert.equal(p.leaveReason, 'max_requests');
  assert.equal(old.stopped, false, 'its requests in flight finish first');
  g.release(p);
  g.release(p);
  assert.equal(old.stopped, true);
  check();
});

test('a leaving process is announced; with open WebSockets it is told to leave only once they are closed', async () => {
  let now = 1_000_000;
  const leaving: AppProcess[] = [];
  const spawner = new FakeSpawner();
  const pool = new Pool({ maxPoolSize: 2, spawner, log: { info() {}, warn() {}, error() {} }, now: () => now, events: { processLeaving: (p) => leaving.push(p) } });
  const g = pool.group({ ...groupOptions(defaults('/app')), minInstances: 1, abortWebsocketsOnProcessShutdown: false });
  const h = spawner.finishOne();
  await flush();
  const p = g.processes[0];
  assert.equal(g.checkout(), p);
  g.upgraded(p);
  assert.equal(p.websockets, 1);
  g.retire(p, 'detached');
  assert.deepEqual(leaving, [p]);
  assert.equal(h.stopped, false, 'the open WebSocket keeps it');
  g.websocketClosed(p);
  assert.equal(h.stopped, true, 'told to leave once the socket closed');
  now += 1;
  verifyInvariants(pool);
});

/** A process that took its last request (max_requests 1): it takes no more while its replacement spawns. */
async function servedItsLast() {
  const { pool, spawner, options, check } = setup({ minInstances: 1, maxRequests: 1 }, 2);
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  const p = g.processes[0];
  assert.equal(g.checkout(), p);
  g.release(p);
  assert.equal(p.enabled, false);
  return { spawner, check, g, p };
}

test('a replacement that fails to start leaves the process that was waiting for it serving', async () => {
  const { spawner, check, g, p } = await servedItsLast();
  spawner.failOne();
  await flush();
  assert.equal(p.enabled, true, 'it serves again meanwhile');
  check();
  g.cancelTimers();
});

test('requests that waited for a replacement that failed to start go to the process that serves again', async () => {
  const { spawner, check, g, p } = await servedItsLast();
  let got: unknown = 'nothing yet';
  g.wait((err, proc) => { got = err ?? proc; });
  assert.equal(g.queue.length, 1);
  spawner.failOne();
  await flush();
  assert.equal(got, p, 'the waiting request went to the process that serves again');
  assert.equal(g.queue.length, 0);
  check();
  g.release(p);
  g.cancelTimers();
});

test('a stop: an idle process is told to leave at once, a busy one when the stop drain window is up (capped by shutdown_timeout)', async () => {
  const { pool, spawner, options, check } = setup({ minInstances: 2, shutdownTimeout: 1 });
  const g = pool.group(options);
  spawner.finishOne();
  await flush();
  spawner.finishOne();
  await flush();
  const [busy, idle] = [g.checkout()!, g.processes.find((p) => p.sessions === 0)!];
  const closed = pool.close();
  check();
  assert.equal((idle.handle as FakeHandle).stopped, true, 'the idle process is told at once');
  assert.equal(busy.life, 'draining');
  assert.equal(busy.leaveReason, 'stop');
  assert.equal((busy.handle as FakeHandle).stopped, false, 'the busy one runs its request first');
  // Told when its 1 s is up (no release came), and gone. (The agent's timers do not hold the event loop open: this does.)
  const keepAlive = setInterval(() => undefined, 100);
  await closed.finally(() => clearInterval(keepAlive));
  assert.equal((busy.handle as FakeHandle).stopped, true);
  assert.equal(g.processes.length, 0);
});

test('stop policy: the watchdog waits longer than the core\'s own bound, which covers the drain window and shutdown_timeout', () => {
  for (const s of [1, 4, 30, 300]) {
    assert.ok(coreStopBoundMs(s) >= STOP_DRAIN_MS + s * 1000 + KILL_WAIT_MS + STOP_FLUSH_MS);
    assert.ok(watchdogStopBoundMs(s) > coreStopBoundMs(s));
    assert.equal(drainMs(s, true), Math.min(STOP_DRAIN_MS, s * 1000), 'a stop drains for the window, or shutdown_timeout if shorter');
    assert.equal(drainMs(s, false), s * 1000, 'any other leave drains for shutdown_timeout');
    assert.equal(leaveTimeoutMs(s, 2000), Math.min(s * 1000, 2000));
  }
});
