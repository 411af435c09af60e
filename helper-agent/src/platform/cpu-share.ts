// The core's share of a busy machine's CPU. The core carries every request
// of every app, but the kernel shares contended CPU time by sessions or by
// threads, not by work. Linux's autogroup scheduler
// (kernel.sched_autogroup_enabled, on by default where the kernel has it,
// for every process not placed in a CPU cgroup of its own) splits it
// equally between sessions. The core is a session of its own, and so is
// each app process it starts (each leads its own), as is the web server in
// front: with N app processes busy, the core would get one share in N + 2.
// Inside a CPU cgroup (a container, a service with its own CPU controller)
// the split is between threads, and the core's event loop is one thread
// against every app's. Both its session and its event loop thread get more
// weight than an app's instead.
import * as fs from 'node:fs';
import { setThreadNice } from './native';

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

/**
 * The nice value of the core's event loop thread: a weight of 3,121 against
 * 1,024 for each thread of the apps and of the web server in the same CPU
 * cgroup. It counts only where the kernel schedules by cgroup instead of by
 * session (the core's own session holds nothing else busy): in a container,
 * or a service in a CPU cgroup of its own. There -5 lifted `close` and the
 * one-line nginx shape most in the benchmark; -8 gained nothing more.
 */
export const CORE_THREAD_NICE = -5;

/**
 * Gives the calling thread, the core's event loop, the weight of `nice`
 * against every other thread in its scheduling group. Apps and threads
 * started from then on begin at 0 again. Returns null, or why it could not.
 */
export function setLoopThreadNice(nice: number = CORE_THREAD_NICE): string | null {
  try {
    setThreadNice(nice);
    return null;
  } catch (e) {
    return (e as Error).message;
  }
}
