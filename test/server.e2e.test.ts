import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { BIN, fanflow } from './cli-helpers.js';
import { dumpState, tempDir } from './store-helpers.js';

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

function startServer(db: string, port: number): ChildProcess {
  return spawn(process.execPath, [BIN, '--db', db, 'serve', '--port', String(port)], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
}

async function waitHealthy(base: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server at ${base} did not become healthy`);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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
    const acknowledged = new Set<string>();
    let retries = 0;
    let next = 0;
    // Three clients take batches in turn and retry each until it is acknowledged.
    const client = async () => {
      for (let index = next++; index < batches.length; index = next++) {
        for (;;) {
          try {
            const response = await fetch(`${base}/v1/events`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ events: batches[index] }) });
            if (response.status === 200) {
              const { results } = (await response.json()) as { results: { id: string; status: string }[] };
              for (const result of results) {
                expect(['accepted', 'duplicate']).toContain(result.status);
                acknowledged.add(result.id);
              }
              break;
            }
            expect(response.status).toBeGreaterThanOrEqual(500);
          } catch {
            // connection refused or reset: the server is down; retry
          }
          retries++;
          await sleep(30);
        }
      }
    };
    let kills = 0;
    const killer = async () => {
      while (next < batches.length && kills < 4) {
        await sleep(250 + 150 * kills);
        server.kill('SIGKILL');
        await new Promise((resolve) => server.once('exit', resolve));
        kills++;
        server = startServer(db, port);
        await waitHealthy(base);
      }
    };
    await Promise.all([client(), client(), client(), killer()]);
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
