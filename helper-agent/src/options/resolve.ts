// The options a server runs with: defaults, Passengerfile.json, the
// environment and flags merged in Passenger's order, then checked as a whole;
// and the part of them that one app group reads.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from '../errors';
import type { Options } from './options';
import { GROUP_PROPS, defaults, type GroupProp } from './specs';
import { defaultEnvironment, envOptions, readPassengerfile, warnToStderr } from './sources';

/**
 * Defaults, then Passengerfile.json, then `PASSENGER_<KEY>` environment
 * variables, then flags (Passenger's order); envvars merge key by key.
 */
export function resolveOptions(flags: Partial<Options>, appRootArg: string | undefined, cwd = process.cwd(),
  env: NodeJS.ProcessEnv = process.env, warn: (message: string) => void = warnToStderr): Options {
  const appRoot = path.resolve(cwd, appRootArg ?? '.');
  let st: fs.Stats;
  try {
    st = fs.statSync(appRoot);
  } catch {
    throw new ConfigError(`app directory ${appRoot} does not exist`);
  }
  if (!st.isDirectory()) throw new ConfigError(`${appRoot} is not a directory`);
  const file = readPassengerfile(appRoot, undefined, warn);
  const fromEnv = envOptions(env);
  for (const w of fromEnv.warnings) warn(w);
  const given = { ...fromEnv.values, ...flags };
  const opts: Options = { ...defaults(appRoot), environment: defaultEnvironment(env), ...file, ...given, appRoot };
  opts.envvars = { ...(file.envvars ?? {}), ...(flags.envvars ?? {}) };
  for (const p of ['pidFile', 'logFile', 'socket', 'instanceRegistryDir', 'appLogFile'] as const) {
    const v = opts[p];
    if (v !== undefined) opts[p] = path.resolve(p in given ? cwd : appRoot, v);
  }
  opts.given = { ...flags };
  for (const p of ['pidFile', 'logFile', 'socket', 'instanceRegistryDir', 'appLogFile'] as const) if (p in flags) opts.given[p] = opts[p] as string;
  if (opts.directMode) checkDirectMode(opts, { ...file, ...given });
  if (opts.forwarder === 'reply-from') checkReplyFrom(opts);
  if (opts.minInstances > opts.maxPoolSize) {
    throw new ConfigError(`min_instances (${opts.minInstances}) is larger than max_pool_size (${opts.maxPoolSize})`);
  }
  return opts;
}

/** What only the default request path does is refused by name on the reply-from one. */
function checkReplyFrom(o: Options): void {
  for (const [what, on] of [['sticky_sessions', o.stickySessions], ['max_request_time', o.maxRequestTime > 0]] as const) {
    if (on) throw new ConfigError(`${what} cannot be used with forwarder reply-from`, 'use the default request path (--forwarder builtin)');
  }
}

/**
 * In direct mode requests never pass through the agent, so what needs the
 * agent in the request path cannot be: each such option is refused by name.
 */
function checkDirectMode(o: Options, given: Partial<Options>): void {
  const refuse = (what: string, why: string): never => {
    throw new ConfigError(`${what} cannot be used with direct_mode: ${why}`, 'drop one of the two');
  };
  if (o.appStartCommand) refuse('app_start_command', 'direct mode needs a Node app under the loader');
  if (o.stickySessions) refuse('sticky_sessions', 'the kernel, not the agent, picks the process for each connection');
  if (o.forceMaxConcurrentRequestsPerProcess > 0) refuse('force_max_concurrent_requests_per_process', 'no agent queue holds the requests beyond it');
  if (given.maxRequestQueueSize !== undefined) refuse('max_request_queue_size', 'there is no agent queue to overflow');
  if (o.maxRequestQueueTime > 0) refuse('max_request_queue_time', 'there is no agent queue');
  if (o.maxRequestTime > 0) refuse('max_request_time', 'the agent does not see the requests');
  if (o.forwarder !== 'builtin') refuse('forwarder', 'nothing is forwarded');
}

/**
 * The part of the options that describes one app group (each app's own,
 * behind a web server), with the defaults that depend on others settled. A
 * group also knows its root and whether its processes take connections
 * themselves.
 */
export type GroupOptions = Omit<Pick<Options, GroupProp | 'appRoot' | 'directMode'>, 'friendlyErrorPages'> & {
  /** force_max_concurrent_requests_per_process */
  maxConcurrency: number;
  friendlyErrorPages: boolean;
};

export function groupOptions(o: Options): GroupOptions {
  const g = { appRoot: o.appRoot, directMode: o.directMode } as Record<string, unknown>;
  for (const k of GROUP_PROPS) g[k] = o[k];
  return {
    ...(g as Omit<GroupOptions, 'maxConcurrency' | 'friendlyErrorPages'>),
    maxConcurrency: o.forceMaxConcurrentRequestsPerProcess,
    friendlyErrorPages: o.friendlyErrorPages ?? o.environment === 'development',
  };
}
