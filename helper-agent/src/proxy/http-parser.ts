// Node's own HTTP/1 parser (llhttp, the one node:http runs on), for both
// directions: requests from clients (client-http.ts) and responses from app
// processes (app-client.ts). Node exposes it as an internal module; the
// shapes below are the part of it the agent uses.

export interface Parser {
  initialize(type: number, resource: object, maxHeaderSize?: number, lenient?: number): void;
  execute(data: Buffer): number | Error;
  finish(): number | Error | undefined;
  close(): void;
  [callback: number]: unknown;
}

export interface ParserClass {
  new (): Parser;
  REQUEST: number;
  RESPONSE: number;
  kOnMessageBegin: number;
  kOnHeaders: number;
  kOnHeadersComplete: number;
  kOnBody: number;
  kOnMessageComplete: number;
  kOnExecute: number;
}

/** A parse error: llhttp's code (HPE_*) and where in the buffer it stopped. */
export type ParseError = Error & { code?: string; bytesParsed?: number };

// eslint-disable-next-line @typescript-eslint/no-require-imports
const common = require('_http_common') as { HTTPParser: ParserClass; methods: string[] };

export const HTTPParser: ParserClass = common.HTTPParser;
/** Request methods by the number the parser reports. */
export const METHODS: readonly string[] = common.methods;
