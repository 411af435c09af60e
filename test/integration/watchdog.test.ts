// The watchdog restarts a dead agent core.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { appCopy, eventually, isAlive, request, startServer } from '../helpers';

test('kill -9 of the agent core: the watchdog starts a new one and serving resumes', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'));
  assert.equal((await request(s.port, '/')).status, 200);
  const pidFile = path.join(s.instanceDir(), 'core.pid');
  const oldCore = Number(fs.readFileSync(pidFile, 'utf8'));
  process.kill(oldCore, 'SIGKILL');
  const newCore = await eventually(() => {
    const p = Number(fs.readFileSync(pidFile, 'utf8'));
    return p !== oldCore && isAlive(p) ? p : null;
  }, 20_000, 'a new core');
  assert.ok(isAlive(s.child.pid as number), 'the watchdog lives on');
  await eventually(async () => (await request(s.port, '/').catch(() => ({ status: 0 }))).status === 200, 20_000, 'serving again');
  assert.match(s.output(), /agent core .* died \(signal SIGKILL\); restarting it/);
  assert.ok(isAlive(newCore));
});
