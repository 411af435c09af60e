import { adminJson } from '../../instance/admin-client';
import { parseArgv } from '../../config';
import { die } from '../common';
import { INSTANCE_FLAGS, instanceFrom, type Command } from './command';

export const apiCall: Command = {
  summary: 'call the admin API and print its JSON answer',
  usage: 'Usage: passenger-config api-call METHOD PATH [--instance NAME] [--instance-registry-dir DIR]\n\nExamples:\n  passenger-config api-call GET /pool.json\n  passenger-config api-call GET /requests.json',
  flags: INSTANCE_FLAGS,
  async run(argv) {
    const { values: flags, positionals } = parseArgv(argv, INSTANCE_FLAGS);
    if (positionals.length !== 2) die('api-call takes METHOD and PATH');
    console.log(JSON.stringify(await adminJson(instanceFrom(flags), positionals[0].toUpperCase(), positionals[1]), null, 2));
    return 0;
  },
};
