// What every passenger-config subcommand provides, and the helpers they share.
import type { FlagSpec } from '../../config';
import { type InstanceDir } from '../../instance/instance-dir';
import { registryDirs, selectInstance } from '../../instance/registry';
import { REGISTRY_FLAG } from '../common';

export interface Command {
  summary: string;
  /** Usage text with examples, printed for --help. */
  usage: string;
  /** The flags `run` takes (besides --help, which passenger-config answers with `usage`). */
  flags: readonly FlagSpec[];
  run(argv: string[]): Promise<number>;
}

/** The instance named by --instance (or the only one running), looked for where --instance-registry-dir says. */
export function instanceFrom(flags: { instance?: unknown; instanceRegistryDir?: unknown }): InstanceDir {
  return selectInstance(registryDirs(flags.instanceRegistryDir as string | undefined), flags.instance as string | undefined);
}

/** `--instance NAME` and `--instance-registry-dir DIR`: which server a command asks. */
export const INSTANCE_FLAGS = [
  { prop: 'instance', flag: '--instance', kind: 'string', arg: 'NAME' },
  REGISTRY_FLAG,
] as const satisfies readonly FlagSpec[];
