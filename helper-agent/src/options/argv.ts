// The one command-line parser of every binary: passenger and its commands,
// passenger-status, passenger-config and its subcommands, passenger-memory-stats.
import { ConfigError } from '../errors';
import type { Options } from './options';
import { flagOfPassengerOnly, passengerOnly, type PassengerOnlySpec } from './passenger-only';
import { START_OPTION_SPECS, type FlagSpec, type OptionSpec } from './specs';
import { coerce, nearest, parseEnvvar } from './values';

export interface ParsedArgs<P extends string> {
  values: Partial<Record<P, unknown>>;
  positionals: string[];
  /** One line for each Passenger option that was accepted and ignored. */
  warnings: string[];
}

/**
 * Parses `--flag value`, `--flag=value`, `--no-flag`, and short flags
 * (`-p 8000`, `-p8000`). Each value is read as its spec's kind; `list`s
 * and `envvar`s add up over repeated flags. An unknown flag, a missing or
 * bad value is a ConfigError naming the flag (and the nearest known one).
 * With `passengerOnlySpecs`, Passenger's options this server does not
 * implement are accepted with a warning or refused, as their table says.
 */
export function parseArgv<P extends string>(argv: readonly string[], specs: readonly FlagSpec<P>[],
  passengerOnlySpecs: readonly PassengerOnlySpec[] = []): ParsedArgs<P> {
  const byFlag = new Map(specs.map((s) => [s.flag, s]));
  const byShort = new Map(specs.filter((s) => s.short).map((s) => [s.short as string, s]));
  const foreign = new Map<string, PassengerOnlySpec>();
  for (const f of passengerOnlySpecs) {
    foreign.set(flagOfPassengerOnly(f), f);
    if (f.short) foreign.set(f.short, f);
  }
  const values: Record<string, unknown> = {};
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
    const spec = byFlag.get(name);
    if (!spec && name.startsWith('--no-')) {
      const pos = byFlag.get(`--${name.slice(5)}`);
      if (pos && pos.negatable) {
        if (eq !== -1) throw new ConfigError(`${name} takes no value`);
        values[pos.prop] = false;
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
    if (spec.kind === 'bool') {
      values[spec.prop] = eq === -1 ? true : coerce(spec, arg.slice(eq + 1), name);
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
      values[spec.prop] = { ...(values[spec.prop] as Record<string, string> | undefined), [k]: v };
    } else if (spec.kind === 'list') {
      values[spec.prop] = [...((values[spec.prop] as string[] | undefined) ?? []), raw];
    } else {
      values[spec.prop] = coerce(spec, raw, name);
    }
  }
  return { values: values as Partial<Record<P, unknown>>, positionals, warnings };
}

export interface ParsedFlags {
  values: Partial<Options>;
  positionals: string[];
  /** One line for each Passenger option that was accepted and ignored. */
  warnings: string[];
}

/** The server's options from the command line (`passenger start`'s unless other specs are given). */
export function parseFlags(argv: readonly string[], specs: readonly OptionSpec[] = START_OPTION_SPECS,
  passengerOnlySpecs: readonly PassengerOnlySpec[] = []): ParsedFlags {
  return parseArgv<keyof Options>(argv, specs, passengerOnlySpecs) as ParsedFlags;
}
