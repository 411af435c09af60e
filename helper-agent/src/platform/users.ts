// User and group names to ids, from /etc/passwd and /etc/group.
import * as fs from 'node:fs';

function lookup(file: string, name: string): number | null {
  if (/^\d+$/.test(name)) return Number(name);
  let text = '';
  try { text = fs.readFileSync(file, 'utf8'); } catch { return null; }
  for (const line of text.split('\n')) {
    const f = line.split(':');
    if (f[0] === name && f[2] !== undefined) return Number(f[2]);
  }
  return null;
}

export function uidOf(user: string): number | null {
  return lookup('/etc/passwd', user);
}

export function gidOf(group: string): number | null {
  return lookup('/etc/group', group);
}
