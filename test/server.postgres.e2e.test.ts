import { spawn, type ChildProcess } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { openWorkspace } from '../src/app/workspace.js';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { openPostgresDatabase } from '../src/store/postgres-store.js';
import { BIN, fanflow } from './cli-helpers.js';
import { freshSchema, postgresAvailable } from './postgres-helpers.js';
import { freePort, sendWithRetries, sleep, waitHealthy } from './server-helpers.js';
import { dumpState, dumpWorkspace, tempDir } from './store-helpers.js';

const postgres = await postgresAvailable();

describe.skipIf(!postgres)('two servers over one PostgreSQL', () => {
  const schema = freshSchema('serve');
  afterAll(() => schema.drop());

  it('a concurrent load with retries against both, one killed midway, stores every acknowledged event once; the state equals a clean import', async () => {
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 400, months: 4, seed: 'two-servers', start: '2026-03-01T00:00:00+08:00' });
    const events = community.lines.map((line) => JSON.parse(line) as { id: string });
    const created = fanflow(['--database-url', schema.url, 'keys', 'create', '--workspace', 'brand', '--scopes', 'ingest,read', '--json']);
    expect(created.code, created.stderr).toBe(0);
    const { key } = JSON.parse(created.stdout) as { key: string };
    const ports = [await freePort(), await freePort()];
    const start = (port: number): ChildProcess =>
      spawn(process.execPath, [BIN, 'serve', '--database-url', schema.url, '--port', String(port)], { stdio: 'ignore', env: { ...process.env, FANFLOW_LOG_LEVEL: 'warn' } });
    const servers = ports.map(start);
    await Promise.all(ports.map((port) => waitHealthy(`http://127.0.0.1:${port}`)));

    const batches: { id: string }[][] = [];
    for (let from = 0; from < events.length; from += 120) batches.push(events.slice(from, from + 120));
    const killer = async () => {
      await sleep(300);
      servers[0].kill('SIGKILL');
      await new Promise((resolve) => servers[0].once('exit', resolve));
      await sleep(200);
      servers[0] = start(ports[0]);
      await waitHealthy(`http://127.0.0.1:${ports[0]}`);
    };
    const [{ acknowledged, retries }] = await Promise.all([sendWithRetries(batches, () => ports, key, 4, (status) => expect(['accepted', 'duplicate']).toContain(status)), killer()]);
    expect(acknowledged.size).toBe(events.length);
    expect(retries).toBeGreaterThan(0);
    // Both servers answer the same fan the same way once caught up.
    const asOf = encodeURIComponent(new Date(community.end).toISOString());
    const views = await Promise.all(ports.map(async (port) => (await fetch(`http://127.0.0.1:${port}/v1/fans/u000003?asOf=${asOf}`, { headers: { Authorization: `Bearer ${key}` } })).json()));
    expect(views[0]).toEqual(views[1]);
    for (const server of servers) server.kill('SIGTERM');
    await Promise.all(servers.map((server) => new Promise((resolve) => (server.exitCode !== null ? resolve(null) : server.once('exit', resolve)))));

    const dir = tempDir();
    const file = join(dir, 'all.ndjson');
    writeFileSync(file, community.lines.join('\n') + '\n');
    const clean = join(dir, 'clean.db');
    expect(fanflow(['--db', clean, 'import', file, '--json']).code).toBe(0);
    const database = await openPostgresDatabase(schema.url);
    try {
      const served = await dumpWorkspace(await openWorkspace(await database.workspace('brand'), null));
      expect(served.events).toBe(events.length);
      expect(served).toEqual(await dumpState(clean));
    } finally {
      await database.close();
    }
  });
});
