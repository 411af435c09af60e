// Behind a real Apache with the shipped snippet and a printed app snippet (--app-root),
// both with --max-body-size 10k: Apache refuses a declared Content-Length
// over it itself, and the agent a chunked body that passes it (the limit
// comes from the snippet's X-Passenger-Max-Body-Size, which a client cannot
// raise). The app never takes part of a body for all of it.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { eventually } from '../helpers';
import { APACHE, printedSnippet, sharedDir, startAgent, startApacheWith, upload, webApp, type Agent } from './web-servers';

const LIMIT = 10 * 1024;

/** Sizes of the bodies the app read to their end. */
function ended(agent: Agent): number[] {
  return [...agent.output().matchAll(/upload ended after (\d+) bytes/g)].map((m) => Number(m[1]));
}

test('apache: a chunked upload past --max-body-size gets 413 and never reaches the app whole; a client\'s own limit header changes nothing', { skip: APACHE ? false : 'apache2 is not installed' }, async (t) => {
  const dir = sharedDir(t, 'ptest-uploadlimit-');
  const shipped = webApp(t, dir);
  const mounted = webApp(t, dir);
  const agent = await startAgent(t, dir, dir);
  const web = await startApacheWith(t, dir, [
    `DocumentRoot ${shipped}/public\n  <Directory ${shipped}/public>\n    Require all granted\n  </Directory>\n  Include ${printedSnippet('apache', agent.socket, dir, 'shipped', ['--max-body-size', '10k'])}`,
    `Include ${printedSnippet('apache', agent.socket, dir, 'mounted', ['--app-root', mounted, '--max-body-size', '10k'])}`,
  ]);
  const [plain, app] = web.ports;
  for (const [port, where] of [[plain, 'the shipped snippet'], [app, 'an app snippet']] as const) {
    // Under the limit: whole.
    const small = await upload(port, '/upload-seen', 8192, { chunked: true, slice: 4096 });
    assert.deepEqual([small.status, small.body], [200, '8192'], where);
    // Past it: 50 KB (Apache streams it on, chunked), 12 KB (Apache reads it
    // first and sends it with a Content-Length), 5 MB (the agent reads the
    // rest and drops it, so Apache reads the 413 instead of failing its writes).
    for (const bytes of [50_000, 12_000, 5 << 20]) {
      const big = await upload(port, '/upload-seen', bytes, { chunked: true, slice: 4096 });
      assert.equal(big.status, 413, `${where}, ${bytes} bytes: ${big.status} ${big.body.slice(0, 200)}`);
    }
    // A client's own header is replaced by the snippet's.
    const forged = await upload(port, '/upload-seen', 50_000, { chunked: true, slice: 4096, headers: { 'X-Passenger-Max-Body-Size': String(1 << 30) } });
    assert.equal(forged.status, 413, `${where}, forged limit: ${forged.status} ${forged.body.slice(0, 200)}`);
  }
  await eventually(() => ended(agent).length === 2, 15_000, 'the two small uploads in the app log');
  assert.deepEqual(ended(agent), [8192, 8192], 'no body past the limit ended in the app');
  assert.ok(!/AH01084|AH01097/.test(web.errorLog()), `Apache wrote no request body into a closed connection:\n${web.errorLog()}`);
});
