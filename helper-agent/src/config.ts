// The one typed options object: defaults, validation, command-line flags and
// Passengerfile.json. Flags win over the file; the file wins over defaults.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ConfigError } from './errors';

export interface Options {
  appRoot: string;
  address: string;
  port: number;
  socket: string | undefined;
  daemonize: boolean;
  pidFile: string | undefined;
  logFile: string | undefined;
  instanceRegistryDir: string | undefined;
  environment: string;
  appType: 'node';
  startupFile: string;
  appStartCommand: string | undefined;
  envvars: Record<string, string>;
  maxPoolSize: number;
  minInstances: number;
  poolIdleTime: number;
  startTimeout: number;
  forceMaxConcurrentRequestsPerProcess: number;
  maxRequests: number;
  memoryLimit: number;
  maxRequestQueueSize: number;
  stickySessions: boolean;
  stickySessionsCookieName: string;
  friendlyErrorPages: boolean | undefined;
  logLevel: number;
  forwarder: 'direct' | 'reply-from';
  scaleAtSessions: number;
  maxRequestQueueTime: number;
  requestQueueOverflowStatusCode: number;
  maxRequestTime: number;
  statThrottleRate: number;
  stickySessionsCookieAttributes: string;
  /** `passenger agent`: app roots requests may name (the app root or a directory above it). */
  appRootAllow: string[];
  socketOwner: string | undefined;
  socketGroup: string | undefined;
  socketMode: string | undefined;
  /** standalone: `passenger start` serves one app; agent: `passenger agent` serves the apps a web server names. */
  mode: 'standalone' | 'agent';
  /** The app processes accept client connections themselves; the agent only supervises and accounts. */
  directMode: boolean;
  /** Standalone: the user the server and its apps run as (as root). Behind a web server: the app's user (its Passengerfile.json). */
  user: string | undefined;
  /** The app's group (default: the user's primary group). */
  group: string | undefined;
  /** As root: who apps run as when their startup file belongs to root, or when user switching is off. */
  defaultUser: string;
  /** Default: the default user's primary group. */
  defaultGroup: string | undefined;
  /** As root: each app runs as the owner of its startup file (or its `user`); off: every app runs as the default user. */
  userSwitching: boolean;
  /** Seconds a process told to leave gets to exit by itself (its SIGTERM handlers run) before KILL. */
  shutdownTimeout: number;
  /** A leaving process's WebSockets are closed at once (on) or left to end by themselves (off). */
  abortWebsocketsOnProcessShutdown: boolean;
}

type Kind = 'int' | 'string' | 'bool' | 'envvar' | 'loglevel' | 'apptype' | 'forwarder' | 'list';

interface OptionSpec {
  prop: keyof Options;
  /** Passengerfile.json key (snake_case, as Passenger's). */
  key: string;
  flag: string;
  kind: Kind;
  min?: number;
  max?: number;
  /** `--no-<name>` sets a boolean to false. */
  negatable?: boolean;
  arg?: string;
  help: string;
}

// Order is the order of `passenger start --help`.
export const OPTION_SPECS: readonly OptionSpec[] = [
  { prop: 'address', key: 'address', flag: '--address', kind: 'string', arg: 'HOST', help: 'bind to this address (default 0.0.0.0)' },
  { prop: 'port', key: 'port', flag: '--port', kind: 'int', min: 1, max: 65535, arg: 'NUMBER', help: 'listen on this TCP port (default 3000)' },
  { prop: 'socket', key: 'socket_file', flag: '--socket', kind: 'string', arg: 'PATH', help: 'listen on this Unix socket instead of a TCP port' },
  { prop: 'daemonize', key: 'daemonize', flag: '--daemonize', kind: 'bool', help: 'run in the background' },
  { prop: 'pidFile', key: 'pid_file', flag: '--pid-file', kind: 'string', arg: 'PATH', help: 'where to write the PID file' },
  { prop: 'logFile', key: 'log_file', flag: '--log-file', kind: 'string', arg: 'PATH', help: 'where to write the log (default: the terminal; daemonized: passenger.PORT.log in the app)' },
  { prop: 'instanceRegistryDir', key: 'instance_registry_dir', flag: '--instance-registry-dir', kind: 'string', arg: 'PATH', help: 'where the instance directory goes (default /run/passenger-ts as root, else $TMPDIR or /tmp)' },
  { prop: 'environment', key: 'environment', flag: '--environment', kind: 'string', arg: 'NAME', help: 'app environment: PASSENGER_APP_ENV and NODE_ENV (default development)' },
  { prop: 'appType', key: 'app_type', flag: '--app-type', kind: 'apptype', arg: 'NAME', help: 'the app type: node' },
  { prop: 'startupFile', key: 'startup_file', flag: '--startup-file', kind: 'string', arg: 'FILE', help: 'the app\'s entry file (default app.js)' },
  { prop: 'appStartCommand', key: 'app_start_command', flag: '--app-start-command', kind: 'string', arg: 'COMMAND', help: 'run any program instead; it must listen on $PORT' },
  { prop: 'envvars', key: 'envvars', flag: '--envvar', kind: 'envvar', arg: 'NAME=VALUE', help: 'pass an environment variable to the app (repeatable)' },
  { prop: 'maxPoolSize', key: 'max_pool_size', flag: '--max-pool-size', kind: 'int', min: 1, arg: 'NUMBER', help: 'most app processes in all (default 6)' },
  { prop: 'minInstances', key: 'min_instances', flag: '--min-instances', kind: 'int', min: 0, arg: 'NUMBER', help: 'fewest app processes kept (default 1)' },
  { prop: 'poolIdleTime', key: 'pool_idle_time', flag: '--pool-idle-time', kind: 'int', min: 0, arg: 'SECONDS', help: 'shut down processes idle this long; 0 = never (default 300)' },
  { prop: 'startTimeout', key: 'start_timeout', flag: '--start-timeout', kind: 'int', min: 1, arg: 'SECONDS', help: 'how long an app may take to start listening (default 90)' },
  { prop: 'forceMaxConcurrentRequestsPerProcess', key: 'force_max_concurrent_requests_per_process', flag: '--force-max-concurrent-requests-per-process', kind: 'int', min: 0, arg: 'NUMBER', help: 'requests one process takes at once; 0 = unlimited (default 0)' },
  { prop: 'maxRequests', key: 'max_requests', flag: '--max-requests', kind: 'int', min: 0, arg: 'NUMBER', help: 'replace a process after this many requests; 0 = never' },
  { prop: 'memoryLimit', key: 'memory_limit', flag: '--memory-limit', kind: 'int', min: 0, arg: 'MB', help: 'replace a process above this private memory; 0 = no limit' },
  { prop: 'maxRequestQueueSize', key: 'max_request_queue_size', flag: '--max-request-queue-size', kind: 'int', min: 0, arg: 'NUMBER', help: 'waiting requests beyond this get 503; 0 = unlimited (default 100)' },
  { prop: 'requestQueueOverflowStatusCode', key: 'request_queue_overflow_status_code', flag: '--request-queue-overflow-status-code', kind: 'int', min: 200, max: 599, arg: 'CODE', help: 'the status for requests beyond the queue (default 503)' },
  { prop: 'maxRequestQueueTime', key: 'max_request_queue_time', flag: '--max-request-queue-time', kind: 'int', min: 0, arg: 'SECONDS', help: 'a request waiting longer for a process gets 504; 0 = no limit' },
  { prop: 'maxRequestTime', key: 'max_request_time', flag: '--max-request-time', kind: 'int', min: 0, arg: 'SECONDS', help: 'a request running longer gets 504 and its process is replaced; 0 = no limit' },
  { prop: 'scaleAtSessions', key: 'scale_at_sessions', flag: '--scale-at-sessions', kind: 'int', min: 0, arg: 'NUMBER', help: 'spawn another process when every process has this many requests at once; 0 = never (default 10)' },
  { prop: 'statThrottleRate', key: 'stat_throttle_rate', flag: '--stat-throttle-rate', kind: 'int', min: 0, arg: 'SECONDS', help: 'how often tmp/restart.txt is checked (default 10)' },
  { prop: 'stickySessions', key: 'sticky_sessions', flag: '--sticky-sessions', kind: 'bool', help: 'pin each client to its process with a cookie' },
  { prop: 'stickySessionsCookieName', key: 'sticky_sessions_cookie_name', flag: '--sticky-sessions-cookie-name', kind: 'string', arg: 'NAME', help: 'the sticky cookie\'s name (default _passenger_route)' },
  { prop: 'stickySessionsCookieAttributes', key: 'sticky_sessions_cookie_attributes', flag: '--sticky-sessions-cookie-attributes', kind: 'string', arg: 'TEXT', help: 'attributes of the sticky cookie (default "SameSite=Lax"; Secure is added over HTTPS)' },
  { prop: 'friendlyErrorPages', key: 'friendly_error_pages', flag: '--friendly-error-pages', kind: 'bool', negatable: true, help: 'show app start errors in the browser (default: in development)' },
  { prop: 'directMode', key: 'direct_mode', flag: '--direct-mode', kind: 'bool', help: 'app processes accept connections themselves (Node apps; the agent supervises and accounts)' },
  { prop: 'forwarder', key: 'forwarder', flag: '--forwarder', kind: 'forwarder', arg: 'NAME', help: 'request path: direct (default, lean) or reply-from (through @fastify/reply-from)' },
  { prop: 'user', key: 'user', flag: '--user', kind: 'string', arg: 'NAME', help: 'as root: run the server and its apps as this user' },
  { prop: 'group', key: 'group', flag: '--group', kind: 'string', arg: 'NAME', help: 'with --user, or for the app: this group (default: the user\'s primary group)' },
  { prop: 'userSwitching', key: 'user_switching', flag: '--user-switching', kind: 'bool', negatable: true, help: 'as root: run each app as the owner of its startup file (default on); off: as the default user' },
  { prop: 'defaultUser', key: 'default_user', flag: '--default-user', kind: 'string', arg: 'NAME', help: 'as root: who apps owned by root run as (default nobody; never root)' },
  { prop: 'defaultGroup', key: 'default_group', flag: '--default-group', kind: 'string', arg: 'NAME', help: 'the default user\'s group (default: its primary group)' },
  { prop: 'shutdownTimeout', key: 'shutdown_timeout', flag: '--shutdown-timeout', kind: 'int', min: 1, arg: 'SECONDS', help: 'how long a process told to leave may take to exit by itself before it is killed (default 30)' },
  { prop: 'abortWebsocketsOnProcessShutdown', key: 'abort_websockets_on_process_shutdown', flag: '--abort-websockets-on-process-shutdown', kind: 'bool', negatable: true, help: 'close a leaving process\'s WebSockets at once (default on); off: they end by themselves, up to the shutdown timeout' },
  { prop: 'logLevel', key: 'log_level', flag: '--log-level', kind: 'loglevel', arg: 'LEVEL', help: '0 (crit) to 7 (debug3), or a name: crit error warn notice info debug (default 3)' },
];

/**
 * At a server stop, how long requests in flight run before their processes
 * are told to leave anyway (each then has its shutdown_timeout to exit).
 */
export const STOP_DRAIN_MS = 2000;

/** How long the watchdog lets a stopping core take before it kills it: longer than the core's own bound on a stop. */
export function stopBoundMs(o: Pick<Options, 'shutdownTimeout'>): number {
  return STOP_DRAIN_MS + o.shutdownTimeout * 1000 + 15_000;
}

const LOG_LEVEL_NAMES: Record<string, number> = { crit: 0, error: 1, warn: 2, notice: 3, info: 4, debug: 5, debug2: 6, debug3: 7 };

export function defaults(appRoot: string): Options {
  return {
    appRoot,
    address: '0.0.0.0',
    port: 3000,
    socket: undefined,
    daemonize: false,
    pidFile: undefined,
    logFile: undefined,
    instanceRegistryDir: undefined,
    environment: 'development',
    appType: 'node',
    startupFile: 'app.js',
    appStartCommand: undefined,
    envvars: {},
    maxPoolSize: 6,
    minInstances: 1,
    poolIdleTime: 300,
    startTimeout: 90,
    forceMaxConcurrentRequestsPerProcess: 0,
    maxRequests: 0,
    memoryLimit: 0,
    maxRequestQueueSize: 100,
    stickySessions: false,
    stickySessionsCookieName: '_passenger_route',
    friendlyErrorPages: undefined,
    logLevel: 3,
    forwarder: 'direct',
    scaleAtSessions: 10,
    maxRequestQueueTime: 0,
    requestQueueOverflowStatusCode: 503,
    maxRequestTime: 0,
    statThrottleRate: 10,
    stickySessionsCookieAttributes: 'SameSite=Lax',
    appRootAllow: [],
    socketOwner: undefined,
    socketGroup: undefined,
    socketMode: undefined,
    mode: 'standalone',
    directMode: false,
    user: undefined,
    group: undefined,
    defaultUser: 'nobody',
    defaultGroup: undefined,
    userSwitching: true,
    shutdownTimeout: 30,
    abortWebsocketsOnProcessShutdown: true,
  };
}

/** Turns one raw value (a flag's text or a JSON value) into the option's type, or throws ConfigError naming `where`. */
function coerce(spec: OptionSpec, raw: unknown, where: string): unknown {
  const bad = (what: string): never => { throw new ConfigError(`${where}: ${what}`); };
  switch (spec.kind) {
    case 'int': {
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\s*-?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n)) bad(`expected a whole number, got ${JSON.stringify(raw)}`);
      if (spec.min !== undefined && n < spec.min) bad(`must be at least ${spec.min}, got ${n}`);
      if (spec.max !== undefined && n > spec.max) bad(`must be at most ${spec.max}, got ${n}`);
      return n;
    }
    case 'string':
      if (typeof raw !== 'string' || raw === '') bad(`expected a non-empty string, got ${JSON.stringify(raw)}`);
      return raw;
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      if (raw === 'true') return true;
      if (raw === 'false') return false;
      return bad(`expected true or false, got ${JSON.stringify(raw)}`);
    case 'apptype':
      if (raw !== 'node') bad(`app type ${JSON.stringify(raw)} is not supported: use "node", or run any other program with app_start_command`);
      return raw;
    case 'loglevel': {
      if (typeof raw === 'string' && raw in LOG_LEVEL_NAMES) return LOG_LEVEL_NAMES[raw];
      const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d$/.test(raw) ? Number(raw) : NaN;
      if (!Number.isInteger(n) || n < 0 || n > 7) bad(`expected 0..7 or one of ${Object.keys(LOG_LEVEL_NAMES).join(', ')}, got ${JSON.stringify(raw)}`);
      return n;
    }
    case 'forwarder':
      if (raw !== 'direct' && raw !== 'reply-from') bad(`expected "direct" or "reply-from", got ${JSON.stringify(raw)}`);
      return raw;
    case 'envvar':
    case 'list':
      return raw;
  }
}

function parseEnvvar(text: string, where: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`${where}: expected NAME=VALUE, got ${JSON.stringify(text)}`);
  const name = text.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ConfigError(`${where}: ${JSON.stringify(name)} is not a valid environment variable name`);
  return [name, text.slice(eq + 1)];
}

export interface ParsedFlags {
  values: Partial<Options>;
  positionals: string[];
}

/** Parses `--flag value`, `--flag=value`, `--no-flag`; unknown flags are a ConfigError. */
export function parseFlags(argv: readonly string[], specs: readonly OptionSpec[] = OPTION_SPECS): ParsedFlags {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const values: Partial<Options> = {};
  const envvars: Record<string, string> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) {
      if (arg.startsWith('-') && arg !== '-') throw new ConfigError(`unknown flag ${arg}`, 'run with --help to see the flags');
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf('=');
    const name = eq === -1 ? arg : arg.slice(0, eq);
    let spec = byFlag.get(name);
    if (!spec && name.startsWith('--no-')) {
      const pos = byFlag.get(`--${name.slice(5)}`);
      if (pos && pos.negatable) {
        if (eq !== -1) throw new ConfigError(`${name} takes no value`);
        (values as Record<string, unknown>)[pos.prop] = false;
        continue;
      }
    }
    if (!spec) throw new ConfigError(`unknown flag ${name}`, 'run with --help to see the flags');
    if (spec.kind === 'bool') {
      const v = eq === -1 ? true : coerce(spec, arg.slice(eq + 1), name);
      (values as Record<string, unknown>)[spec.prop] = v;
      continue;
    }
    let raw: string | undefined;
    if (eq !== -1) raw = arg.slice(eq + 1);
    else {
      raw = argv[i + 1];
      if (raw === undefined || raw.startsWith('--')) throw new ConfigError(`${name} needs a value${spec.arg ? ` (${spec.arg})` : ''}`);
      i++;
    }
    if (spec.kind === 'envvar') {
      const [k, v] = parseEnvvar(raw, name);
      envvars[k] = v;
      continue;
    }
    if (spec.kind === 'list') {
      const list = ((values as Record<string, unknown>)[spec.prop] as string[] | undefined) ?? [];
      list.push(raw);
      (values as Record<string, unknown>)[spec.prop] = list;
      continue;
    }
    (values as Record<string, unknown>)[spec.prop] = coerce(spec, raw, name);
  }
  if (Object.keys(envvars).length) values.envvars = envvars;
  return { values, positionals };
}

/** The flags only `passenger agent` takes (the service behind nginx or Apache). */
export const AGENT_SPECS: readonly OptionSpec[] = [
  { prop: 'appRootAllow', key: 'app_root_allow', flag: '--app-root-allow', kind: 'list', arg: 'DIR', help: 'serve apps whose root is DIR or below it (repeatable; with none, nothing is served)' },
  { prop: 'socketOwner', key: 'socket_owner', flag: '--socket-owner', kind: 'string', arg: 'USER', help: 'owner of the request socket (default: the agent\'s user)' },
  { prop: 'socketGroup', key: 'socket_group', flag: '--socket-group', kind: 'string', arg: 'GROUP', help: 'group of the request socket (default: www-data when it exists)' },
  { prop: 'socketMode', key: 'socket_mode', flag: '--socket-mode', kind: 'string', arg: 'OCTAL', help: 'mode of the request socket (default 0660: owner and group only)' },
];

/** Flags of `passenger agent`: the pool and logging flags of `passenger start`, and its own. */
export const AGENT_OPTION_SPECS: readonly OptionSpec[] = [
  // `user` and `group` belong to each app (its Passengerfile.json) behind a web server.
  ...OPTION_SPECS.filter((s) => !['address', 'port', 'daemonize', 'appType', 'startupFile', 'appStartCommand', 'envvars', 'forwarder', 'directMode', 'user', 'group'].includes(s.prop)),
  ...AGENT_SPECS,
];

export const PASSENGERFILE = 'Passengerfile.json';

/** Reads `<appRoot>/Passengerfile.json` if present. Unknown keys and bad values are errors that name the file. */
export function readPassengerfile(appRoot: string, specs: readonly OptionSpec[] = OPTION_SPECS): Partial<Options> {
  const file = path.join(appRoot, PASSENGERFILE);
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid JSON: ${(e as Error).message}`, 'fix the file or remove it');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(`${file} must hold a JSON object, like {"app_type": "node", "startup_file": "app.js"}`);
  }
  const byKey = new Map(specs.map((s) => [s.key, s]));
  const out: Partial<Options> = {};
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    const spec = byKey.get(key);
    if (!spec) throw new ConfigError(`${file}: unknown key "${key}"`, `known keys: ${specs.map((s) => s.key).join(', ')}`);
    const where = `${file}: "${key}"`;
    if (spec.kind === 'envvar') {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${where} must be an object of NAME: "value"`);
      const env: Record<string, string> = {};
      for (const [k, v] of Object.entries(raw as Record<string, unknown>)) {
        if (typeof v !== 'string' && typeof v !== 'number' && typeof v !== 'boolean') throw new ConfigError(`${where}: the value of ${k} must be a string`);
        env[parseEnvvar(`${k}=${String(v)}`, where)[0]] = String(v);
      }
      out.envvars = env;
      continue;
    }
    (out as Record<string, unknown>)[spec.prop] = coerce(spec, raw, where);
  }
  return out;
}

/** Defaults, then Passengerfile.json, then flags; envvars merge key by key. */
export function resolveOptions(flags: Partial<Options>, appRootArg: string | undefined, cwd = process.cwd()): Options {
  const appRoot = path.resolve(cwd, appRootArg ?? '.');
  let st: fs.Stats;
  try {
    st = fs.statSync(appRoot);
  } catch {
    throw new ConfigError(`app directory ${appRoot} does not exist`);
  }
  if (!st.isDirectory()) throw new ConfigError(`${appRoot} is not a directory`);
  const file = readPassengerfile(appRoot);
  const opts: Options = { ...defaults(appRoot), ...file, ...flags, appRoot };
  opts.envvars = { ...(file.envvars ?? {}), ...(flags.envvars ?? {}) };
  for (const p of ['pidFile', 'logFile', 'socket', 'instanceRegistryDir'] as const) {
    const v = opts[p];
    if (v !== undefined) opts[p] = path.resolve(p in flags ? cwd : appRoot, v);
  }
  if (opts.directMode) checkDirectMode(opts, { ...file, ...flags });
  if (opts.forwarder === 'reply-from') checkReplyFrom(opts);
  if (opts.minInstances > opts.maxPoolSize) {
    throw new ConfigError(`min_instances (${opts.minInstances}) is larger than max_pool_size (${opts.maxPoolSize})`);
  }
  return opts;
}

/** What only the default request path does is refused by name on the reply-from one. */
function checkReplyFrom(o: Options): void {
  for (const [what, on] of [['sticky_sessions', o.stickySessions], ['max_request_time', o.maxRequestTime > 0]] as const) {
    if (on) throw new ConfigError(`${what} cannot be used with forwarder reply-from`, 'use the default request path (--forwarder direct)');
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
  if (o.forwarder !== 'direct') refuse('forwarder', 'nothing is forwarded');
}

/** The options that belong to one app group (each app's own, behind a web server). */
const GROUP_KEYS = [
  'appRoot', 'environment', 'startupFile', 'appStartCommand', 'envvars', 'minInstances', 'poolIdleTime', 'startTimeout',
  'maxRequests', 'memoryLimit', 'maxRequestQueueSize', 'stickySessions', 'stickySessionsCookieName', 'scaleAtSessions',
  'maxRequestQueueTime', 'requestQueueOverflowStatusCode', 'maxRequestTime', 'statThrottleRate',
  'stickySessionsCookieAttributes', 'directMode', 'user', 'group',
  'shutdownTimeout', 'abortWebsocketsOnProcessShutdown',
] as const;

/** What an app's own Passengerfile.json may set behind a web server: its group's options. */
const APP_FILE_PROPS: ReadonlySet<keyof Options> = new Set<keyof Options>([
  ...GROUP_KEYS.filter((k) => k !== 'appRoot' && k !== 'directMode'), 'appType', 'forceMaxConcurrentRequestsPerProcess', 'friendlyErrorPages',
]);

/**
 * Behind a web server, an app's Passengerfile.json sets its group's options;
 * what belongs to the agent as a whole or to `passenger start` (port,
 * max_pool_size, direct_mode, ...) is dropped and named in `ignored`.
 */
export function appFileOptions(file: Partial<Options>): { options: Partial<Options>; ignored: string[] } {
  const options: Partial<Options> = {};
  const ignored: string[] = [];
  for (const [prop, value] of Object.entries(file) as [keyof Options, unknown][]) {
    if (APP_FILE_PROPS.has(prop)) (options as Record<string, unknown>)[prop] = value;
    else ignored.push(OPTION_SPECS.find((s) => s.prop === prop)?.key ?? prop);
  }
  return { options, ignored };
}

/** The part of the options that describes one app group, with the defaults that depend on others settled. */
export type GroupOptions = Pick<Options, (typeof GROUP_KEYS)[number]> & {
  /** force_max_concurrent_requests_per_process */
  maxConcurrency: number;
  friendlyErrorPages: boolean;
};

export function groupOptions(o: Options): GroupOptions {
  const g = {} as Record<string, unknown>;
  for (const k of GROUP_KEYS) g[k] = o[k];
  return {
    ...(g as Pick<Options, (typeof GROUP_KEYS)[number]>),
    maxConcurrency: o.forceMaxConcurrentRequestsPerProcess,
    friendlyErrorPages: o.friendlyErrorPages ?? o.environment === 'development',
  };
}

export function usageOfOptions(specs: readonly OptionSpec[] = OPTION_SPECS): string {
  const rows = specs.map((s) => [`${s.negatable ? `${s.flag}, --no-${s.flag.slice(2)}` : s.flag}${s.arg ? ` ${s.arg}` : ''}`, s.help]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n');
}
