// Every option once: its flag, Passengerfile.json key, type, default (and
// `passenger agent`'s where it differs) and scope. Help text, the defaults
// object and which options each command, app file and group takes are all
// derived from OPTION_SPECS.
import type { Options } from './options';

/** How a value is read (see coerce in values.ts). */
export type Kind = 'int' | 'string' | 'bool' | 'envvar' | 'loglevel' | 'apptype' | 'forwarder' | 'list';

/**
 * Where an option applies:
 * - `standalone`: `passenger start` only (how its one server listens and forwards);
 * - `server`: the whole server, `passenger start` or `passenger agent`: one value for all its apps;
 * - `agent`: `passenger agent` only;
 * - `group`: each app's own; the server's flag is every app's default, an app's
 *   Passengerfile.json (or its web server settings) may set its own;
 * - `route`: each app's own, with no server-wide default: set where the app is
 *   named (`passenger start`'s flags for its one app, the app's file or web server settings).
 */
export type Scope = 'standalone' | 'server' | 'agent' | 'group' | 'route';

/** One command-line flag: what every binary's parser (argv.ts) reads. */
export interface FlagSpec<P extends string = string> {
  prop: P;
  flag: string;
  kind: Kind;
  min?: number;
  max?: number;
  /** `--no-<name>` sets a boolean to false. */
  negatable?: boolean;
  /** A one-letter flag, e.g. `-p` (Passenger's). */
  short?: string;
  /** The name of the flag's value in help, e.g. NUMBER. */
  arg?: string;
  /** Its line in generated help (the tools with hand-written usage leave it out). */
  help?: string;
}

/** The props that are options (the rest of Options is settled by the commands). */
export type OptionProp = Exclude<keyof Options, 'appRoot' | 'mode' | 'given'>;

interface SpecOf<P extends OptionProp> extends FlagSpec<P> {
  /** Passengerfile.json key (snake_case, as Passenger's). */
  key: string;
  help: string;
  scope: Scope;
  /** The value when nothing sets it. */
  default: Options[P];
  /** How help names the default when the value does not say it (it is worked out at start); '' for nothing to name. */
  defaultText?: string;
  /** `passenger agent`'s default, where it differs. */
  agentDefault?: Options[P];
  agentDefaultText?: string;
  /** `passenger agent`'s help, where the option reads differently there. */
  agentHelp?: string;
}

export type OptionSpec = { [P in OptionProp]: SpecOf<P> }[OptionProp];

/** Where `passenger agent` listens for the web server when --socket is not given. */
export const DEFAULT_AGENT_SOCKET = '/run/passenger-ts/agent.sock';
/** The instance registry of servers run as root (instance/registry.ts's SERVICE_REGISTRY_DIR). */
const ROOT_REGISTRY = '/run/passenger-ts';

// One option per line. Order is the order of `passenger start --help` (then `passenger agent`'s own).
export const OPTION_SPECS = [
  { prop: 'address', key: 'address', flag: '--address', short: '-a', kind: 'string', arg: 'HOST', scope: 'standalone', default: '0.0.0.0', help: 'bind to this address' },
  { prop: 'port', key: 'port', flag: '--port', short: '-p', kind: 'int', min: 1, max: 65535, arg: 'NUMBER', scope: 'standalone', default: 3000, help: 'listen on this TCP port' },
  { prop: 'socket', key: 'socket_file', flag: '--socket', short: '-S', kind: 'string', arg: 'PATH', scope: 'server', default: undefined, agentDefault: DEFAULT_AGENT_SOCKET, help: 'listen on this Unix socket instead of a TCP port', agentHelp: 'the request socket' },
  { prop: 'daemonize', key: 'daemonize', flag: '--daemonize', short: '-d', kind: 'bool', scope: 'standalone', default: false, help: 'run in the background' },
  { prop: 'pidFile', key: 'pid_file', flag: '--pid-file', kind: 'string', arg: 'PATH', scope: 'server', default: undefined, defaultText: 'passenger.PORT.pid in the app, in tmp/pids/ if it exists', agentDefaultText: '', help: 'where to write the PID file' },
  { prop: 'logFile', key: 'log_file', flag: '--log-file', kind: 'string', arg: 'PATH', scope: 'server', default: undefined, defaultText: 'the terminal; daemonized: passenger.PORT.log in the app', agentDefaultText: 'the terminal; under systemd, the journal', help: 'where to write the log' },
  { prop: 'instanceRegistryDir', key: 'instance_registry_dir', flag: '--instance-registry-dir', kind: 'string', arg: 'PATH', scope: 'server', default: undefined, defaultText: `${ROOT_REGISTRY} as root, else $TMPDIR or /tmp`, help: 'where the instance directory goes' },
  { prop: 'environment', key: 'environment', flag: '--environment', short: '-e', kind: 'string', arg: 'NAME', scope: 'group', default: 'development', defaultText: '$RAILS_ENV, $RACK_ENV, $NODE_ENV or $PASSENGER_APP_ENV, else development', agentDefault: 'production', help: 'app environment: PASSENGER_APP_ENV and NODE_ENV' },
  { prop: 'appType', key: 'app_type', flag: '--app-type', kind: 'apptype', arg: 'NAME', scope: 'route', default: 'node', help: 'the app type: node' },
  { prop: 'startupFile', key: 'startup_file', flag: '--startup-file', kind: 'string', arg: 'FILE', scope: 'route', default: 'app.js', help: 'the app\'s entry file' },
  { prop: 'nodejs', key: 'nodejs', flag: '--nodejs', kind: 'string', arg: 'FILE', scope: 'group', default: undefined, defaultText: 'node', help: 'the Node interpreter for the app: a path or a name in PATH' },
  { prop: 'nodeArgs', key: 'node_args', flag: '--node-arg', kind: 'list', arg: 'ARG', scope: 'group', default: [], help: 'an argument for the app\'s Node, before its entry file (repeatable; write --node-arg=--flag), e.g. --node-arg=--env-file=.env' },
  { prop: 'appStartCommand', key: 'app_start_command', flag: '--app-start-command', kind: 'string', arg: 'COMMAND', scope: 'route', default: undefined, help: 'run any program instead; it must listen on $PORT' },
  { prop: 'envvars', key: 'envvars', flag: '--envvar', kind: 'envvar', arg: 'NAME=VALUE', scope: 'route', default: {}, help: 'pass an environment variable to the app (repeatable)' },
  { prop: 'maxPoolSize', key: 'max_pool_size', flag: '--max-pool-size', kind: 'int', min: 1, arg: 'NUMBER', scope: 'server', default: 6, help: 'most app processes in all' },
  { prop: 'minInstances', key: 'min_instances', flag: '--min-instances', kind: 'int', min: 0, arg: 'NUMBER', scope: 'group', default: 1, help: 'fewest app processes kept' },
  { prop: 'poolIdleTime', key: 'pool_idle_time', flag: '--pool-idle-time', kind: 'int', min: 0, arg: 'SECONDS', scope: 'group', default: 300, help: 'shut down processes idle this long; 0 = never' },
  { prop: 'startTimeout', key: 'start_timeout', flag: '--start-timeout', kind: 'int', min: 1, arg: 'SECONDS', scope: 'group', default: 90, help: 'how long an app may take to start listening' },
  { prop: 'forceMaxConcurrentRequestsPerProcess', key: 'force_max_concurrent_requests_per_process', flag: '--force-max-concurrent-requests-per-process', kind: 'int', min: 0, arg: 'NUMBER', scope: 'group', default: 0, help: 'requests one process takes at once; 0 = unlimited' },
  { prop: 'maxRequests', key: 'max_requests', flag: '--max-requests', kind: 'int', min: 0, arg: 'NUMBER', scope: 'group', default: 0, help: 'replace a process after this many requests; 0 = never' },
  { prop: 'memoryLimit', key: 'memory_limit', flag: '--memory-limit', kind: 'int', min: 0, arg: 'MB', scope: 'group', default: 0, help: 'replace a process above this private memory; 0 = no limit' },
  { prop: 'maxRequestQueueSize', key: 'max_request_queue_size', flag: '--max-request-queue-size', kind: 'int', min: 0, arg: 'NUMBER', scope: 'group', default: 100, help: 'waiting requests beyond this get 503; 0 = unlimited' },
  { prop: 'requestQueueOverflowStatusCode', key: 'request_queue_overflow_status_code', flag: '--request-queue-overflow-status-code', kind: 'int', min: 200, max: 599, arg: 'CODE', scope: 'group', default: 503, help: 'the status for requests beyond the queue' },
  { prop: 'maxRequestQueueTime', key: 'max_request_queue_time', flag: '--max-request-queue-time', kind: 'int', min: 0, arg: 'SECONDS', scope: 'group', default: 0, help: 'a request waiting longer for a process gets 504; 0 = no limit' },
  { prop: 'maxRequestTime', key: 'max_request_time', flag: '--max-request-time', kind: 'int', min: 0, arg: 'SECONDS', scope: 'group', default: 0, help: 'a request running longer gets 504 and its process is replaced; 0 = no limit' },
  { prop: 'scaleAtSessions', key: 'scale_at_sessions', flag: '--scale-at-sessions', kind: 'int', min: 0, arg: 'NUMBER', scope: 'group', default: 10, help: 'spawn another process when every process has this many requests at once; 0 = never' },
  { prop: 'statThrottleRate', key: 'stat_throttle_rate', flag: '--stat-throttle-rate', kind: 'int', min: 0, arg: 'SECONDS', scope: 'group', default: 10, help: 'how often tmp/restart.txt is checked' },
  { prop: 'stickySessions', key: 'sticky_sessions', flag: '--sticky-sessions', kind: 'bool', scope: 'group', default: false, help: 'pin each client to its process with a cookie' },
  { prop: 'stickySessionsCookieName', key: 'sticky_sessions_cookie_name', flag: '--sticky-sessions-cookie-name', kind: 'string', arg: 'NAME', scope: 'group', default: '_passenger_route', help: 'the sticky cookie\'s name' },
  { prop: 'stickySessionsCookieAttributes', key: 'sticky_sessions_cookie_attributes', flag: '--sticky-sessions-cookie-attributes', kind: 'string', arg: 'TEXT', scope: 'group', default: 'SameSite=Lax', help: 'attributes of the sticky cookie; Secure is added over HTTPS' },
  { prop: 'friendlyErrorPages', key: 'friendly_error_pages', flag: '--friendly-error-pages', kind: 'bool', negatable: true, scope: 'group', default: undefined, defaultText: 'on in development', help: 'show app start errors in the browser' },
  { prop: 'directMode', key: 'direct_mode', flag: '--direct-mode', kind: 'bool', scope: 'standalone', default: false, help: 'app processes accept connections themselves (Node apps; the agent supervises and accounts)' },
  { prop: 'forwarder', key: 'forwarder', flag: '--forwarder', kind: 'forwarder', arg: 'NAME', scope: 'server', default: 'builtin', help: 'request path: builtin (requests read with Node\'s HTTP parser on a plain socket server), node-http (the same forwarding on node:http\'s server, the fallback) or reply-from (through @fastify/reply-from; passenger start only); direct is an old name of builtin, still accepted' },
  { prop: 'user', key: 'user', flag: '--user', kind: 'string', arg: 'NAME', scope: 'route', default: undefined, help: 'as root: run the server and its apps as this user' },
  { prop: 'group', key: 'group', flag: '--group', kind: 'string', arg: 'NAME', scope: 'route', default: undefined, defaultText: 'the user\'s primary group', help: 'with --user, or for the app: this group' },
  { prop: 'userSwitching', key: 'user_switching', flag: '--user-switching', kind: 'bool', negatable: true, scope: 'server', default: true, help: 'as root: run each app as the owner of its startup file; off: as the default user' },
  { prop: 'defaultUser', key: 'default_user', flag: '--default-user', kind: 'string', arg: 'NAME', scope: 'server', default: 'nobody', help: 'as root: who apps owned by root run as; never root' },
  { prop: 'defaultGroup', key: 'default_group', flag: '--default-group', kind: 'string', arg: 'NAME', scope: 'server', default: undefined, defaultText: 'its primary group', help: 'the default user\'s group' },
  { prop: 'appLogFile', key: 'app_log_file', flag: '--app-log-file', kind: 'string', arg: 'PATH', scope: 'group', default: undefined, help: 'write the app\'s output to this file instead of the log' },
  { prop: 'disableLogPrefix', key: 'disable_log_prefix', flag: '--disable-log-prefix', kind: 'bool', scope: 'group', default: false, help: 'write app output lines without the "App PID (ROOT) stdout: " prefix' },
  { prop: 'shutdownTimeout', key: 'shutdown_timeout', flag: '--shutdown-timeout', kind: 'int', min: 1, arg: 'SECONDS', scope: 'group', default: 30, help: 'how long a process told to leave may take to exit by itself before it is killed' },
  { prop: 'abortWebsocketsOnProcessShutdown', key: 'abort_websockets_on_process_shutdown', flag: '--abort-websockets-on-process-shutdown', kind: 'bool', negatable: true, scope: 'group', default: true, help: 'close a leaving process\'s WebSockets at once; off: they end by themselves, up to the shutdown timeout' },
  { prop: 'logLevel', key: 'log_level', flag: '--log-level', kind: 'loglevel', arg: 'LEVEL', scope: 'server', default: 3, help: '0 (crit) to 7 (debug3), or a name: crit error warn notice info debug' },
  { prop: 'appRootAllow', key: 'app_root_allow', flag: '--app-root-allow', kind: 'list', arg: 'DIR', scope: 'agent', default: [], help: 'serve apps whose root is DIR or below it (repeatable; with none, nothing is served)' },
  { prop: 'socketOwner', key: 'socket_owner', flag: '--socket-owner', kind: 'string', arg: 'USER', scope: 'agent', default: undefined, defaultText: 'the agent\'s user', help: 'owner of the request socket' },
  { prop: 'socketGroup', key: 'socket_group', flag: '--socket-group', kind: 'string', arg: 'GROUP', scope: 'agent', default: undefined, defaultText: 'www-data when it exists', help: 'group of the request socket' },
  { prop: 'socketMode', key: 'socket_mode', flag: '--socket-mode', kind: 'string', arg: 'OCTAL', scope: 'agent', default: undefined, defaultText: '0660, owner and group only', help: 'mode of the request socket' },
  { prop: 'preStart', key: 'pre_start', flag: '--pre-start', kind: 'list', arg: 'APP_ROOT|URL', scope: 'agent', default: [], help: 'start an app with the agent (and each restarted core): an app root, or a URL requested through the web server (repeatable)' },
] satisfies readonly OptionSpec[];

type Row = (typeof OPTION_SPECS)[number];
/** Compiles only while every option has its row (else the type names the ones without). */
type WithoutRow = Exclude<OptionProp, Row['prop']>;
export const EVERY_OPTION_HAS_A_ROW: [WithoutRow] extends [never] ? true : WithoutRow = true;
const ofScope = (...scopes: Scope[]): readonly OptionSpec[] => (OPTION_SPECS as readonly OptionSpec[]).filter((s) => scopes.includes(s.scope));

/** `passenger start`'s options (also read from Passengerfile.json and PASSENGER_<KEY>). */
export const START_OPTION_SPECS = ofScope('standalone', 'server', 'group', 'route');
/** `passenger agent`'s: the server's, every app's defaults, and its own. */
export const AGENT_OPTION_SPECS = ofScope('server', 'group', 'agent');
/** What one app's settings in the web server, or its Passengerfile.json behind one, may set. */
export const APP_OPTION_SPECS = ofScope('group', 'route');

/** The options that describe one app group: each app's own. */
export type GroupProp = Extract<Row, { scope: 'group' | 'route' }>['prop'];
export const GROUP_PROPS: readonly GroupProp[] = APP_OPTION_SPECS.map((s) => s.prop as GroupProp);

/** A fresh copy of a default (lists and envvars are changed in place by their owners). */
function copy<T>(v: T): T {
  return Array.isArray(v) ? ([...v] as T) : v !== null && typeof v === 'object' ? ({ ...v } as T) : v;
}

/** `passenger start`'s defaults for an app in `appRoot`. */
export function defaults(appRoot: string): Options {
  const o: Record<string, unknown> = { appRoot, mode: 'standalone' };
  for (const s of OPTION_SPECS as readonly OptionSpec[]) o[s.prop] = copy(s.default);
  return o as unknown as Options;
}

/** `passenger agent`'s defaults: `passenger start`'s, except where its spec names its own. */
export function agentDefaults(): Options {
  const o = defaults('/') as unknown as Record<string, unknown>;
  for (const s of AGENT_OPTION_SPECS) if (s.agentDefault !== undefined) o[s.prop] = copy(s.agentDefault);
  o.mode = 'agent';
  return o as unknown as Options;
}

/**
 * How help names an option's default: `default 3000` for a value, `default:
 * ...` for a description; null when there is nothing to name (no default, an
 * empty list, a plain switch that is off unless given).
 */
export function defaultText(s: OptionSpec, command: 'start' | 'agent'): string | null {
  const text = command === 'agent' ? s.agentDefaultText ?? (s.agentDefault === undefined ? s.defaultText : undefined) : s.defaultText;
  if (text !== undefined) return text === '' ? null : `default: ${text}`;
  const v: unknown = command === 'agent' && s.agentDefault !== undefined ? s.agentDefault : s.default;
  if (v === undefined || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.keys(v).length === 0)) return null;
  if (typeof v === 'boolean') return s.negatable ? `default ${v ? 'on' : 'off'}` : null;
  return `default ${String(v)}`;
}

/** The help rows of a list of options: the flag and its help, with the default the spec names. */
export function usageOfOptions(specs: readonly OptionSpec[] = START_OPTION_SPECS, command: 'start' | 'agent' = 'start'): string {
  const rows = specs.map((s) => {
    const d = defaultText(s, command);
    const help = (command === 'agent' && s.agentHelp) || s.help;
    return [`${s.short ? `${s.short}, ` : '    '}${s.negatable ? `${s.flag}, --no-${s.flag.slice(2)}` : s.flag}${s.arg ? ` ${s.arg}` : ''}`, d === null ? help : `${help} (${d})`];
  });
  const w = Math.max(...rows.map((r) => r[0].length));
  return rows.map(([a, b]) => `  ${a.padEnd(w)}  ${b}`).join('\n');
}
