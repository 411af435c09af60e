// Phusion Passenger's options this server does not implement, each accepted
// with a warning or refused by name wherever it is given.
import { ConfigError } from '../errors';

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
export interface PassengerOnlySpec {
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

export function flagOfPassengerOnly(spec: PassengerOnlySpec): string {
  return spec.flag ?? `--${spec.key.replace(/_/g, '-')}`;
}

/** Accepts a Passenger-only option with a warning, or refuses it, as its table entry says. */
export function passengerOnly(spec: PassengerOnlySpec, value: unknown, where: string, warnings: string[]): void {
  if (spec.verdict === 'refused' && !(spec.unless?.(value) ?? false)) {
    throw new ConfigError(`${where} is not supported yet: ${spec.why}`, 'remove it to start without it');
  }
  warnings.push(spec.verdict === 'refused'
    ? `${where} ${JSON.stringify(value)} is what this server does anyway: accepted and ignored`
    : `${where} is accepted and ignored: ${spec.why}`);
}
