// The one typed options object: defaults, validation, command-line flags and
// Passengerfile.json. Flags win over the environment, which wins over the
// file, which wins over defaults. Each concern lives in options/: the spec
// table (specs.ts), the command-line parser (argv.ts), the file, environment
// and web server settings (sources.ts), merging and checks (resolve.ts).
export type { Options } from './options/options';
export {
  APP_OPTION_SPECS, AGENT_OPTION_SPECS, DEFAULT_AGENT_SOCKET, GROUP_PROPS, OPTION_SPECS, START_OPTION_SPECS,
  agentDefaults, defaultText, defaults, usageOfOptions, type FlagSpec, type OptionSpec, type Scope,
} from './options/specs';
export { PASSENGER_ONLY_OPTIONS, passengerBool, type PassengerOnlySpec } from './options/passenger-only';
export { parseArgv, parseFlags, type ParsedArgs, type ParsedFlags } from './options/argv';
export { nearest } from './options/values';
export { PASSENGERFILE, PASSENGERFILE_OLD, appFileOptions, defaultEnvironment, envOptions, readPassengerfile, webAppOptions } from './options/sources';
export { groupOptions, resolveOptions, type GroupOptions } from './options/resolve';

