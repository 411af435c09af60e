// Processes killed one after another under load: each is a crash, replaced at
// once; only requests in flight on a killed process may fail, and the pool
// comes back to min_instances.
import assert from 'node:assert/strict';
import * as http from 'node:http';
import { test } from 'node:test';
import { appCopy, eventually, isAlive, sleep, startServer } from '../helpers';

const PROCESSES = 4;
const CLIENTS = 16;
const STORM_MS = 12_000;
const KILL_EVERY_MS = 300;

test('a kill storm under load: killed processes are replaced at once, no request gets "could not be started", the pool returns to min_instances', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--environment', 'production',
    '--min-instances', String(PROCESSES), '--max-pool-size', String(PROCESSES)]);
  await eventually(async () => (await s.appPids()).length === PROCESSES, 30_000, `${PROCESSES} processes`);

  // CLIENTS keep-alive clients sending GET /pid back to back, bounded in time and count.
  const agent = new http.Agent({ keepAlive: true, maxSockets: CLIENTS });
  t.after(() => agent.destroy());
  const get = (): Promise<{ status: number; body: string }> => new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port: s.port, path: '/pid', agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', (e) => resolve({ status: 0, body: e.message }));
    });
    req.setTimeout(30_000, () => req.destroy(new Error('timeout')));
    req.on('error', (e) => resolve({ status: 0, body: e.message }));
  });
  let stop = false;
  let served = 0;
  const failures: string[] = [];
  /** The processes that answered lately: the ones to kill (they are ours, they answered through the server). */
  const recent = new Set<number>();
  const end = Date.now() + STORM_MS + 60_000;
  const load = Promise.all(Array.from({ length: CLIENTS }, async () => {
    while (!stop && Date.now() < end && served + failures.length < 200_000) {
      const r = await get();
      if (r.status === 200) {
        served++;
        recent.add(Number(r.body));
      } else {
        failures.push(`${r.status} ${r.body.slice(0, 100)}`);
      }
    }
  }));

  let kills = 0;
  const stormEnd = Date.now() + STORM_MS;
  while (Date.now() < stormEnd) {
    const victims = [...recent].filter((pid) => pid > 1 && isAlive(pid));
    recent.clear();
    if (victims.length > 0) {
      process.kill(victims[Math.floor(Math.random() * victims.length)], 'SIGKILL');
      kills++;
    }
    await sleep(KILL_EVERY_MS);
  }
  const servedDuringStorm = served;
  const failedDuringStorm = failures.length;
  await eventually(async () => (await s.appPids()).length === PROCESSES, 30_000, `the pool back at ${PROCESSES} processes`);
  const backAfterMs = Date.now() - stormEnd;
  // The load goes on a little: requests after the storm are served.
  await eventually(() => served > servedDuringStorm + 100, 30_000, 'requests served after the storm');
  stop = true;
  await load;

  t.diagnostic(`${kills} kills; ${servedDuringStorm} served and ${failedDuringStorm} failed during the storm; ${failures.length} failed in all; ${PROCESSES} processes again ${backAfterMs} ms after the storm (passenger-status polled)`);
  // No request is refused because the app "could not be started": a killed process is no failed start.
  assert.deepEqual(failures.filter((f) => f.startsWith('500')).slice(0, 5), []);
  assert.ok(kills >= STORM_MS / KILL_EVERY_MS / 2, `only ${kills} kills`);
  // At most the requests in flight on the killed processes fail (about CLIENTS / PROCESSES each).
  assert.ok(failures.length <= kills * Math.ceil(CLIENTS / PROCESSES), `${failures.length} failed for ${kills} kills: ${failures.slice(0, 5).join('; ')}`);
});
