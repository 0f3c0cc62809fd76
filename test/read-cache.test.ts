/**
 * The SQLite connection's read cache (store/read-cache.ts): a value read again is the stored one
 * whether it was changed through the same connection or another (another process, the state
 * worker), with no read in between that would have refreshed it.
 */
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticate, createKey } from '../src/app/keys.js';
import { samePayload } from '../src/app/same-payload.js';
import { openSqliteDatabase, type SqliteDatabase } from '../src/store/sqlite-store.js';
import type { LogEntry } from '../src/store/store.js';
import { tempDir } from './store-helpers.js';

const entry = (id: string, ts: number): LogEntry => ({ id, ts, body: JSON.stringify({ id, ts }), source: 'test', line: 1, fan: null });
const open: SqliteDatabase[] = [];

async function twoConnections(): Promise<[SqliteDatabase, SqliteDatabase]> {
  const path = join(tempDir(), 'cache.db');
  const first = await openSqliteDatabase(path);
  const second = await openSqliteDatabase(path);
  open.push(first, second);
  return [first, second];
}

afterEach(async () => {
  for (const database of open.splice(0)) await database.close();
});

describe('SQLite read cache', () => {
  it('sees appends and state writes of another connection and of its own', async () => {
    const [a, b] = await twoConnections();
    const mine = await a.workspace('w');
    const theirs = await b.workspace('w');
    expect(await mine.maxSeq()).toBe(0);
    expect(await mine.maxSeq()).toBe(0);
    await theirs.append([entry('e1', 1), entry('e2', 2)], samePayload);
    expect(await mine.maxSeq()).toBe(2);
    await mine.append([entry('e3', 3)], samePayload);
    expect(await mine.maxSeq()).toBe(3);
    expect(await theirs.maxSeq()).toBe(3);

    expect(await mine.loadStateMeta()).toBeNull();
    const write = { programVersion: 'p@1', appliedSeq: 3, rebuild: true, fans: [], postings: [], postingBlocks: [], derived: [], snapshots: [], provisional: null, world: '{"clock":3}', loyalty: { total: 0, unranked: 0, sorted: new Float64Array(0) } };
    await theirs.saveState(write);
    expect(await mine.loadStateMeta()).toEqual({ world: '{"clock":3}', programVersion: 'p@1', appliedSeq: 3 });
    await mine.saveState({ ...write, appliedSeq: 3, world: '{"clock":4}' });
    expect((await mine.loadStateMeta())?.world).toBe('{"clock":4}');
    expect((await theirs.loadStateMeta())?.world).toBe('{"clock":4}');
  });

  it('sees a program activated elsewhere', async () => {
    const [a, b] = await twoConnections();
    const mine = await a.workspace('w');
    const theirs = await b.workspace('w');
    expect(await mine.activeProgramVersion()).toBeNull();
    await theirs.activateProgram('p@1', 'name: p', '{}', '2026-01-01T00:00:00Z');
    expect(await mine.activeProgramVersion()).toBe('p@1');
    await mine.activateProgram('p@2', 'name: p', '{}', '2026-01-02T00:00:00Z');
    expect(await mine.activeProgramVersion()).toBe('p@2');
  });

  it('stops accepting a key revoked by another connection at once', async () => {
    const [server, cli] = await twoConnections();
    const { key, id } = await createKey(cli, 'w', ['read'], null, new Date());
    expect((await authenticate(server, key))?.id).toBe(id);
    expect((await authenticate(server, key))?.id).toBe(id);
    expect(await cli.revokeKey(id, new Date().toISOString())).toBe(true);
    expect(await authenticate(server, key)).toBeNull();
  });

  it('gives every caller the same frozen object, so none can change what the next one reads', async () => {
    const [a] = await twoConnections();
    const { key } = await createKey(a, 'w', ['read'], null, new Date());
    const first = await authenticate(a, key);
    expect(Object.isFrozen(first)).toBe(true);
    expect(() => (first as { scopes: string[] }).scopes.push('admin')).toThrow();
    expect((await authenticate(a, key))?.scopes).toEqual(['read']);
  });
});
