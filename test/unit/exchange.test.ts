// The request core (proxy/exchange.ts, pool/session.ts) on a real pool with
// a fake spawner: whatever state an exchange is in when it ends, it gives
// back exactly what it holds, once; failures at the app's side lead to a
// retry, a 502 or a cut-off response as the retry policy says.
import assert from 'node:assert/strict';
import type { IncomingMessage } from 'node:http';
import { test } from 'node:test';
import { defaults, groupOptions, type GroupOptions } from '../../helper-agent/src/config';
import type { Group } from '../../helper-agent/src/pool/group';
import { verifyInvariants } from '../../helper-agent/src/pool/invariants';
import { Pool } from '../../helper-agent/src/pool/pool';
import type { ProcessHandle } from '../../helper-agent/src/pool/process';
import { Session } from '../../helper-agent/src/pool/session';
import { Exchange } from '../../helper-agent/src/proxy/exchange';

class FakeHandle implements ProcessHandle {
  readonly endpoint = { socketPath: '/dev/null' };
  private exitCb: ((c: number | null, s: string | null) => void) | null = null;
  constructor(readonly pid: number) {}
  onExit(cb: (c: number | null, s: string | null) => void): void { this.exitCb = cb; }
  async stop(): Promise<void> {
    const cb = this.exitCb;
    this.exitCb = null;
    cb?.(0, null);
  }
}

const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A group with `n` processes up. */
async function groupOf(n: number, opts: Partial<GroupOptions> = {}): Promise<{ pool: Pool; g: Group }> {
  let pid = 5000;
  const spawner = { spawn: async (): Promise<ProcessHandle> => new FakeHandle(pid++) };
  const pool = new Pool({ maxPoolSize: 6, spawner, log: { info() {}, warn() {}, error() {} }, now: () => 1_000_000 });
  const g = pool.group({ ...groupOptions(defaults('/app')), minInstances: n, scaleAtSessions: 0, ...opts });
  for (let i = 0; i < 50 && g.processes.length < n; i++) await flush();
  assert.equal(g.processes.length, n);
  return { pool, g };
}

/** An exchange whose I/O is a record of what the core asked for. */
class Probe extends Exchange {
  readonly calls: string[] = [];
  readonly sentTo: number[] = [];
  gone = false;
  constructor(g: Group, readonly withBody = false, method = 'GET') {
    super({ method, url: '/x', headers: {}, socket: {} } as unknown as IncomingMessage, g, { warn() {} });
  }
  protected send(s: Session): void { this.sentTo.push(s.process.pid); }
  protected answer(err: Error): void { this.calls.push(`answer ${(err as { code?: string }).code}`); }
  protected clientGone(): boolean { return this.gone; }
  protected cutClient(): void { this.calls.push('cut'); }
  protected abortApp(): void { this.calls.push('abort'); }
  protected onClosed(): void { this.calls.push('closed'); }
  respond(): void { this.responding(); }
  upgrade(): void { this.upgraded(); }
  done(): void { this.complete(); }
}

const sessions = (g: Group): number => g.processes.reduce((n, p) => n + p.sessions, 0);
const coded = (code: string): Error => Object.assign(new Error(code), { code });

test('a session closes once: a second close does not release the process again', async () => {
  const { pool, g } = await groupOf(1);
  const s = Session.checkout(g, null) as Session;
  assert.equal(g.processes[0].sessions, 1);
  s.close();
  s.close();
  assert.equal(g.processes[0].sessions, 0);
  assert.equal(g.processes[0].processed, 1);
  verifyInvariants(pool);
  await pool.close();
});

test('closed in each state, an exchange gives back what it holds, once, and cuts the app off only while it is there', async () => {
  const { pool, g } = await groupOf(1, { maxConcurrency: 1 });
  const held = new Probe(g);
  held.close();
  held.close();
  assert.deepEqual(held.calls, ['closed']);

  const forwarded = new Probe(g);
  forwarded.start();
  assert.equal(forwarded.state, 'forwarded');
  assert.equal(sessions(g), 1);

  const queued = new Probe(g);
  queued.start();
  assert.equal(queued.state, 'queued');
  assert.equal(g.queue.length, 1);
  queued.close();
  assert.equal(g.queue.length, 0, 'its place in the queue is given back');
  assert.deepEqual(queued.calls, ['closed']);

  forwarded.respond();
  assert.equal(forwarded.state, 'responding');
  forwarded.close();
  forwarded.close();
  assert.deepEqual(forwarded.calls, ['abort', 'closed']);
  assert.equal(sessions(g), 0);
  assert.equal(queued.sentTo.length, 0, 'a closed exchange is never dispatched');

  const completed = new Probe(g);
  completed.start();
  completed.done();
  completed.close();
  assert.deepEqual(completed.calls, ['closed'], 'a complete answer needs no abort');
  assert.equal(sessions(g), 0);
  verifyInvariants(pool);
  await pool.close();
});

test('a WebSocket counts apart from sessions until its exchange closes', async () => {
  const { pool, g } = await groupOf(1);
  const ws = new Probe(g);
  ws.start();
  ws.upgrade();
  assert.equal(ws.state, 'websocket');
  const p = g.processes[0];
  assert.equal(p.sessions, 0);
  assert.equal(p.websockets, 1);
  ws.close();
  ws.close();
  assert.equal(p.websockets, 0);
  await pool.close();
});

test('a refused connection takes the process out and sends the request to another; a lost POST is answered 502', async () => {
  const { pool, g } = await groupOf(2);
  const ex = new Probe(g, false, 'POST');
  ex.start();
  const first = ex.sentTo[0];
  ex.upstreamFailed(coded('ECONNREFUSED'));
  assert.equal(ex.sentTo.length, 2);
  assert.notEqual(ex.sentTo[1], first, 'retried on the other process');
  const refused = g.processes.find((p) => p.pid === first);
  assert.ok(refused === undefined || refused.life !== 'alive', 'the process that refused left rotation');
  ex.upstreamFailed(coded('ECONNRESET'));
  assert.deepEqual(ex.calls, ['answer E_APP_CONNECTION_LOST', 'closed']);
  assert.equal(ex.state, 'closed');
  assert.equal(sessions(g), 0);
  await pool.close();
});

test('a failure while the answer streams cuts the client off; one after the client left answers nobody', async () => {
  const { pool, g } = await groupOf(1);
  const streaming = new Probe(g);
  streaming.start();
  streaming.respond();
  streaming.upstreamFailed(coded('ECONNRESET'));
  assert.deepEqual(streaming.calls, ['cut', 'closed']);

  const left = new Probe(g);
  left.start();
  left.gone = true;
  left.upstreamFailed(coded('ECONNREFUSED'));
  assert.deepEqual(left.calls, ['closed'], 'no retry, no answer');
  assert.equal(sessions(g), 0);
  await pool.close();
});

test('a client with the sticky cookie of a process goes to it; its answer then carries no new cookie', async () => {
  const { pool, g } = await groupOf(2, { stickySessions: true });
  const target = g.processes[1];
  const ex = new (class extends Probe {
    cookie: string | null = null;
    protected override send(s: Session): void { super.send(s); this.cookie = this.stickyCookie(); }
  })(g);
  (ex.req.headers as Record<string, string>).cookie = `${g.options.stickySessionsCookieName}=${target.id}`;
  ex.start();
  assert.deepEqual(ex.sentTo, [target.pid]);
  assert.equal(ex.cookie, null);
  ex.close();
  await pool.close();
});
