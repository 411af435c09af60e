import * as fs from 'node:fs';
import * as path from 'node:path';
import { registryDirs } from '../../instance/registry';
import { PACKAGE_ROOT, VERSION } from '../../version';
import { parseArgv } from '../../config';
import { die } from '../common';
import type { Command } from './command';

/** Where the built binaries live (dist/helper-agent/src/cli). */
const BINARIES_DIR = path.resolve(__dirname, '..');

/** The one-value answers of `about SUBCOMMAND`, named as Passenger's, for scripts that ask them. */
const SUBCOMMANDS: Record<string, { summary: string; answer(): string }> = {
  version: { summary: 'the version number', answer: () => `passenger-ts ${VERSION}` },
  root: { summary: 'where the package is installed', answer: () => PACKAGE_ROOT },
  resourcesdir: { summary: 'where the web server snippets and the service unit are', answer: () => PACKAGE_ROOT },
  'support-binaries-dir': { summary: 'where the built commands are', answer: () => BINARIES_DIR },
  'nodejs-command': { summary: 'the Node that runs the agent (and apps without nodejs)', answer: () => process.execPath },
  compiled: {
    summary: 'whether the native addon is built (exit status 0) or not (1)',
    answer: () => (fs.existsSync(path.join(PACKAGE_ROOT, 'native', 'build', 'Release')) ? 'yes' : 'no'),
  },
  'custom-packaged': { summary: 'always "false": there is no distribution package', answer: () => 'false' },
};

export const about: Command = {
  summary: 'show the version and where things are; `about version`, `about root`, ... print one of them',
  usage: `Usage: passenger-config about [SUBCOMMAND]

Without a subcommand, shows the version and where things are. A subcommand
prints one of them, as Phusion Passenger's does:
${Object.entries(SUBCOMMANDS).map(([k, v]) => `  ${k.padEnd(22)}${v.summary}`).join('\n')}

Passenger's other subcommands are about Ruby and compiling its nginx module,
which do not exist here.

Examples:
  passenger-config about
  passenger-config about version
  cd "$(passenger-config about root)"`,
  flags: [],
  async run(argv) {
    parseArgv(argv, []);
    if (argv.length > 1) die('about takes at most one subcommand', 'see passenger-config about --help');
    if (argv.length === 1) {
      const sub = Object.prototype.hasOwnProperty.call(SUBCOMMANDS, argv[0]) ? SUBCOMMANDS[argv[0]] : undefined;
      if (!sub) die(`about ${argv[0]} is not supported`, `subcommands: ${Object.keys(SUBCOMMANDS).join(', ')}`);
      const answer = sub.answer();
      console.log(answer);
      return argv[0] === 'compiled' && answer !== 'yes' ? 1 : 0;
    }
    console.log(`Version:            ${VERSION}`);
    console.log(`Installed in:       ${PACKAGE_ROOT}`);
    console.log(`Node:               ${process.execPath} (${process.version})`);
    console.log(`Instance registry:  ${registryDirs().join(', ')}`);
    console.log(`nginx snippet:      ${PACKAGE_ROOT}/nginx-conf/passenger.conf`);
    console.log(`Apache snippet:     ${PACKAGE_ROOT}/apache-conf/passenger.conf`);
    return 0;
  },
};
