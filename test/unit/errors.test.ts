// The error table and the README's list of codes stay in step.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { test } from 'node:test';
import { ERROR_CODES } from '../../helper-agent/src/errors';
import { PACKAGE_ROOT } from '../../helper-agent/src/version';

test('README.md names every error code of errors.ts, and no other', () => {
  const readme = fs.readFileSync(path.join(PACKAGE_ROOT, 'README.md'), 'utf8');
  const start = readme.indexOf('## Error codes');
  assert.ok(start !== -1, 'README has an "Error codes" section');
  const end = readme.indexOf('\n## ', start + 1);
  const section = readme.slice(start, end === -1 ? undefined : end);
  const documented = new Set(section.match(/\bE_[A-Z_]+\b/g) ?? []);
  assert.deepEqual([...documented].sort(), Object.keys(ERROR_CODES).sort());
});
