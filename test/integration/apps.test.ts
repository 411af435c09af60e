// Kinds of apps: the listen hook, Express-style, ESM entry files, any program
// through app_start_command, and the environment apps get.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { appCopy, eventually, request, startServer } from '../helpers';

test('an unmodified app that listens on port 3000 is served, two processes at once', async (t) => {
  const s = await startServer(t, appCopy(t, 'basic'), ['--min-instances', '2']);
  await eventually(async () => (await s.appPids()).length === 2, 20_000, 'two processes');
  // Two requests at once go to the two processes (least busy first).
  const [a, b] = await Promise.all([request(s.port, '/sleep?ms=300'), request(s.port, '/sleep?ms=300')]);
  assert.notEqual(a.body.split(' in ')[1], b.body.split(' in ')[1], 'both processes listened "on port 3000" without a conflict');
});

test('an Express-style app.listen(process.env.PORT) app is served', async (t) => {
  const s = await startServer(t, appCopy(t, 'express-style'));
  const r = await request(s.port, '/');
  assert.equal(r.status, 200);
  assert.match(r.body, /^express-style \d+/);
});

test('an ESM entry file (.mjs) is served', async (t) => {
  const s = await startServer(t, appCopy(t, 'esm-mjs'));
  assert.match((await request(s.port, '/')).body, /^esm mjs \d+/);
});

test('an ESM app ("type": "module") is served', async (t) => {
  const s = await startServer(t, appCopy(t, 'esm-module'));
  assert.match((await request(s.port, '/')).body, /^esm module \d+/);
});

test('any program runs through --app-start-command with PORT set', async (t) => {
  const s = await startServer(t, appCopy(t, 'generic'), ['--app-start-command', `${process.execPath} server.js`]);
  const r = await request(s.port, '/');
  assert.equal(r.status, 200);
  assert.match(r.body, /^generic on \d+ loader=none/);
});

test('apps get PASSENGER_APP_ENV, NODE_ENV, IN_PASSENGER and --envvar; flags win over Passengerfile.json', async (t) => {
  const dir = appCopy(t, 'basic');
  const fs = await import('node:fs');
  fs.writeFileSync(`${dir}/Passengerfile.json`, JSON.stringify({ environment: 'staging', envvars: { GREETING: 'from file' } }));
  const s = await startServer(t, dir, ['--envvar', 'GREETING=from flag']);
  const env = JSON.parse((await request(s.port, '/env')).body);
  assert.deepEqual(env, { PASSENGER_APP_ENV: 'staging', NODE_ENV: 'staging', IN_PASSENGER: '1', GREETING: 'from flag' });
  // Forwarded headers carry the client's address and scheme.
  const h = JSON.parse((await request(s.port, '/headers', { headers: { 'x-custom': 'yes' } })).body);
  assert.equal(h['x-custom'], 'yes');
  assert.equal(h['x-forwarded-for'], '127.0.0.1');
  assert.equal(h['x-forwarded-proto'], 'http');
  assert.equal(h.host, `127.0.0.1:${s.port}`);
});
