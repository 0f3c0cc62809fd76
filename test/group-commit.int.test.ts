/**
 * The server's group commit: one append at a time per workspace; the ingest requests that arrive
 * while one is written go together in the next (up to 10,000 events), and each request still gets
 * its own results in order. A failed append fails the requests of its group only.
 */
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { WorkspaceRuntime } from '../src/server/runtime.js';
import { openSqliteDatabase } from '../src/store/sqlite-store.js';
import type { Store } from '../src/store/store.js';
import { tempDir } from './store-helpers.js';

const like = (id: string, fan: string, minute: number) => ({ id, type: 'like', fan, ts: Date.parse('2026-10-01T10:00:00+08:00') + minute * 60_000, props: { contentId: 'c1' } });

describe('group commit', async () => {
  const database = await openSqliteDatabase(join(tempDir('fanflow-group-'), 'group.db'));
  afterAll(() => database.close());
  const store = await database.workspace('brand');
  // Appends wait for `release` while held; every call records how many events it was given.
  const calls: number[] = [];
  let hold: Promise<void> | null = null;
  let release = () => {};
  let failNext = false;
  const spied: Store = Object.create(store) as Store;
  spied.append = async (entries, samePayload) => {
    calls.push(entries.length);
    if (hold) await hold;
    if (failNext) {
      failNext = false;
      throw new Error('disk full');
    }
    return store.append(entries, samePayload);
  };
  const runtime = await WorkspaceRuntime.open(spied);
  const holdAppends = () => {
    hold = new Promise((resolve) => {
      release = () => {
        hold = null;
        resolve();
      };
    });
  };

  it('appends the requests that arrived meanwhile in one transaction, and answers each in order', async () => {
    calls.length = 0;
    holdAppends();
    const first = runtime.ingestGrouped([like('g1', 'u1', 1)], 'api:a');
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual([1]);
    // Arriving while the first append is written: one group, whatever turns they came in.
    const second = runtime.ingestGrouped([like('g2', 'u2', 2), { id: 'bad', type: 'like' }], 'api:b');
    await new Promise((resolve) => setImmediate(resolve));
    const third = runtime.ingestGrouped([like('g1', 'u1', 1), like('g3', 'u3', 3)], 'api:c');
    release();
    expect((await first).map((result) => result.status)).toEqual(['accepted']);
    expect((await second).map((result) => [result.id, result.status])).toEqual([
      ['g2', 'accepted'],
      ['bad', 'rejected'],
    ]);
    expect((await third).map((result) => [result.id, result.status])).toEqual([
      ['g1', 'duplicate'],
      ['g3', 'accepted'],
    ]);
    expect(calls).toEqual([1, 3]);
  });

  it('takes at most 10,000 events into one group; a larger request goes alone', async () => {
    calls.length = 0;
    holdAppends();
    const events = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => like(`${prefix}-${i}`, `f${i % 50}`, 10 + i));
    const first = runtime.ingestGrouped(events('a', 1), 'api:a');
    await new Promise((resolve) => setImmediate(resolve));
    const requests = [runtime.ingestGrouped(events('b', 6000), 'api:b'), runtime.ingestGrouped(events('c', 5000), 'api:c'), runtime.ingestGrouped(events('d', 12_000), 'api:d'), runtime.ingestGrouped(events('e', 10), 'api:e')];
    release();
    await first;
    for (const results of await Promise.all(requests)) expect(results.every((result) => result.status === 'accepted')).toBe(true);
    expect(calls).toEqual([1, 6000, 5000, 12_000, 10]);
  });

  it('fails the requests of a failed append only', async () => {
    calls.length = 0;
    holdAppends();
    failNext = true;
    const failed = runtime.ingestGrouped([like('h1', 'u1', 100)], 'api:a');
    await new Promise((resolve) => setImmediate(resolve));
    const later = runtime.ingestGrouped([like('h2', 'u2', 101)], 'api:b');
    release();
    await expect(failed).rejects.toThrow('disk full');
    expect((await later).map((result) => result.status)).toEqual(['accepted']);
    expect(calls).toEqual([1, 1]);
    expect(await store.readEvent('h1')).toBeNull();
  });
});
