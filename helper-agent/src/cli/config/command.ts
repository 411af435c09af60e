// What every passenger-config subcommand provides, and the helpers they share.
import { type InstanceDir } from '../../instance/instance-dir';
import { registryDirs, selectInstance } from '../../instance/registry';

export interface Command {
  summary: string;
  /** Usage text with examples, printed for --help. */
  usage: string;
  run(argv: string[]): Promise<number>;
}

/** The instance named by --instance (or the only one running), looked for where --instance-registry-dir says. */
export function instanceFrom(flags: Record<string, string | true>): InstanceDir {
  return selectInstance(registryDirs(flags['--instance-registry-dir'] as string | undefined), flags['--instance'] as string | undefined);
}

export const INSTANCE_FLAGS = { '--instance': 'value', '--instance-registry-dir': 'value' } as const;
