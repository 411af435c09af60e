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
  forwarder: 'direct' | 'node-http' | 'reply-from';
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
  /** The Node interpreter for Node apps: a path, or a name looked up in PATH (default `node`). */
  nodejs: string | undefined;
  /** Arguments for the app's Node before its entry file (`--env-file=.env`, `--max-old-space-size=512`). */
  nodeArgs: string[];
  /** The app's output goes to this file instead of the agent's log. */
  appLogFile: string | undefined;
  /** App output lines go to the log without the `App <pid> (<root>) stdout: ` prefix. */
  disableLogPrefix: boolean;
  /**
   * `passenger start`: the flags as given (paths made absolute), so a
   * restart can read Passengerfile.json and the environment again and still
   * let the flags win.
   */
  given?: Partial<Options>;
  /** `passenger agent`: app roots or URLs whose apps start with the agent, before any request (Passenger's pre_start). */
  preStart: string[];
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
  /** Passenger's one-letter flag, e.g. `-p`. */
  short?: string;
  arg?: string;
  help: string;
}

// Order is the order of `passenger start --help`.
export const OPTION_SPECS: readonly OptionSpec[] = [
  { prop: 'address', key: 'address', flag: '--address', short: '-a', kind: 'string', arg: 'HOST', help: 'bind to this address (default 0.0.0.0)' },
  { prop: 'port', key: 'port', flag: '--port', short: '-p', kind: 'int', min: 1, max: 65535, arg: 'NUMBER', help: 'listen on this TCP port (default 3000)' },
  { prop: 'socket', key: 'socket_file', flag: '--socket', short: '-S', kind: 'string', arg: 'PATH', help: 'listen on this Unix socket instead of a TCP port' },
  { prop: 'daemonize', key: 'daemonize', flag: '--daemonize', short: '-d', kind: 'bool', help: 'run in the background' },
  { prop: 'pidFile', key: 'pid_file', flag: '--pid-file', kind: 'string', arg: 'PATH', help: 'where to write the PID file' },
  { prop: 'logFile', key: 'log_file', flag: '--log-file', kind: 'string', arg: 'PATH', help: 'where to write the log (default: the terminal; daemonized: passenger.PORT.log in the app)' },
  { prop: 'instanceRegistryDir', key: 'instance_registry_dir', flag: '--instance-registry-dir', kind: 'string', arg: 'PATH', help: 'where the instance directory goes (default /run/passenger-ts as root, else $TMPDIR or /tmp)' },
  { prop: 'environment', key: 'environment', flag: '--environment', short: '-e', kind: 'string', arg: 'NAME', help: 'app environment: PASSENGER_APP_ENV and NODE_ENV (default: $RAILS_ENV, $RACK_ENV, $NODE_ENV or $PASSENGER_APP_ENV, else development)' },
  { prop: 'appType', key: 'app_type', flag: '--app-type', kind: 'apptype', arg: 'NAME', help: 'the app type: node' },
  { prop: 'startupFile', key: 'startup_file', flag: '--startup-file', kind: 'string', arg: 'FILE', help: 'the app\'s entry file (default app.js)' },
  { prop: 'nodejs', key: 'nodejs', flag: '--nodejs', kind: 'string', arg: 'FILE', help: 'the Node interpreter for the app: a path or a name in PATH (default node)' },
  { prop: 'nodeArgs', key: 'node_args', flag: '--node-arg', kind: 'list', arg: 'ARG', help: 'an argument for the app\'s Node, before its entry file (repeatable; write --node-arg=--flag), e.g. --node-arg=--env-file=.env' },
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
  { prop: 'forwarder', key: 'forwarder', flag: '--forwarder', kind: 'forwarder', arg: 'NAME', help: 'request path: direct (default: requests read with Node\'s HTTP parser on a plain socket server), node-http (the same forwarding on node:http\'s server, the fallback) or reply-from (through @fastify/reply-from)' },
  { prop: 'user', key: 'user', flag: '--user', kind: 'string', arg: 'NAME', help: 'as root: run the server and its apps as this user' },
  { prop: 'group', key: 'group', flag: '--group', kind: 'string', arg: 'NAME', help: 'with --user, or for the app: this group (default: the user\'s primary group)' },
  { prop: 'userSwitching', key: 'user_switching', flag: '--user-switching', kind: 'bool', negatable: true, help: 'as root: run each app as the owner of its startup file (default on); off: as the default user' },
  { prop: 'defaultUser', key: 'default_user', flag: '--default-user', kind: 'string', arg: 'NAME', help: 'as root: who apps owned by root run as (default nobody; never root)' },
  { prop: 'defaultGroup', key: 'default_group', flag: '--default-group', kind: 'string', arg: 'NAME', help: 'the default user\'s group (default: its primary group)' },
  { prop: 'appLogFile', key: 'app_log_file', flag: '--app-log-file', kind: 'string', arg: 'PATH', help: 'write the app\'s output to this file instead of the log' },
  { prop: 'disableLogPrefix', key: 'disable_log_prefix', flag: '--disable-log-prefix', kind: 'bool', help: 'write app output lines without the "App PID (ROOT) stdout: " prefix' },
  { prop: 'shutdownTimeout', key: 'shutdown_timeout', flag: '--shutdown-timeout', kind: 'int', min: 1, arg: 'SECONDS', help: 'how long a process told to leave may take to exit by itself before it is killed (default 30)' },
  { prop: 'abortWebsocketsOnProcessShutdown', key: 'abort_websockets_on_process_shutdown', flag: '--abort-websockets-on-process-shutdown', kind: 'bool', negatable: true, help: 'close a leaving process\'s WebSockets at once (default on); off: they end by themselves, up to the shutdown timeout' },
  { prop: 'logLevel', key: 'log_level', flag: '--log-level', kind: 'loglevel', arg: 'LEVEL', help: '0 (crit) to 7 (debug3), or a name: crit error warn notice info debug (default 3)' },
];

/**
 * Options Phusion Passenger's `passenger start` and Passengerfile.json take
 * that this server does not implement. Each is either harmless to leave out
 * for a Node app here (`ignored`: accepted with one warning saying why) or
 * would change what the user gets (`refused`: the server does not start,
 * saying it is not supported yet). `unless` names the values that change
 * nothing (Passenger's defaults), which are accepted with a warning even for
 * a refused option. A user switching from Passenger keeps their files and
 * scripts; nothing they relied on silently goes missing.
 */
interface PassengerOnlySpec {
  key: string;
  /** Its flag, when it is not `--` + the key with dashes. */
  flag?: string;
  short?: string;
  /** The flag takes a value. */
  value: boolean;
  /** For a flag that sets a boolean key to false (`--disable-turbocaching`). */
  flagValue?: false;
  verdict: 'ignored' | 'refused';
  why: string;
  unless?: (v: unknown) => boolean;
}

const isFalse = (v: unknown): boolean => !passengerBool(v);
const is = (...ok: string[]) => (v: unknown): boolean => typeof v === 'string' && ok.includes(v);
const ign = (key: string, value: boolean, why: string, more: Partial<PassengerOnlySpec> = {}): PassengerOnlySpec => ({ key, value, verdict: 'ignored', why, ...more });
const ref = (key: string, value: boolean, why: string, more: Partial<PassengerOnlySpec> = {}): PassengerOnlySpec => ({ key, value, verdict: 'refused', why, ...more });

export const PASSENGER_ONLY_OPTIONS: readonly PassengerOnlySpec[] = [
  ign('socket_backlog', true, 'the listening socket takes the kernel\'s default backlog'),
  ref('ssl', false, 'HTTPS is not served here; put nginx or Apache in front for TLS', { unless: isFalse }),
  ref('ssl_certificate', true, 'HTTPS is not served here; put nginx or Apache in front for TLS'),
  ref('ssl_certificate_key', true, 'HTTPS is not served here; put nginx or Apache in front for TLS'),
  ref('ssl_port', true, 'HTTPS is not served here; put nginx or Apache in front for TLS'),
  ign('data_buffer_dir', true, 'request and response bodies are streamed, never buffered to disk'),
  ign('core_file_descriptor_ulimit', true, 'the server keeps the file descriptor limit it was started with'),
  ign('ruby', true, 'only Node apps (and any program through app_start_command) run here'),
  ign('python', true, 'only Node apps (and any program through app_start_command) run here'),
  ref('meteor_app_settings', true, 'Meteor apps are not supported; run them with app_start_command'),
  ref('rackup', true, 'Ruby apps are not supported; run them with app_start_command', { flag: '--rackup', short: '-R' }),
  ref('app_support_kuria_protocol', false, 'apps speak plain HTTP here', { unless: isFalse }),
  ign('spawn_method', true, 'Node apps are always started directly, as Passenger does for Node'),
  ign('direct_instance_request_address', true, 'app processes listen on Unix sockets only the agent reaches'),
  ref('static_files_dir', true, 'static files are served from the app\'s public/ directory'),
  ref('restart_dir', true, 'the restart file is the app\'s tmp/restart.txt'),
  ref('load_shell_envvars', false, 'the app gets the server\'s environment and the envvars, not a login shell\'s', { unless: isFalse }),
  ign('preload_bundler', false, 'a Ruby option: Node apps do not use bundler'),
  ref('app_file_descriptor_ulimit', true, 'apps keep the file descriptor limit of the server'),
  ign('debugger', false, 'a Ruby option: start a Node app\'s inspector with node_args, e.g. ["--inspect=0"]'),
  ign('max_preloader_idle_time', true, 'Node apps have no preloader process'),
  ref('concurrency_model', true, 'each app process is a Node process; only the process model exists', { unless: is('process') }),
  ign('thread_count', true, 'it applies to the thread concurrency model only'),
  ref('rolling_restarts', false, 'tmp/restart.txt restarts all processes at once; for a rolling restart run passenger-config restart-app --rolling', { unless: isFalse }),
  ref('resist_deployment_errors', false, 'a restart whose new processes fail does not keep the old ones', { unless: isFalse }),
  ign('vary_turbocache_by_cookie', true, 'there is no response cache: every request reaches the app'),
  ign('turbocaching', false, 'there is no response cache: every request reaches the app', { flag: '--disable-turbocaching', flagValue: false }),
  ign('unlimited_concurrency_paths', true, 'Node app processes take any number of requests at once by default', { flag: '--unlimited-concurrency-path' }),
  ign('nginx_bin', true, 'the built-in HTTP server is the only engine'),
  ign('nginx_version', true, 'the built-in HTTP server is the only engine'),
  ign('nginx_tarball', true, 'the built-in HTTP server is the only engine'),
  ref('nginx_config_template', true, 'the built-in HTTP server is the only engine; behind nginx, use its own configuration'),
  ref('debug_nginx_config', false, 'the built-in HTTP server is the only engine', { unless: isFalse }),
  ign('disable_security_update_check', false, 'this server makes no update check'),
  ign('security_update_check_proxy', true, 'this server makes no update check'),
  ign('disable_anonymous_telemetry', false, 'this server sends no telemetry'),
  ign('anonymous_telemetry_proxy', true, 'this server sends no telemetry'),
  ign('engine', true, 'the built-in HTTP server is the only engine'),
  ref('admin_panel_url', true, 'no admin panel connection; passenger-status --show=json or --show=xml gives the same data'),
  ref('admin_panel_auth_type', true, 'no admin panel connection'),
  ref('admin_panel_username', true, 'no admin panel connection'),
  ref('admin_panel_password', true, 'no admin panel connection'),
  ign('auto', false, 'this server never asks questions'),
  ign('ctls', true, 'Passenger\'s internal settings do not apply here'),
  ign('binaries_url_root', true, 'there is no runtime to download'),
  ref('runtime_check_only', false, 'there is no runtime to check: the server would start', { unless: isFalse }),
  ign('dont_install_runtime', false, 'there is no runtime to install', { flag: '--no-install-runtime' }),
  ign('dont_compile_runtime', false, 'there is no runtime to compile', { flag: '--no-compile-runtime' }),
  // Keys of Passenger's web server modules that people carry into Passengerfile.json.
  ref('base_uri', true, 'apps are served at the root of their host only'),
];

/** Passenger's reading of a boolean value: true, yes, on or 1. */
export function passengerBool(v: unknown): boolean {
  return ['true', 'yes', 'on', '1'].includes(String(v).toLowerCase());
}

function flagOfPassengerOnly(spec: PassengerOnlySpec): string {
  return spec.flag ?? `--${spec.key.replace(/_/g, '-')}`;
}

/** Accepts a Passenger-only option with a warning, or refuses it, as its table entry says. */
function passengerOnly(spec: PassengerOnlySpec, value: unknown, where: string, warnings: string[]): void {
  if (spec.verdict === 'refused' && !(spec.unless?.(value) ?? false)) {
    throw new ConfigError(`${where} is not supported yet: ${spec.why}`, 'remove it to start without it');
  }
  warnings.push(spec.verdict === 'refused'
    ? `${where} ${JSON.stringify(value)} is what this server does anyway: accepted and ignored`
    : `${where} is accepted and ignored: ${spec.why}`);
}

/** Edit distance, for "did you mean". */
function distance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length];
}

/** The known name nearest to `name`, when one is near enough to be a typo of it. */
export function nearest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestD = Infinity;
  for (const k of known) {
    const d = distance(name, k);
    if (d < bestD) { best = k; bestD = d; }
  }
  return bestD <= Math.max(2, Math.floor(name.length / 3)) ? best : undefined;
}

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
    nodejs: undefined,
    preStart: [],
    nodeArgs: [],
    appLogFile: undefined,
    disableLogPrefix: false,
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
      if (raw !== 'direct' && raw !== 'node-http' && raw !== 'reply-from') bad(`expected "direct", "node-http" or "reply-from", got ${JSON.stringify(raw)}`);
      return raw;
    case 'list':
      // Flags append one value at a time; a file gives the whole list.
      if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string')) bad(`expected a list of strings, got ${JSON.stringify(raw)}`);
      return raw;
    case 'envvar':
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
  /** One line for each Passenger option that was accepted and ignored. */
  warnings: string[];
}

/**
 * Parses `--flag value`, `--flag=value`, `--no-flag`, and Passenger's short
 * flags (`-p 8000`, `-p8000`). Unknown flags are a ConfigError naming the
 * nearest known one. With `passengerOnly`, Passenger's options this server
 * does not implement are accepted with a warning or refused, as their table
 * says.
 */
export function parseFlags(argv: readonly string[], specs: readonly OptionSpec[] = OPTION_SPECS,
  passengerOnlySpecs: readonly PassengerOnlySpec[] = []): ParsedFlags {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const foreign = new Map<string, PassengerOnlySpec>();
  for (const f of passengerOnlySpecs) {
    foreign.set(flagOfPassengerOnly(f), f);
    if (f.short) foreign.set(f.short, f);
  }
  const values: Partial<Options> = {};
  const envvars: Record<string, string> = {};
  const positionals: string[] = [];
  const warnings: string[] = [];
  const unknown = (name: string): never => {
    const near = nearest(name, [...byFlag.keys(), ...byShort.keys()]);
    throw new ConfigError(`unknown flag ${name}`, near ? `did you mean ${near}? run with --help to see the flags` : 'run with --help to see the flags');
  };
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (!arg.startsWith('-') || arg === '-') {
      positionals.push(arg);
      continue;
    }
    if (!arg.startsWith('--')) {
      // -p 8000, -p8000, -d: a short flag stands for its long one.
      const short = arg.slice(0, 2);
      const long = byShort.get(short)?.flag ?? (foreign.has(short) ? flagOfPassengerOnly(foreign.get(short) as PassengerOnlySpec) : undefined);
      if (long === undefined) unknown(arg);
      arg = arg.length > 2 ? `${long}=${arg.slice(2)}` : (long as string);
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
    if (!spec && foreign.has(name)) {
      const f = foreign.get(name) as PassengerOnlySpec;
      let v: unknown = f.flagValue ?? true;
      if (f.value) {
        if (eq !== -1) v = arg.slice(eq + 1);
        else if (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) throw new ConfigError(`${name} needs a value`);
        else v = argv[++i];
      } else if (eq !== -1) v = arg.slice(eq + 1);
      passengerOnly(f, v, name, warnings);
      continue;
    }
    if (!spec) return unknown(name);
    spec = spec as OptionSpec;
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
  return { values, positionals, warnings };
}

/** The flags only `passenger agent` takes (the service behind nginx or Apache). */
export const AGENT_SPECS: readonly OptionSpec[] = [
  { prop: 'appRootAllow', key: 'app_root_allow', flag: '--app-root-allow', kind: 'list', arg: 'DIR', help: 'serve apps whose root is DIR or below it (repeatable; with none, nothing is served)' },
  { prop: 'socketOwner', key: 'socket_owner', flag: '--socket-owner', kind: 'string', arg: 'USER', help: 'owner of the request socket (default: the agent\'s user)' },
  { prop: 'socketGroup', key: 'socket_group', flag: '--socket-group', kind: 'string', arg: 'GROUP', help: 'group of the request socket (default: www-data when it exists)' },
  { prop: 'socketMode', key: 'socket_mode', flag: '--socket-mode', kind: 'string', arg: 'OCTAL', help: 'mode of the request socket (default 0660: owner and group only)' },
  { prop: 'preStart', key: 'pre_start', flag: '--pre-start', kind: 'list', arg: 'APP_ROOT|URL', help: 'start an app with the agent (and each restarted core): an app root, or a URL requested through the web server (repeatable)' },
];

/** Flags of `passenger agent`: the pool and logging flags of `passenger start`, and its own. */
export const AGENT_OPTION_SPECS: readonly OptionSpec[] = [
  // `user` and `group` belong to each app (its Passengerfile.json) behind a web server.
  ...OPTION_SPECS.filter((s) => !['address', 'port', 'daemonize', 'appType', 'startupFile', 'appStartCommand', 'envvars', 'forwarder', 'directMode', 'user', 'group'].includes(s.prop)),
  ...AGENT_SPECS,
];

export const PASSENGERFILE = 'Passengerfile.json';
/** Passenger's older name for the file, read when Passengerfile.json is absent (as Passenger does). */
export const PASSENGERFILE_OLD = 'passenger-standalone.json';

/** Where a warning about an option goes when the caller gives no other place. */
const warnToStderr = (m: string): void => { process.stderr.write(`warning: ${m}\n`); };

/**
 * Reads `<appRoot>/Passengerfile.json` (else `passenger-standalone.json`) if
 * present. Bad values are errors that name the file. Passenger's keys that
 * this server does not implement are accepted with a warning or refused (see
 * PASSENGER_ONLY_OPTIONS); a key nobody knows gets a warning naming the
 * nearest known key, as Passenger warns and goes on.
 */
export function readPassengerfile(appRoot: string, specs: readonly OptionSpec[] = OPTION_SPECS, warn: (message: string) => void = warnToStderr): Partial<Options> {
  let file = path.join(appRoot, PASSENGERFILE);
  let text: string | undefined;
  for (const name of [PASSENGERFILE, PASSENGERFILE_OLD]) {
    file = path.join(appRoot, name);
    try {
      text = fs.readFileSync(file, 'utf8');
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new ConfigError(`cannot read ${file}: ${(e as Error).message}`);
    }
  }
  if (text === undefined) return {};
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${file} is not valid JSON: ${(e as Error).message}`, 'fix the file or remove it');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) {
    throw new ConfigError(`${file} must hold a JSON object, like {"app_type": "node", "startup_file": "app.js"}`);
  }
  return optionsFromObject(json as Record<string, unknown>, file, specs, warn);
}

/**
 * Checks and converts an object of snake_case keys: a Passengerfile.json
 * (unknown and Passenger-only keys warn through `warn`, as Passenger does),
 * or an app's settings from the web server (`warn` null: generated by our
 * own snippet commands, so any key not among `specs` is an error).
 */
function optionsFromObject(json: Record<string, unknown>, file: string, specs: readonly OptionSpec[], warn: ((message: string) => void) | null): Partial<Options> {
  const byKey = new Map(specs.map((s) => [s.key, s]));
  const foreign = new Map(PASSENGER_ONLY_OPTIONS.map((f) => [f.key, f]));
  const out: Partial<Options> = {};
  const warnings: string[] = [];
  for (const [key, raw] of Object.entries(json as Record<string, unknown>)) {
    const spec = byKey.get(key);
    const where = `${file}: "${key}"`;
    if (!spec && warn === null) throw new ConfigError(`${file}: unknown key "${key}"`, `known keys: ${[...byKey.keys()].join(', ')}`);
    if (!spec) {
      const f = foreign.get(key);
      if (f) passengerOnly(f, raw, where, warnings);
      else {
        const near = nearest(key, [...byKey.keys()]);
        warnings.push(`${where} is not a known option: ignored${near ? ` (did you mean "${near}"?)` : ''}`);
      }
      continue;
    }
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
  for (const w of warnings) warn?.(w);
  return out;
}

/**
 * Options from `PASSENGER_<KEY>` environment variables (`PASSENGER_PORT=8000`),
 * as Passenger's `passenger start` reads them: only options that take one
 * plain value, empty ones skipped, booleans true for true, yes, on or 1.
 * Variables that name no option (PASSENGER_APP_ENV, ...) are left alone.
 */
export function envOptions(env: NodeJS.ProcessEnv, specs: readonly OptionSpec[] = OPTION_SPECS): ParsedFlags {
  const values: Partial<Options> = {};
  const warnings: string[] = [];
  const foreign = new Map(PASSENGER_ONLY_OPTIONS.map((f) => [f.key, f]));
  for (const [name, value] of Object.entries(env)) {
    const m = /^PASSENGER_(.+)$/.exec(name);
    if (!m || value === undefined || value === '') continue;
    const key = m[1].toLowerCase();
    const spec = specs.find((s) => s.key === key);
    if (spec) {
      if (spec.kind === 'envvar' || spec.kind === 'list') continue;
      (values as Record<string, unknown>)[spec.prop] = coerce(spec, spec.kind === 'bool' ? passengerBool(value) : value, `environment variable ${name}`);
      continue;
    }
    const f = foreign.get(key);
    if (f) passengerOnly(f, f.value ? value : passengerBool(value), `environment variable ${name}`, warnings);
  }
  return { values, positionals: [], warnings };
}

/** The standalone default environment, from the variables Passenger's reads, in its order. */
export function defaultEnvironment(env: NodeJS.ProcessEnv): string {
  for (const v of ['RAILS_ENV', 'RACK_ENV', 'NODE_ENV', 'PASSENGER_APP_ENV']) if (env[v]) return env[v] as string;
  return 'development';
}

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
  const file = readPassengerfile(appRoot, OPTION_SPECS, warn);
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
  'stickySessionsCookieAttributes', 'directMode', 'user', 'group', 'nodejs', 'nodeArgs',
  'appLogFile', 'disableLogPrefix', 'shutdownTimeout', 'abortWebsocketsOnProcessShutdown',
] as const;

/** What an app's own Passengerfile.json may set behind a web server: its group's options. */
const APP_FILE_PROPS: ReadonlySet<keyof Options> = new Set<keyof Options>([
  ...GROUP_KEYS.filter((k) => k !== 'appRoot' && k !== 'directMode'), 'appType', 'forceMaxConcurrentRequestsPerProcess', 'friendlyErrorPages',
]);

/** The options one app's settings in the web server (or its Passengerfile.json behind one) may set. */
export const APP_OPTION_SPECS: readonly OptionSpec[] = OPTION_SPECS.filter((s) => APP_FILE_PROPS.has(s.prop));

/**
 * An app's settings from the web server: the JSON object of the
 * X-Passenger-App-Options header (Passengerfile.json keys, e.g.
 * `{"startup_file":"server.js","envvars":{"A":"1"}}`), checked as strictly as
 * the file. Only the app's own options are taken. Throws ConfigError.
 */
export function webAppOptions(raw: string): Partial<Options> {
  const where = 'the web server\'s settings for the app (X-Passenger-App-Options)';
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (e) {
    throw new ConfigError(`${where} are not valid JSON: ${(e as Error).message}`, 'print them anew with passenger-config nginx-snippet or apache-snippet');
  }
  if (json === null || typeof json !== 'object' || Array.isArray(json)) throw new ConfigError(`${where} must be a JSON object`);
  return optionsFromObject(json as Record<string, unknown>, where, APP_OPTION_SPECS, null);
}

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
  const rows = specs.map((s) => [`${s.short ? `${s.short}, ` : '    '}${s.negatable ? `${s.flag}, --no-${s.flag.slice(2)}` : s.flag}${s.arg ? ` ${s.arg}` : ''}`, s.help]);
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n');
}
