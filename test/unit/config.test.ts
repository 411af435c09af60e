// Options: flags, Passengerfile.json, defaults and their errors.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { test } from 'node:test';
import { PASSENGER_ONLY_OPTIONS, appFileOptions, defaultEnvironment, envOptions, groupOptions, parseFlags, resolveOptions, webAppOptions } from '../../helper-agent/src/config';
import { optionsJson } from '../../helper-agent/src/cli/passenger-config/app-snippet';
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

test('flags: --forwarder takes builtin, node-http and reply-from; "direct", its old name, still means builtin', () => {
  for (const f of ['builtin', 'node-http', 'reply-from']) assert.equal(parseFlags(['--forwarder', f]).values.forwarder, f);
  assert.equal(parseFlags(['--forwarder', 'direct']).values.forwarder, 'builtin');
  assert.throws(() => parseFlags(['--forwarder', 'fast']), /expected "builtin", "node-http" or "reply-from"/);
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

test('flags: Passenger\'s short flags stand for their long ones (-p 8000, -p8000, -a, -e, -d, -S)', () => {
  const { values, positionals } = parseFlags(['-p', '8000', '-a', '127.0.0.1', '-e', 'production', '-d', '-S', '/tmp/x.sock', 'app']);
  assert.deepEqual(positionals, ['app']);
  assert.deepEqual([values.port, values.address, values.environment, values.daemonize, values.socket], [8000, '127.0.0.1', 'production', true, '/tmp/x.sock']);
  assert.equal(parseFlags(['-p8001']).values.port, 8001);
  assert.throws(() => parseFlags(['--prot', '1']), (e: unknown) => e instanceof ConfigError && /did you mean --port/.test(e.hint ?? ''));
});

test('flags: Passenger-only options are accepted with one warning, or refused as not supported yet', () => {
  const ok = parseFlags(['--engine', 'builtin', '--disable-security-update-check', '--disable-anonymous-telemetry', '--spawn-method=direct', '--disable-turbocaching', '-p', '9'], undefined, PASSENGER_ONLY_OPTIONS);
  assert.equal(ok.values.port, 9);
  assert.equal(ok.warnings.length, 5);
  assert.match(ok.warnings[0], /^--engine is accepted and ignored: /);
  for (const bad of [['--ssl'], ['--ssl-certificate', 'x.pem'], ['-R', 'config.ru'], ['--rolling-restarts'], ['--concurrency-model', 'thread']]) {
    assert.throws(() => parseFlags(bad, undefined, PASSENGER_ONLY_OPTIONS), (e: unknown) => e instanceof ConfigError && /is not supported yet/.test(e.message), bad.join(' '));
  }
  assert.equal(parseFlags(['--concurrency-model', 'process'], undefined, PASSENGER_ONLY_OPTIONS).warnings.length, 1);
  // Without the table (passenger agent, stop, status), they are unknown flags.
  assert.throws(() => parseFlags(['--engine', 'builtin']), /unknown flag --engine/);
});

test('Passengerfile.json: Passenger-only keys warn or refuse; unknown keys warn naming the nearest known key', (t) => {
  const warnings: string[] = [];
  const d = appDir(t, JSON.stringify({ engine: 'builtin', disable_security_update_check: true, spawn_method: 'direct', ssl: false, min_instnces: 2, port: 4000 }));
  const o = resolveOptions({}, d, d, {}, (m) => warnings.push(m));
  assert.equal(o.port, 4000);
  assert.equal(warnings.length, 5, warnings.join('\n'));
  assert.ok(warnings.some((w) => /"min_instnces" is not a known option: ignored \(did you mean "min_instances"\?\)/.test(w)), warnings.join('\n'));
  assert.throws(() => resolveOptions({}, appDir(t, '{"ssl": true}'), d, {}, () => undefined), /"ssl" is not supported yet/);
  assert.throws(() => resolveOptions({}, appDir(t, '{"base_uri": "/app"}'), d, {}, () => undefined), /"base_uri" is not supported yet/);
});

test('passenger-standalone.json is read when Passengerfile.json is absent, as Passenger does', (t) => {
  const d = appDir(t);
  fs.writeFileSync(path.join(d, 'passenger-standalone.json'), '{"port": 4100}');
  assert.equal(resolveOptions({}, d, d, {}).port, 4100);
  fs.writeFileSync(path.join(d, 'Passengerfile.json'), '{"port": 4200}');
  assert.equal(resolveOptions({}, d, d, {}).port, 4200);
});

test('environment: PASSENGER_<KEY> sets options between the file and the flags; the default env follows RAILS_ENV, RACK_ENV, NODE_ENV, PASSENGER_APP_ENV', (t) => {
  const d = appDir(t, JSON.stringify({ port: 4000, min_instances: 2, max_pool_size: 3 }));
  const env = { PASSENGER_PORT: '5000', PASSENGER_MIN_INSTANCES: '3', PASSENGER_STICKY_SESSIONS: 'yes', PASSENGER_APP_ENV: 'staging', PASSENGER_LOG_FILE: 'x.log', PASSENGER_NOT_AN_OPTION: '1', PASSENGER_MAX_POOL_SIZE: '' };
  const o = resolveOptions(parseFlags(['--min-instances', '1']).values, d, '/somewhere', env);
  assert.deepEqual([o.port, o.minInstances, o.stickySessions, o.maxPoolSize, o.environment, o.logFile], [5000, 1, true, 3, 'staging', '/somewhere/x.log']);
  assert.throws(() => envOptions({ PASSENGER_PORT: 'eighty' }), /environment variable PASSENGER_PORT: expected a whole number/);
  assert.throws(() => envOptions({ PASSENGER_SSL: 'true' }), /PASSENGER_SSL is not supported yet/);
  assert.equal(defaultEnvironment({ NODE_ENV: 'production', PASSENGER_APP_ENV: 'staging' }), 'production');
  assert.equal(defaultEnvironment({ RACK_ENV: 'rack', NODE_ENV: 'production' }), 'rack');
  assert.equal(defaultEnvironment({ NODE_ENV: '' }), 'development');
  assert.equal(resolveOptions({}, d, d, { NODE_ENV: 'production' }).environment, 'production');
  assert.equal(resolveOptions(parseFlags(['-e', 'test']).values, d, d, { NODE_ENV: 'production' }).environment, 'test');
});

test('README "Coming from Passenger" names every Passenger-only option', () => {
  const readme = fs.readFileSync(path.join(__dirname, '..', '..', '..', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Coming from Passenger'), readme.indexOf('## Who apps run as'));
  for (const f of PASSENGER_ONLY_OPTIONS) {
    const name = f.key === 'rackup' ? '--rackup' : f.key;
    assert.ok(section.includes(`\`${name}\``), `${name} in the README table`);
  }
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
