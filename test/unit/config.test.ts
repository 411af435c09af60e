// Options: flags, Passengerfile.json, defaults and their errors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { parseFlags, resolveOptions, webAppOptions } from '../../helper-agent/src/config';
import { optionsJson } from '../../helper-agent/src/cli/config/app-snippet';
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

test('web server settings: a printed snippet\'s JSON reads back as written; only an app\'s own options are taken', () => {
  const written = { startupFile: 'se rv$.js', envvars: { GREETING: 'a "b" $HOME %{x}e \\ caf\u00e9' }, minInstances: 2, user: 'app', nodejs: '/opt/node/bin/node' };
  const json = optionsJson(written);
  assert.doesNotMatch(json, /[$%'\\\u0080-\uffff](?!u[0-9a-f]{4})/, 'no character either web server or HTTP would change');
  assert.deepEqual(webAppOptions(json), written);
  assert.throws(() => webAppOptions('{"port": 80}'), (e: Error) => e instanceof ConfigError && /unknown key "port"/.test(e.message));
  assert.throws(() => webAppOptions('{"max_pool_size": 80}'), ConfigError);
  assert.throws(() => webAppOptions('{"min_instances": "many"}'), ConfigError);
  assert.throws(() => webAppOptions('not json'), ConfigError);
  assert.throws(() => webAppOptions('[1]'), ConfigError);
});
