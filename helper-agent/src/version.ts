// The package's name and version, read once from package.json.
import * as fs from 'node:fs';
import * as path from 'node:path';

export const PACKAGE_ROOT = path.resolve(__dirname, '..', '..', '..');
const pkg = JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { name: string; version: string };
export const VERSION: string = pkg.version;
export const SOFTWARE: string = pkg.name;
