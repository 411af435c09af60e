// A group's queue of requests waiting for a process (global queuing): who
// gets in, how long one may wait, and how it leaves without a process.
import { PassengerError } from '../errors';
import type { Group } from './group';
import type { AppProcess } from './process';

/** What a request gets that no process will serve any more: the server stops. */
export function shuttingDown(): PassengerError {
  return new PassengerError('E_SHUTTING_DOWN', 'the server is shutting down');
}

/** Called once with the process that took the request's session, or with why none will. */
export type Waiter = (err: Error | null, proc: AppProcess | null) => void;

/** A request's place in the group's queue: cancel() gives it up (the client left). Safe to call twice, or after it was served. */
export class QueueTicket {
  timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly group: Group,
    readonly fn: Waiter,
    readonly since: number,
  ) {}

  cancel(): void {
    this.group.cancelWait(this);
  }
}

/** Queues a request for the first process with room, or answers it at once with why it cannot wait. */
export function enqueue(g: Group, fn: Waiter): QueueTicket | null {
  g.lastWanted = g.pool.now();
  // A request retried while the server stops (its process left under it): nothing will serve it.
  if (g.pool.closing) {
    fn(shuttingDown(), null);
    return null;
  }
  if (g.backingOff() && g.enabledCount() === 0 && g.spawning === 0 && g.lastSpawnError) {
    fn(g.lastSpawnError, null);
    return null;
  }
  const limit = g.options.maxRequestQueueSize;
  if (limit > 0 && g.queue.length >= limit) {
    fn(new PassengerError('E_QUEUE_FULL', `the request queue of ${g.name} is full (${limit} waiting)`), null);
    return null;
  }
  const entry = new QueueTicket(g, fn, g.pool.now());
  const maxWait = g.options.maxRequestQueueTime;
  if (maxWait > 0) {
    entry.timer = setTimeout(() => {
      entry.timer = null;
      if (dequeue(g, entry)) {
        fn(new PassengerError('E_QUEUE_TIMEOUT', `the request waited ${maxWait} s for a process of ${g.name} (max_request_queue_time)`), null);
        g.notifyChange();
      }
    }, maxWait * 1000);
  }
  g.queue.push(entry);
  if (g.pool.selfCheck) g.pool.checkSoon();
  g.pump();
  g.pool.spawnIfNeeded(g);
  return entry;
}

/** Takes a request out of the queue; false if it was not there (served, or already gone). */
export function dequeue(g: Group, entry: QueueTicket): boolean {
  const i = g.queue.indexOf(entry);
  if (i === -1) return false;
  g.queue.splice(i, 1);
  if (entry.timer) clearTimeout(entry.timer);
  entry.timer = null;
  if (g.pool.selfCheck) g.pool.checkSoon();
  return true;
}

/** Answers every waiting request with `err`. */
export function failQueue(g: Group, err: Error): void {
  const waiting = g.queue.splice(0);
  if (g.pool.selfCheck) g.pool.checkSoon();
  for (const e of waiting) {
    if (e.timer) clearTimeout(e.timer);
    e.fn(err, null);
  }
}
