// The only file that loads the native addon (native/, built by `npm install`).
import * as path from 'node:path';

export interface PeerCredentials {
  pid: number;
  uid: number;
  gid: number;
}

interface Addon {
  getPeerCredentials(fd: number): PeerCredentials;
}

const ADDON_PATH = path.resolve(__dirname, '..', '..', '..', '..', 'native', 'build', 'Release', 'passenger_native.node');

let addon: Addon | null = null;

function load(): Addon {
  if (addon === null) {
    try {
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      addon = require(ADDON_PATH) as Addon;
    } catch (e) {
      throw new Error(`the native addon is not built (${ADDON_PATH}): run \`npm install\` (it needs python3, make and g++): ${(e as Error).message}`);
    }
  }
  return addon;
}

/** The pid, uid and gid of the process at the other end of a connected Unix socket. */
export function getPeerCredentials(fd: number): PeerCredentials {
  return load().getPeerCredentials(fd);
}
