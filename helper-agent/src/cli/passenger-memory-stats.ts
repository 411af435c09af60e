#!/usr/bin/env node
// `passenger-memory-stats`: memory of web server, agent and app processes,
// read straight from the instance directories and /proc, so it answers even
// when the agent is stopped or dead.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { INSTANCE_PREFIX, InstanceDir } from '../instance/instance-dir';
import { registryDirs } from '../instance/registry';
import { cmdlineSync, isLiveStat, listPidsSync, privateDirtyKBSync, readStatSync, type ProcStat } from '../platform/procfs';
import { parseArgv, type FlagSpec } from '../config';
import { HELP_FLAG, REGISTRY_FLAG, runMain } from './common';

const USAGE = `Usage: passenger-memory-stats [--no-apache] [--no-nginx] [--json] [--instance-registry-dir DIR]

Lists Apache, nginx, agent (watchdog, core) and app processes with their
virtual size and private dirty memory (from /proc/PID/smaps), per section
with a count and a total. Run it as root to see every process.

Example:
  sudo passenger-memory-stats --no-apache`;

interface Row { pid: number; ppid: number; vmsize_kb: number; private_dirty_kb: number | null; name: string }
interface Section { title: string; processes: Row[]; count: number; total_private_dirty_kb: number }

function row(st: ProcStat): Row {
  return { pid: st.pid, ppid: st.ppid, vmsize_kb: st.vsizeKB, private_dirty_kb: privateDirtyKBSync(st.pid), name: cmdlineSync(st.pid) || st.comm };
}

function section(title: string, stats: ProcStat[]): Section {
  const processes = stats.sort((a, b) => a.pid - b.pid).map(row);
  return { title, processes, count: processes.length, total_private_dirty_kb: processes.reduce((a, r) => a + (r.private_dirty_kb ?? 0), 0) };
}

function exeName(pid: number): string {
  try { return path.basename(fs.readlinkSync(`/proc/${pid}/exe`)); } catch { return ''; }
}

function readPid(file: string): number | null {
  try {
    const n = parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isInteger(n) ? n : null;
  } catch { return null; }
}

async function descendants(pid: number): Promise<number[]> {
  const { default: pidtree } = await import('pidtree');
  try {
    return await pidtree(pid);
  } catch {
    return [];
  }
}

function mb(kb: number | null): string {
  return kb === null ? '?' : `${(kb / 1024).toFixed(1)} MB`;
}

function render(s: Section): string {
  const lines = [`--------- ${s.title} ---------`, 'PID      PPID     VMSize      Private     Name'];
  for (const r of s.processes) {
    lines.push(`${String(r.pid).padEnd(9)}${String(r.ppid).padEnd(9)}${mb(r.vmsize_kb).padEnd(12)}${mb(r.private_dirty_kb).padEnd(12)}${r.name.slice(0, 80)}`);
  }
  lines.push(`### Processes: ${s.count}`);
  lines.push(`### Total private dirty RSS: ${mb(s.total_private_dirty_kb)}`);
  return lines.join('\n');
}

export const MEMORY_STATS_FLAGS = [
  { prop: 'noApache', flag: '--no-apache', kind: 'bool' },
  { prop: 'noNginx', flag: '--no-nginx', kind: 'bool' },
  { prop: 'json', flag: '--json', kind: 'bool' },
  REGISTRY_FLAG,
  HELP_FLAG,
] as const satisfies readonly FlagSpec[];

export async function memoryStatsMain(argv: string[]): Promise<number> {
  const { values: flags } = parseArgv(argv, MEMORY_STATS_FLAGS);
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  if (process.getuid && process.getuid() !== 0) {
    process.stderr.write('passenger-memory-stats: not running as root: memory of other users\' processes cannot be read and shows as "?"\n');
  }
  const all = new Map<number, ProcStat>();
  for (const pid of listPidsSync()) {
    const st = readStatSync(pid);
    if (isLiveStat(st)) all.set(pid, st);
  }
  const agents: ProcStat[] = [];
  const apps: ProcStat[] = [];
  const frontends = new Set<number>();
  const exact = (pid: number, startTicks: number): ProcStat | undefined => {
    const st = all.get(pid);
    return st && st.startTicks === startTicks ? st : undefined;
  };
  for (const reg of registryDirs(flags.instanceRegistryDir as string | undefined)) {
    let names: string[] = [];
    try { names = fs.readdirSync(reg).filter((n) => n.startsWith(INSTANCE_PREFIX)); } catch { /* none */ }
    for (const n of names) {
      const inst = new InstanceDir(path.join(reg, n));
      for (const f of [inst.watchdogPidFile, inst.corePidFile]) {
        const pid = readPid(f);
        const st = pid === null ? undefined : all.get(pid);
        if (st) agents.push(st);
      }
      for (const r of inst.processRecords()) {
        const st = exact(r.pid, r.startTicks);
        if (st) apps.push(st);
      }
      // The web server processes the agent saw on its socket, and their process trees.
      for (const f of inst.frontendRecords()) {
        if (!exact(f.pid, f.startTicks)) continue;
        frontends.add(f.pid);
        if (f.role === 'master') for (const c of await descendants(f.pid)) frontends.add(c);
      }
    }
  }
  // Web servers found by their program, so they show before their first request too.
  for (const st of all.values()) if (/^(nginx|apache2|httpd)$/.test(exeName(st.pid) || st.comm)) frontends.add(st.pid);
  const isApache = (st: ProcStat): boolean => /^(apache2|httpd)$/.test(exeName(st.pid) || st.comm);
  const fe = [...frontends].map((p) => all.get(p)).filter((st): st is ProcStat => st !== undefined);
  const sections: Section[] = [];
  if (!flags.noApache) sections.push(section('Apache processes', fe.filter(isApache)));
  if (!flags.noNginx) sections.push(section('Nginx processes', fe.filter((st) => !isApache(st))));
  sections.push(section('Passenger processes', agents));
  sections.push(section('Application processes', apps));
  if (flags.json) console.log(JSON.stringify({ sections }, null, 2));
  else console.log(sections.map(render).join('\n\n'));
  return 0;
}

if (require.main === module) runMain('passenger-memory-stats', memoryStatsMain);
