/**
 * The server's state worker leaves the provisional snapshot (the figures at the next month start)
 * out of its state writes and stores it apart: once no pass has run for a second, or at once when
 * a report needs it. A report over the server equals the CLI's over a clean import either way.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { BIN, fanflow } from './cli-helpers.js';
import { freePort, sleep, waitHealthy } from './server-helpers.js';
import { tempDir } from './store-helpers.js';

const dir = tempDir('fanflow-state-worker-');
const servers: ChildProcess[] = [];

function storedProvisional(db: string): unknown {
  const sqlite = new Database(db, { readonly: true });
  try {
    return JSON.parse(sqlite.prepare("SELECT value FROM state WHERE key = 'provisionalSnapshot'").pluck().get() as string);
  } finally {
    sqlite.close();
  }
}

async function serve(db: string): Promise<{ base: string; key: string }> {
  const created = fanflow(['--db', db, 'keys', 'create', '--workspace', 'default', '--scopes', 'ingest,read', '--json']);
  expect(created.code).toBe(0);
  const port = await freePort();
  const server = spawn(process.execPath, [BIN, '--db', db, 'serve', '--port', String(port)], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
  servers.push(server);
  const base = `http://127.0.0.1:${port}`;
  await waitHealthy(base);
  return { base, key: (JSON.parse(created.stdout) as { key: string }).key };
}

async function post(base: string, key: string, lines: string[]): Promise<void> {
  for (let from = 0; from < lines.length; from += 500) {
    const response = await fetch(`${base}/v1/events`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' },
      body: `{"events":[${lines.slice(from, from + 500).join(',')}]}`,
    });
    expect(response.status).toBe(200);
  }
}

afterAll(async () => {
  for (const server of servers) {
    server.kill('SIGTERM');
    await new Promise((resolve) => (server.exitCode !== null ? resolve(null) : server.once('exit', resolve)));
  }
});

describe('the state worker and the provisional snapshot', () => {
  const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 300, months: 3, seed: 'provisional', start: '2026-08-01T00:00:00+08:00' });
  // The last event on the month's last day: October's report then needs November's first figures.
  const last = JSON.stringify({ id: 'last-like', type: 'like', fan: 'u000001', ts: Date.parse('2026-10-31T20:00:00+08:00'), props: { contentId: 'c-last' } });
  const lines = [...community.lines.filter((line) => (JSON.parse(line) as { ts: number }).ts < Date.parse('2026-10-31T20:00:00+08:00')), last];
  const asOf = '2026-11-05T00:00:00+08:00';

  it('stores it once ingest has been quiet for a second, and the report equals the CLI\'s over a clean import', async () => {
    const db = join(dir, 'idle.db');
    const { base, key } = await serve(db);
    await post(base, key, lines);
    // A read makes the worker catch up; its state writes leave the provisional snapshot out.
    expect((await fetch(`${base}/v1/fans/u000001`, { headers: { Authorization: `Bearer ${key}` } })).status).toBe(200);
    let stored = storedProvisional(db);
    for (let waited = 0; stored === null && waited < 10_000; waited += 250) {
      await sleep(250);
      stored = storedProvisional(db);
    }
    expect(stored).toMatchObject({ month: '2026-11' });
    const report = await fetch(`${base}/v1/reports/2026-10?asOf=${encodeURIComponent(asOf)}`, { headers: { Authorization: `Bearer ${key}` } });
    expect(report.status).toBe(200);
    const file = join(dir, 'events.ndjson');
    writeFileSync(file, lines.join('\n') + '\n');
    const clean = join(dir, 'clean.db');
    expect(fanflow(['--db', clean, 'import', file, '--json']).code).toBe(0);
    expect(await report.json()).toEqual(JSON.parse(fanflow(['--db', clean, '--as-of', asOf, 'report', '--month', '2026-10', '--json']).stdout));
  });

  it('stores it at once when a report needs it before then', async () => {
    const db = join(dir, 'asked.db');
    const { base, key } = await serve(db);
    await post(base, key, lines);
    const report = await fetch(`${base}/v1/reports/2026-10?asOf=${encodeURIComponent(asOf)}`, { headers: { Authorization: `Bearer ${key}` } });
    expect(report.status).toBe(200);
    expect(storedProvisional(db)).toMatchObject({ month: '2026-11' });
    const clean = join(dir, 'clean.db');
    expect(await report.json()).toEqual(JSON.parse(fanflow(['--db', clean, '--as-of', asOf, 'report', '--month', '2026-10', '--json']).stdout));
  });
});
