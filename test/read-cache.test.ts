/**
 * The SQLite connection's read cache (store/read-cache.ts): a value read again is the stored one
 * whether it was changed through the same connection or another (another process, the state
 * worker), with no read in between that would have refreshed it.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { authenticate, createKey } from '../src/app/keys.js';
import { queryFan } from '../src/app/queries.js';
import { samePayload } from '../src/app/same-payload.js';
import { catchUp, openWorkspace } from '../src/app/workspace.js';
import { expireReadCaches } from '../src/store/read-cache.js';
import { openSqliteDatabase, type SqliteDatabase } from '../src/store/sqlite-store.js';
import type { LogEntry } from '../src/store/store.js';
import { tempDir } from './store-helpers.js';

const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

/** Appends events to the file from another process (as a CLI import while a server runs would). */
function appendElsewhere(path: string, entries: LogEntry[]): void {
  const store = fileURLToPath(new URL('../dist/store/sqlite-store.js', import.meta.url));
  const script = `const { openSqliteDatabase } = await import(${JSON.stringify(store)});
    const database = await openSqliteDatabase(${JSON.stringify(path)});
    const ws = await database.workspace('w');
    await ws.append(${JSON.stringify(entries)}, () => false);
    await database.close();`;
  const result = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
}

const entry = (id: string, ts: number): LogEntry => ({ id, ts, body: JSON.stringify({ id, ts }), source: 'test', line: 1, fan: null });
const open: SqliteDatabase[] = [];

async function twoConnections(path = join(tempDir(), 'cache.db')): Promise<[SqliteDatabase, SqliteDatabase]> {
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

  it('sees a commit of another process at the next turn of the event loop, or at once when told', async () => {
    const path = join(tempDir(), 'cache.db');
    const [a] = await twoConnections(path);
    const mine = await a.workspace('w');
    expect(await mine.maxSeq()).toBe(0);
    // A commit of another process in the turn that read the file's version is seen from the next turn on.
    appendElsewhere(path, [entry('e1', 1)]);
    await nextTurn();
    expect(await mine.maxSeq()).toBe(1);
    appendElsewhere(path, [entry('e2', 2)]);
    expireReadCaches();
    expect(await mine.maxSeq()).toBe(2);
  });

  it('answers a fan read from one state even when the position it was given is older than the fan it reads', async () => {
    const path = join(tempDir(), 'cache.db');
    const [a, b] = await twoConnections(path);
    const fanEvent = (id: string, ts: number, type = 'like') => {
      const event = { id, type, fan: 'f1', ts, props: type === 'follow' ? {} : { contentId: 'c1' } };
      return { id, ts, body: JSON.stringify(event), source: 'test', line: 1, fan: 'f1' };
    };
    const day = 86_400_000;
    const start = Date.parse('2026-10-05T10:00:00+08:00');
    const mine = await openWorkspace(await a.workspace('w'), null);
    await mine.store.append([fanEvent('e1', start, 'follow'), fanEvent('e2', start + day)], samePayload);
    await catchUp(mine);
    const before = await mine.store.loadStateMeta();
    // Another connection appends a later like and writes the state past it.
    const theirs = await openWorkspace(await b.workspace('w'), null);
    await theirs.store.append([fanEvent('e3', start + 3 * day)], samePayload);
    await catchUp(theirs);
    // As of a day before that like, given the older position: the fan as it was then, not the newer row.
    const asOf = start + 2 * day;
    const given = await queryFan(mine, 'f1', asOf, before ?? undefined);
    const fresh = await queryFan(await openWorkspace(await a.workspace('w'), null), 'f1', asOf);
    expect(given).toEqual(fresh);
    expect(given.windows.interactions90d).toBe(1);
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
