// The core's share of a busy machine's CPU. Linux's autogroup scheduler
// (kernel.sched_autogroup_enabled, on by default where the kernel has it,
// for every process not placed in a CPU cgroup of its own) splits contended
// CPU time equally between sessions, not processes. The core is a session
// of its own, and so is each app process it starts (each leads its own), as
// is the web server in front: with N app processes busy, the core, which
// carries every request of all of them, would get one share in N + 2. Its
// session gets a little more weight than one app's instead. A leaf module:
// imports nothing of ours.
import * as fs from 'node:fs';

/**
 * The nice value of the core's session group: a weight of 1,586 against
 * 1,024 for each app's session and the web server's. More than this
 * starved nginx's keep-alive connections to the core in the benchmark.
 */
export const CORE_SESSION_NICE = -2;

/** A process's session group in the autogroup scheduler. */
export interface SessionGroup {
  /** Its name, `/autogroup-N`: one per session. */
  group: string;
  nice: number;
}

/**
 * The session group of `pid` (or this process), from /proc/PID/autogroup.
 * Null where the session has none: a kernel without autogroup scheduling,
 * or a session the kernel could not give a group of its own (it then shares
 * the machine's default one, and the file reads empty).
 */
export function sessionGroupOf(pid: number | 'self' = 'self'): SessionGroup | null {
  let text: string;
  try {
    text = fs.readFileSync(`/proc/${pid}/autogroup`, 'utf8');
  } catch {
    return null;
  }
  const m = /^(\/autogroup-\d+) nice (-?\d+)/.exec(text);
  return m ? { group: m[1], nice: Number(m[2]) } : null;
}

/**
 * Gives this process's session the weight of `nice` in the autogroup
 * scheduler. Only a privileged process may lower it; new sessions (the apps
 * the core starts) begin at 0 again. Returns null, or why it could not.
 */
export function setSessionNice(nice: number = CORE_SESSION_NICE): string | null {
  try {
    fs.writeFileSync('/proc/self/autogroup', String(nice));
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return err.code === 'ENOENT' ? 'the kernel has no autogroup scheduling' : err.message;
  }
  // The write succeeds even for a session left in the default group, where it weighs nothing.
  const now = sessionGroupOf();
  if (now === null) return 'this session has no autogroup of its own';
  return now.nice === nice ? null : `the kernel kept nice ${now.nice}`;
}
