// Reading /proc: process stat, start time, CPU, private dirty memory.
// A leaf module: imports nothing of ours. Sync variants are for the CLIs;
// the agent uses the async ones.
import * as fs from 'node:fs';

export const CLK_TCK = 100; // Linux USER_HZ
const PAGE_KB = 4;

export interface ProcStat {
  pid: number;
  comm: string;
  state: string;
  ppid: number;
  pgid: number;
  utimeTicks: number;
  stimeTicks: number;
  /** start time since boot, in clock ticks: with the pid, it names a process exactly */
  startTicks: number;
  vsizeKB: number;
  rssKB: number;
}

export function parseStat(pid: number, text: string): ProcStat | null {
  const l = text.indexOf('(');
  const r = text.lastIndexOf(')');
  if (l < 0 || r < 0) return null;
  const f = text.slice(r + 2).split(' ');
  // after "pid (comm) ": 0 state, 1 ppid, 2 pgrp, 11 utime, 12 stime, 19 starttime, 20 vsize, 21 rss (pages)
  return {
    pid,
    comm: text.slice(l + 1, r),
    state: f[0],
    ppid: Number(f[1]),
    pgid: Number(f[2]),
    utimeTicks: Number(f[11]),
    stimeTicks: Number(f[12]),
    startTicks: Number(f[19]),
    vsizeKB: Math.round(Number(f[20]) / 1024),
    rssKB: Number(f[21]) * PAGE_KB,
  };
}

export function readStatSync(pid: number): ProcStat | null {
  try {
    return parseStat(pid, fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export async function readStat(pid: number): Promise<ProcStat | null> {
  try {
    return parseStat(pid, await fs.promises.readFile(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return null;
  }
}

export function isLiveStat(st: ProcStat | null): st is ProcStat {
  return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** True while `pid` runs and, when given, still has the recorded start time (so a reused pid is not mistaken). */
export function isAlive(pid: number, startTicks?: number): boolean {
  const st = readStatSync(pid);
  return isLiveStat(st) && (startTicks === undefined || st.startTicks === startTicks);
}

export function sumPrivateDirty(text: string): number {
  let sum = 0;
  const re = /^Private_Dirty:\s+(\d+) kB/gm;
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) sum += Number(m[1]);
  return sum;
}

/** Private dirty RSS in kB: the sum of Private_Dirty over /proc/PID/smaps (smaps_rollup holds the same sum). */
export function privateDirtyKBSync(pid: number): number | null {
  for (const f of ['smaps_rollup', 'smaps']) {
    try {
      return sumPrivateDirty(fs.readFileSync(`/proc/${pid}/${f}`, 'utf8'));
    } catch { /* next */ }
  }
  return null;
}

export async function privateDirtyKB(pid: number): Promise<number | null> {
  for (const f of ['smaps_rollup', 'smaps']) {
    try {
      return sumPrivateDirty(await fs.promises.readFile(`/proc/${pid}/${f}`, 'utf8'));
    } catch { /* next */ }
  }
  return null;
}

export function uptimeTicksSync(): number {
  return Math.floor(parseFloat(fs.readFileSync('/proc/uptime', 'utf8').split(' ')[0]) * CLK_TCK);
}

/** Average CPU use over the process's lifetime, in percent of one core (as ps's %CPU). */
export function lifetimeCpuPercent(st: ProcStat, nowTicks: number): number {
  const age = nowTicks - st.startTicks;
  if (age <= 0) return 0;
  return Math.round(((st.utimeTicks + st.stimeTicks) * 100) / age);
}

export function cmdlineSync(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0+$/, '').split('\0').join(' ');
  } catch {
    return '';
  }
}

export function listPidsSync(): number[] {
  return fs.readdirSync('/proc').filter((n) => /^\d+$/.test(n)).map(Number);
}
