// Reading one value, whether a flag's text, a JSON value or an environment
// variable's, into an option's type; and the "did you mean" of unknown names.
import { ConfigError } from '../errors';
import type { FlagSpec } from './specs';

const LOG_LEVEL_NAMES: Record<string, number> = { crit: 0, error: 1, warn: 2, notice: 3, info: 4, debug: 5, debug2: 6, debug3: 7 };

/** Turns one raw value (a flag's text or a JSON value) into the option's type, or throws ConfigError naming `where`. */
export function coerce(spec: Pick<FlagSpec, 'kind' | 'min' | 'max'>, raw: unknown, where: string): unknown {
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
      // "direct" was builtin's name before it could be confused with --direct-mode; kept as an alias for one release.
      if (raw === 'direct') return 'builtin';
      if (raw !== 'builtin' && raw !== 'node-http' && raw !== 'reply-from') bad(`expected "builtin", "node-http" or "reply-from", got ${JSON.stringify(raw)}`);
      return raw;
    case 'list':
      // Flags append one value at a time; a file gives the whole list.
      if (!Array.isArray(raw) || raw.some((x) => typeof x !== 'string')) bad(`expected a list of strings, got ${JSON.stringify(raw)}`);
      return raw;
    case 'envvar':
      return raw;
  }
}

/** `NAME=VALUE` of --envvar (and of each envvars entry), checked. */
export function parseEnvvar(text: string, where: string): [string, string] {
  const eq = text.indexOf('=');
  if (eq <= 0) throw new ConfigError(`${where}: expected NAME=VALUE, got ${JSON.stringify(text)}`);
  const name = text.slice(0, eq);
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new ConfigError(`${where}: ${JSON.stringify(name)} is not a valid environment variable name`);
  return [name, text.slice(eq + 1)];
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
