import { registryDirs } from '../../instance/instance-dir';
import { PACKAGE_ROOT, VERSION } from '../../version';
import type { Command } from './command';

export const about: Command = {
  summary: 'show the version and where things are',
  usage: 'Usage: passenger-config about\n\nExample:\n  passenger-config about',
  async run() {
    console.log(`Version:            ${VERSION}`);
    console.log(`Installed in:       ${PACKAGE_ROOT}`);
    console.log(`Node:               ${process.execPath} (${process.version})`);
    console.log(`Instance registry:  ${registryDirs().join(', ')}`);
    console.log(`nginx snippet:      ${PACKAGE_ROOT}/nginx-conf/passenger.conf`);
    console.log(`Apache snippet:     ${PACKAGE_ROOT}/apache-conf/passenger.conf`);
    return 0;
  },
};
