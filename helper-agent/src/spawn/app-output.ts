// An app's output: forwarded to its log a line at a time, each line prefixed
// with its pid and stream, and the last part kept while it starts (a failed
// spawn shows it).
import type { Logger } from '../log';

const OUTPUT_CAP = 32 * 1024;

/** Keeps the last OUTPUT_CAP bytes of what a process printed while it started. */
export class OutputTail {
  private text = '';
  add(chunk: string): void {
    this.text += chunk;
    if (this.text.length > OUTPUT_CAP) this.text = this.text.slice(-OUTPUT_CAP);
  }
  toString(): string {
    return this.text.trimEnd();
  }
}

/** Forwards an app's output to the log, a line at a time, each prefixed with its pid and stream. */
export function forwardLines(stream: NodeJS.ReadableStream | null, log: Logger, prefix: string, tail: OutputTail | null): () => void {
  if (!stream) return () => undefined;
  let buf = '';
  let capturing = tail;
  stream.setEncoding('utf8');
  stream.on('data', (chunk: string) => {
    if (capturing) capturing.add(chunk);
    buf += chunk;
    let nl: number;
    while ((nl = buf.indexOf('\n')) !== -1) {
      log.raw(`${prefix}${buf.slice(0, nl)}`);
      buf = buf.slice(nl + 1);
    }
    if (buf.length > 64 * 1024) {
      log.raw(`${prefix}${buf}`);
      buf = '';
    }
  });
  stream.on('end', () => { if (buf) log.raw(`${prefix}${buf}`); });
  stream.on('error', () => undefined);
  return () => { capturing = null; };
}
