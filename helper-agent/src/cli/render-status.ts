// Renders a StatusDocument as passenger-status text (Passenger's layout).
import type { RequestSnapshot, StatusDocument } from '../admin/protocol';

export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  const sec = s % 60;
  if (d > 0) return `${d}d ${h}h ${m}m`;
  if (h > 0) return `${h}h ${m}m ${sec}s`;
  if (m > 0) return `${m}m ${sec}s`;
  return `${sec}s`;
}

/** `s` cut to `max` characters by an ellipsis in the middle (paths keep both ends). */
export function shorten(s: string, max: number): string {
  if (s.length <= max) return s;
  const keep = Math.max(1, max - 1);
  const head = Math.ceil(keep / 3);
  return `${s.slice(0, head)}…${s.slice(s.length - (keep - head))}`;
}

function pad(s: string, w: number): string {
  return s.length >= w ? `${s} ` : s.padEnd(w);
}

function dateLine(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  const off = -d.getTimezoneOffset();
  const sign = off >= 0 ? '+' : '-';
  const tz = `${sign}${p(Math.floor(Math.abs(off) / 60))}${p(Math.abs(off) % 60)}`;
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())} ${tz}`;
}

/** ANSI styles, or none. */
export interface Paint {
  heading(s: string): string;
  name(s: string): string;
  dim(s: string): string;
  warn(s: string): string;
}

export const NO_PAINT: Paint = { heading: (s) => s, name: (s) => s, dim: (s) => s, warn: (s) => s };
export const ANSI_PAINT: Paint = {
  heading: (s) => `\x1b[33m${s}\x1b[0m`,
  name: (s) => `\x1b[1m${s}\x1b[0m`,
  dim: (s) => `\x1b[2m${s}\x1b[0m`,
  warn: (s) => `\x1b[31m${s}\x1b[0m`,
};

/** `width`: fit the lines with paths in it (a live view in a terminal); else paths print whole. */
/** The Version, Date and Instance lines every text view starts with. */
export function renderHeader(doc: StatusDocument, width = Infinity): string {
  return [
    `Version : ${doc.version}`,
    `Date    : ${dateLine(new Date(Date.parse(doc.time)))}`,
    `Instance: ${doc.instance.name} (${shorten(doc.instance.server, width - doc.instance.name.length - 13)})`,
  ].join('\n');
}

export function renderPool(doc: StatusDocument, header: boolean, paint: Paint = NO_PAINT, width = Infinity): string {
  const out: string[] = [];
  const now = Date.parse(doc.time);
  if (header) {
    out.push(renderHeader(doc, width));
    out.push('');
  }
  out.push(paint.heading('----------- General information -----------'));
  out.push(`Max pool size : ${doc.max_pool_size}`);
  out.push(`App groups    : ${doc.groups.length}`);
  out.push(`Processes     : ${doc.process_count}`);
  out.push(`Requests in top-level queue : ${doc.top_level_queue}`);
  out.push('');
  out.push(paint.heading('----------- Application groups -----------'));
  for (const g of doc.groups) {
    out.push(`${paint.name(shorten(g.name, width - g.environment.length - 4))} (${g.environment}):`);
    out.push(`  App root: ${shorten(g.app_root, width - 12)}`);
    if (g.nodejs !== undefined) out.push(`  Node: ${g.node_version ?? '?'} (${shorten(g.nodejs, width - 20)})`);
    out.push(`  Requests in queue: ${g.queue}`);
    if (g.spawning > 0) out.push(`  Spawning: ${g.spawning} process(es)`);
    if (g.restarting) out.push(paint.warn('  Restarting'));
    if (g.last_spawn_error && g.processes.length === 0) out.push(paint.warn(`  Last spawn error: ${g.last_spawn_error}`));
    for (const p of g.processes) {
      const mem = p.private_dirty_kb === null ? '?' : `${Math.round(p.private_dirty_kb / 1024)}M`;
      const cpu = p.cpu_percent === null ? '?' : `${p.cpu_percent}%`;
      // Why it goes, when it does: replaced while it still serves, or shutting down.
      const why = p.leave_reason ? `: ${p.leave_reason}` : '';
      const state = p.state === 'alive' ? (p.leave_reason ? paint.warn(`    (being replaced${why})`) : '') : paint.warn(`    (shutting down${why})`);
      // Open WebSockets are not sessions (README.md, "WebSockets"): shown apart, when there are any.
      const ws = p.websockets > 0 ? `  WebSockets: ${p.websockets}` : '';
      out.push(`  * PID: ${paint.name(pad(String(p.pid), 8))}Sessions: ${pad(String(p.sessions), 8)}Processed: ${pad(String(p.processed), 8)}Uptime: ${formatDuration(p.uptime_s)}${ws}${state}`);
      out.push(`    CPU: ${pad(cpu, 8)}Memory  : ${pad(mem, 8)}Last used: ${formatDuration((now - p.last_used) / 1000)} ago`);
    }
    out.push('');
  }
  return out.join('\n');
}

export function renderRequests(reqs: RequestSnapshot[]): string {
  if (reqs.length === 0) return 'No requests in flight.';
  const rows = reqs.map((r) => [r.method, r.path.length > 40 ? `${r.path.slice(0, 39)}…` : r.path, r.pid === null ? '-' : String(r.pid), r.state, `${(r.age_ms / 1000).toFixed(1)}s`, r.client ?? '']);
  const head = ['METHOD', 'PATH', 'PID', 'STATE', 'AGE', 'CLIENT'];
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (r: string[]): string => r.map((c, i) => c.padEnd(w[i])).join('  ').trimEnd();
  return [line(head), ...rows.map(line)].join('\n');
}
