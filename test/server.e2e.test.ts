import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { BIN, fanflow } from './cli-helpers.js';
import { sendWithRetries, waitHealthy, freePort, sleep } from './server-helpers.js';
import { dumpState, tempDir } from './store-helpers.js';

function startServer(db: string, port: number): ChildProcess {
  return spawn(process.execPath, [BIN, '--db', db, 'serve', '--port', String(port)], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
}

describe('the server under SIGKILL', () => {
  it('every event acknowledged with 2xx is stored exactly once, and the state equals a clean import', async () => {
    const dir = tempDir('fanflow-serve-kill-');
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 500, months: 4, seed: 'kill', start: '2026-03-01T00:00:00+08:00' });
    const events = community.lines.map((line) => JSON.parse(line) as { id: string });
    const db = join(dir, 'served.db');
    const created = fanflow(['--db', db, 'keys', 'create', '--workspace', 'default', '--scopes', 'ingest,read', '--json']);
    expect(created.code).toBe(0);
    const { key } = JSON.parse(created.stdout) as { key: string };
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    let server = startServer(db, port);
    await waitHealthy(base);

    const batches: { id: string }[][] = [];
    for (let from = 0; from < events.length; from += 150) batches.push(events.slice(from, from + 150));
    let kills = 0;
    let done = false;
    let results = 0;
    // Each kill once another fifth of the events is acknowledged, so that it falls while the
    // clients are sending, however fast this machine answers.
    const killer = async () => {
      while (!done && kills < 4) {
        while (!done && results < ((kills + 1) * events.length) / 5) await sleep(2);
        if (done) break;
        server.kill('SIGKILL');
        await new Promise((resolve) => server.once('exit', resolve));
        kills++;
        server = startServer(db, port);
        await waitHealthy(base);
      }
    };
    const [{ acknowledged, retries }] = await Promise.all([
      sendWithRetries(batches, () => [port], key, 3, (status) => {
        expect(['accepted', 'duplicate']).toContain(status);
        results++;
      }).finally(() => (done = true)),
      killer(),
    ]);
    // A read catches the state up with everything acknowledged.
    expect((await fetch(`${base}/v1/fans/u000001`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
    server.kill('SIGTERM');
    await new Promise((resolve) => server.once('exit', resolve));

    expect(kills).toBeGreaterThan(0);
    expect(retries).toBeGreaterThan(0);
    expect(acknowledged.size).toBe(events.length);
    const file = join(dir, 'all.ndjson');
    writeFileSync(file, community.lines.join('\n') + '\n');
    const clean = join(dir, 'clean.db');
    expect(fanflow(['--db', clean, 'import', file, '--json']).code).toBe(0);
    const served = await dumpState(db);
    expect(served.events).toBe(events.length);
    expect(served).toEqual(await dumpState(clean));
  });
});
