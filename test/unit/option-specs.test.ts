// The option table as the one source of truth: defaults, help, the option
// lists of each command and scope, and one parser's errors for every binary.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  AGENT_OPTION_SPECS, APP_OPTION_SPECS, DEFAULT_AGENT_SOCKET, GROUP_PROPS, OPTION_SPECS, START_OPTION_SPECS,
  agentDefaults, appFileOptions, defaultText, defaults, groupOptions, parseFlags, usageOfOptions, webAppOptions,
  type FlagSpec, type OptionSpec, type Options,
} from '../../helper-agent/src/config';
import { COMMANDS as CONFIG_COMMANDS } from '../../helper-agent/src/cli/passenger-config';
import { COMMANDS as PASSENGER_COMMANDS } from '../../helper-agent/src/cli/passenger';
import { MEMORY_STATS_FLAGS, memoryStatsMain } from '../../helper-agent/src/cli/passenger-memory-stats';
import { STATUS_FLAGS, statusMain } from '../../helper-agent/src/cli/passenger-status';
import { FIND_SERVER_SPECS } from '../../helper-agent/src/cli/passenger/server-pid';
import { ConfigError } from '../../helper-agent/src/errors';
import { SERVICE_REGISTRY_DIR } from '../../helper-agent/src/instance/registry';

const SPECS = OPTION_SPECS as readonly OptionSpec[];

test('the table: one key and one flag for each option (every option has a row: see EVERY_OPTION_HAS_A_ROW); defaults() is built from it', () => {
  for (const field of ['prop', 'key', 'flag'] as const) {
    const seen = SPECS.map((s) => s[field]);
    assert.equal(new Set(seen).size, seen.length, `${field}s are unique`);
  }
  const a = defaults('/app');
  for (const s of SPECS) assert.deepEqual(a[s.prop], s.default, `${s.key} defaults to its spec's default`);
  assert.equal(a.appRoot, '/app');
  assert.equal(a.mode, 'standalone');
  a.nodeArgs.push('--x');
  a.envvars.A = '1';
  assert.deepEqual(defaults('/app').nodeArgs, [], 'each defaults() has its own lists');
  assert.deepEqual(defaults('/app').envvars, {});
});

test('passenger agent\'s defaults are passenger start\'s except where a spec names its own', () => {
  const start = defaults('/');
  const agent = agentDefaults();
  assert.equal(agent.mode, 'agent');
  assert.equal(agent.socket, DEFAULT_AGENT_SOCKET);
  assert.equal(agent.environment, 'production');
  for (const s of SPECS) {
    if (s.agentDefault === undefined) assert.deepEqual(agent[s.prop], start[s.prop], s.key);
    else assert.deepEqual(agent[s.prop], s.agentDefault, s.key);
  }
});

/** The help line of `flag` in a usage text. */
function lineOf(usage: string, flag: string): string {
  const line = usage.split('\n').find((l) => new RegExp(`^ {2}(-\\w, | {4})${flag}[ ,]`).test(l));
  assert.ok(line, `${flag} has a help line`);
  return line;
}

test('help: each option\'s line names the default its spec gives, for passenger start and passenger agent', () => {
  for (const [command, specs] of [['start', START_OPTION_SPECS], ['agent', AGENT_OPTION_SPECS]] as const) {
    const usage = usageOfOptions(specs, command);
    for (const s of specs) {
      const line = lineOf(usage, s.flag);
      const d = defaultText(s, command);
      if (d !== null) assert.ok(line.endsWith(`(${d})`), `${command} ${s.flag}: ${line}`);
      // A value default (not a description) appears as itself.
      const value: unknown = command === 'agent' && s.agentDefault !== undefined ? s.agentDefault : s.default;
      const described = (command === 'agent' ? s.agentDefaultText ?? (s.agentDefault === undefined ? s.defaultText : undefined) : s.defaultText) !== undefined;
      if (!described && (typeof value === 'number' || typeof value === 'string')) assert.ok(line.endsWith(`(default ${value})`), `${command} ${s.flag}: ${line}`);
      if (!described && typeof value === 'boolean' && s.negatable) assert.ok(line.endsWith(`(default ${value ? 'on' : 'off'})`), line);
    }
  }
  const start = usageOfOptions();
  assert.match(lineOf(start, '--port'), /\(default 3000\)$/);
  assert.match(lineOf(start, '--max-pool-size'), /\(default 6\)$/);
  assert.match(lineOf(start, '--environment'), /else development\)$/);
  assert.match(lineOf(start, '--instance-registry-dir'), new RegExp(`default: ${SERVICE_REGISTRY_DIR} as root`));
  const agent = usageOfOptions(AGENT_OPTION_SPECS, 'agent');
  assert.match(lineOf(agent, '--environment'), /\(default production\)$/);
  assert.match(lineOf(agent, '--socket'), new RegExp(`the request socket \\(default ${DEFAULT_AGENT_SOCKET}\\)$`));
  assert.match(lineOf(agent, '--min-instances'), /\(default 1\)$/);
  assert.match(CONFIG_COMMANDS['nginx-snippet'].usage, /--environment NAME +app environment: PASSENGER_APP_ENV and NODE_ENV \(default production\)/, 'an app behind a web server gets the agent\'s defaults');
});

test('scopes: the option lists of each command, app file and group follow from each spec\'s scope', () => {
  const props = (specs: readonly OptionSpec[]): string[] => specs.map((s) => s.prop).sort();
  const ofScope = (...scopes: string[]): string[] => props(SPECS.filter((s) => scopes.includes(s.scope)));
  assert.deepEqual(props(START_OPTION_SPECS), ofScope('standalone', 'server', 'group', 'route'));
  assert.deepEqual(props(AGENT_OPTION_SPECS), ofScope('server', 'group', 'agent'));
  assert.deepEqual(props(APP_OPTION_SPECS), ofScope('group', 'route'));
  assert.deepEqual([...GROUP_PROPS].sort(), ofScope('group', 'route'));
  // Spot checks that the scopes say what the commands always did.
  for (const p of ['port', 'address', 'daemonize', 'directMode', 'startupFile', 'envvars', 'user', 'group']) assert.ok(!props(AGENT_OPTION_SPECS).includes(p), `passenger agent takes no ${p}`);
  for (const p of ['appRootAllow', 'socketMode', 'preStart']) assert.ok(!props(START_OPTION_SPECS).includes(p), `passenger start takes no ${p}`);
  for (const p of ['maxPoolSize', 'logLevel', 'socket', 'port', 'directMode']) assert.ok(!props(APP_OPTION_SPECS).includes(p), `an app file does not set ${p}`);

  // Each option in turn: an app's Passengerfile.json behind a web server keeps exactly its app options.
  const d = defaults('/');
  for (const s of START_OPTION_SPECS) {
    const { options, ignored } = appFileOptions({ [s.prop]: d[s.prop] } as Partial<Options>);
    if (s.scope === 'group' || s.scope === 'route') assert.deepEqual(Object.keys(options), [s.prop], s.key);
    else assert.deepEqual(ignored, [s.key], s.key);
  }
  // The web server's settings for an app take only app options.
  assert.throws(() => webAppOptions('{"max_pool_size": 3}'), (e: unknown) => e instanceof ConfigError && /unknown key "max_pool_size"/.test(e.message));
  assert.equal(webAppOptions('{"min_instances": 3}').minInstances, 3);
  // A group's options: its app options, its root and whether its processes take connections themselves.
  const g = groupOptions(d);
  assert.deepEqual(Object.keys(g).sort(), [...GROUP_PROPS, 'appRoot', 'directMode', 'maxConcurrency'].sort());
  // Flags outside a command's scope are unknown to it.
  assert.throws(() => parseFlags(['--app-root-allow', '/srv']), /unknown flag --app-root-allow/);
  assert.throws(() => parseFlags(['--port', '80'], AGENT_OPTION_SPECS), /unknown flag --port/);
});

/** Every binary and command, each with the flags it takes. */
const BINARIES: [string, (argv: string[]) => Promise<number>, readonly FlagSpec[]][] = [
  ['passenger start', PASSENGER_COMMANDS.start, START_OPTION_SPECS],
  ['passenger agent', PASSENGER_COMMANDS.agent, AGENT_OPTION_SPECS],
  ['passenger stop', PASSENGER_COMMANDS.stop, FIND_SERVER_SPECS],
  ['passenger status', PASSENGER_COMMANDS.status, FIND_SERVER_SPECS],
  ['passenger-status', statusMain, STATUS_FLAGS],
  ['passenger-memory-stats', memoryStatsMain, MEMORY_STATS_FLAGS],
  ...Object.entries(CONFIG_COMMANDS).map(([name, c]) => [`passenger-config ${name}`, (argv: string[]) => c.run(argv), c.flags] as [string, (argv: string[]) => Promise<number>, readonly FlagSpec[]]),
];

test('one parser for every binary: an unknown flag, or a flag without its value, is a ConfigError naming it', async () => {
  assert.ok(Object.keys(PASSENGER_COMMANDS).filter((c) => !c.startsWith('__')).every((c) => BINARIES.some(([n]) => n === `passenger ${c}`)), 'every passenger command is here');
  for (const [name, run, flags] of BINARIES) {
    await assert.rejects(run(['--bogus-flag']), (e: unknown) => e instanceof ConfigError && e.message === 'unknown flag --bogus-flag' && /run with --help/.test(e.hint ?? ''), name);
    for (const f of flags.filter((s) => s.kind !== 'bool')) {
      await assert.rejects(run([f.flag]), (e: unknown) => e instanceof ConfigError && e.message.startsWith(`${f.flag} needs a value`), `${name} ${f.flag}`);
    }
    const bool = flags.find((s) => s.kind === 'bool' && s.prop !== 'help');
    if (bool) await assert.rejects(run([`${bool.flag}=maybe`]), (e: unknown) => e instanceof ConfigError && e.message === `${bool.flag}: expected true or false, got "maybe"`, `${name} ${bool.flag}`);
  }
  await assert.rejects(statusMain(['--no-headr']), (e: unknown) => e instanceof ConfigError && /did you mean --no-header\?/.test(e.hint ?? ''));
  await assert.rejects(CONFIG_COMMANDS['list-instances'].run(['-x']), /unknown flag -x/);
});
