// The loader channel takes a message only from the process its token was
// given to: a token read from another process's environment (as its user, or
// root, can) is of no use from anywhere else, and reported counters are bounded.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as path from 'node:path';
import { test } from 'node:test';
import { appCopy, eventually, request, startServer } from '../helpers';

test('a stats report sent with a stolen token from another process is refused and logged', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--direct-mode', '--min-instances', '1', '--max-pool-size', '1']);
  assert.equal((await request(s.port, '/')).status, 200);
  const [pid] = await s.appPids();
  const env = fs.readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  const token = env.find((e) => e.startsWith('PASSENGER_LOADER_TOKEN='))?.split('=')[1];
  assert.ok(token, 'the app was given a token');
  const sock = net.connect(path.join(s.instanceDir(), 'channel.sock'));
  await new Promise((r, j) => { sock.once('connect', r); sock.once('error', j); });
  sock.write(`${JSON.stringify({ type: 'stats', token, pid, sessions: 1_000_000, processed: 5, lastUsed: Date.now() })}\n`);
  await eventually(() => new RegExp(`refused a message for process ${pid} from process ${process.pid}`).test(s.output()), 15_000, 'the refusal in the log');
  sock.destroy();
  const doc = await s.status();
  assert.ok(doc.groups[0].processes[0].sessions < 1_000_000, 'the forged count was not taken');
  // The process still gets requests.
  for (let i = 0; i < 5; i++) assert.equal((await request(s.port, '/')).status, 200);
});
