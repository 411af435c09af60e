// Options: flags, Passengerfile.json, defaults and their errors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { appFileOptions, groupOptions, parseFlags, resolveOptions } from '../../helper-agent/src/config';
import { ConfigError } from '../../helper-agent/src/errors';

function appDir(t: { after(fn: () => void): void }, passengerfile?: string): string {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), 'ptest-cfg-'));
  t.after(() => fs.rmSync(d, { recursive: true, force: true }));
  if (passengerfile !== undefined) fs.writeFileSync(path.join(d, 'Passengerfile.json'), passengerfile);
  return d;
}

test('flags: --flag value, --flag=value, booleans, --no-, repeated --envvar', () => {
  const { values, positionals } = parseFlags(['app', '--port', '8000', '--min-instances=2', '--daemonize', '--no-friendly-error-pages', '--envvar', 'A=1', '--envvar', 'B=x=y']);
  assert.deepEqual(positionals, ['app']);
  assert.equal(values.port, 8000);
  assert.equal(values.minInstances, 2);
  assert.equal(values.daemonize, true);
  assert.equal(values.friendlyErrorPages, false);
  assert.deepEqual(values.envvars, { A: '1', B: 'x=y' });
  assert.equal(parseFlags(['--log-level', 'debug']).values.logLevel, 5);
});

test('flags: unknown flags and bad values are ConfigErrors naming them', () => {
  assert.throws(() => parseFlags(['--prot', '1']), (e: unknown) => e instanceof ConfigError && /unknown flag --prot/.test(e.message));
  assert.throws(() => parseFlags(['--port']), /--port needs a value/);
  assert.throws(() => parseFlags(['--port', '0']), /--port: must be at least 1/);
  assert.throws(() => parseFlags(['--envvar', 'NOVALUE']), /expected NAME=VALUE/);
  assert.throws(() => parseFlags(['--app-type', 'rack']), /not supported/);
  assert.throws(() => parseFlags(['-x']), /unknown flag -x/);
});

test('Passengerfile.json sets options; flags win; envvars merge', (t) => {
  const d = appDir(t, JSON.stringify({ port: 4000, min_instances: 2, envvars: { A: 'file', B: 'file' } }));
  const o = resolveOptions(parseFlags(['--port', '5000', '--envvar', 'B=flag']).values, d);
  assert.equal(o.port, 5000);
  assert.equal(o.minInstances, 2);
  assert.deepEqual(o.envvars, { A: 'file', B: 'flag' });
  assert.equal(o.maxPoolSize, 6);
  assert.equal(o.environment, 'development');
});

test('Passengerfile.json errors name the file and the key', (t) => {
  assert.throws(() => resolveOptions({}, appDir(t, '{')), /Passengerfile\.json is not valid JSON/);
  assert.throws(() => resolveOptions({}, appDir(t, '[]')), /must hold a JSON object/);
  assert.throws(() => resolveOptions({}, appDir(t, '{"max_pool_size": "big"}')), /"max_pool_size": expected a whole number/);
  assert.throws(() => resolveOptions({}, appDir(t, '{"min_instances": 9}')), /larger than max_pool_size/);
  assert.throws(() => resolveOptions({}, '/nonexistent/app'), /does not exist/);
});

test('shutdown_timeout and abort_websockets_on_process_shutdown: defaults, flags, Passengerfile.json, per app', () => {
  const d = resolveOptions({}, appDir({ after: (fn) => process.on('exit', fn) }));
  assert.equal(d.shutdownTimeout, 30);
  assert.equal(d.abortWebsocketsOnProcessShutdown, true);
  const f = parseFlags(['--shutdown-timeout', '5', '--no-abort-websockets-on-process-shutdown']).values;
  assert.equal(f.shutdownTimeout, 5);
  assert.equal(f.abortWebsocketsOnProcessShutdown, false);
  assert.throws(() => parseFlags(['--shutdown-timeout', '0']), /at least 1/);
  const file = resolveOptions({}, appDir({ after: (fn) => process.on('exit', fn) }, '{"shutdown_timeout": 7, "abort_websockets_on_process_shutdown": false}'));
  assert.equal(file.shutdownTimeout, 7);
  assert.equal(file.abortWebsocketsOnProcessShutdown, false);
  const g = groupOptions(file);
  assert.equal(g.shutdownTimeout, 7);
  assert.equal(g.abortWebsocketsOnProcessShutdown, false);
  assert.deepEqual(appFileOptions({ shutdownTimeout: 7, abortWebsocketsOnProcessShutdown: false }).ignored, [], 'an app behind a web server sets both itself');
});
