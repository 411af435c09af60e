// What every command-line tool shares: error printing (one line: the problem,
// then the hint in parentheses) and exit statuses (2 for bad usage or
// configuration, 1 for other failures).
import { ConfigError, PassengerError } from '../errors';

export function die(message: string, hint?: string): never {
  throw new PassengerError('E_USAGE', message, hint);
}

export function runMain(name: string, main: (argv: string[]) => Promise<number>): void {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e: unknown) => {
      if (e instanceof PassengerError) {
        process.stderr.write(`${name}: ${e.message}${e.hint ? ` (${e.hint})` : ''}\n`);
        process.exit(e instanceof ConfigError || e.code === 'E_USAGE' ? 2 : 1);
      }
      process.stderr.write(`${name}: unexpected error: ${(e as Error)?.stack ?? e}\n`);
      process.exit(1);
    },
  );
}

/** Splits `--name=value` / `--name value` style flags for the small tools. Unknown flags are usage errors. */
export function parseToolFlags(argv: string[], known: Record<string, 'bool' | 'value'>): { flags: Record<string, string | true>; positionals: string[] } {
  const flags: Record<string, string | true> = {};
  const positionals: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith('-') || a === '-') {
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    const name = eq === -1 ? a : a.slice(0, eq);
    const kind = known[name];
    if (!kind) die(`unknown flag ${name}`, 'see --help');
    if (kind === 'bool') {
      if (eq !== -1) die(`${name} takes no value`);
      flags[name] = true;
    } else if (eq !== -1) {
      flags[name] = a.slice(eq + 1);
    } else {
      const v = argv[++i];
      if (v === undefined) die(`${name} needs a value`);
      flags[name] = v;
    }
  }
  return { flags, positionals };
}
