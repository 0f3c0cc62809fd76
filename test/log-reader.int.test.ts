import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { decodeEvents, encodeEvents } from '../src/app/event-columns.js';
import { importFile } from '../src/app/import.js';
import { readLogInOrder } from '../src/app/log-reader.js';
import { runReplay } from '../src/app/replay.js';
import { silentProgress } from '../src/app/workspace.js';
import { validateEvent, type FanEvent } from '../src/core/events.js';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import type { Store } from '../src/store/store.js';
import { rawEvents } from './arbitrary.js';
import { dumpState, tempDir, withStore } from './store-helpers.js';

const validated = (raw: unknown[]): FanEvent[] =>
  raw.map((event) => {
    const result = validateEvent(event);
    if (!result.ok) throw new Error(JSON.stringify(result.issues));
    return result.event;
  });

// Ids a line-based packing would break: separators, astral characters, long and empty-looking ones.
const oddIds = fc.constantFrom('a\nb', 'Ω-粉丝-😀', 'x'.repeat(70), ' ', 'e,"1"', '\u2028');

describe('events packed as columns', () => {
  it('unpack to the events validateEvent gives, field for field', () => {
    fc.assert(
      fc.property(rawEvents, fc.array(oddIds, { maxLength: 4 }), (raw, odd) => {
        const events = validated([
          ...raw,
          ...odd.map((id, index) => ({ id, type: 'like', fan: `${id}-${index}`, ts: 1_790_000_000_000 + index, channel: 'weibo', props: { contentId: id } })),
        ]);
        const seqs = events.map((_, index) => index * 3 + 1);
        const columns = encodeEvents(events, seqs);
        const fanIds = new Map<string, string>();
        expect(decodeEvents(columns, fanIds)).toEqual(events);
        expect([...columns.seqs]).toEqual(seqs);
        // One string per fan, whatever the number of its events.
        expect(fanIds.size).toBe(new Set(events.map((event) => event.fan).filter((fan) => fan !== null)).size);
      }),
      { numRuns: 60 },
    );
  });

  it('an empty batch', () => {
    expect(decodeEvents(encodeEvents([]), new Map())).toEqual([]);
  });
});

describe('reading the log in apply order on a worker thread', () => {
  const saved = process.env.FANFLOW_LOG_READER_WORKER;
  afterEach(() => {
    if (saved === undefined) delete process.env.FANFLOW_LOG_READER_WORKER;
    else process.env.FANFLOW_LOG_READER_WORKER = saved;
  });

  // Enough events for several batches of the worker and its limit on batches sent ahead.
  const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 3500, months: 12, seed: 'log-reader' });

  async function imported(): Promise<string> {
    const dir = tempDir();
    const db = join(dir, 'log.db');
    const file = join(dir, 'events.ndjson');
    // Shuffled by halves: the log's order (seq) is not the apply order (ts, id).
    const half = Math.floor(community.lines.length / 2);
    writeFileSync(file, [...community.lines.slice(half), ...community.lines.slice(0, half)].join('\n') + '\n');
    await withStore(db, (workspace) => importFile(workspace, file, { rejectsPath: null }));
    return db;
  }

  async function readAll(store: Store, options: { until?: number; upToSeq: number; onWorker: boolean }) {
    const events: FanEvent[] = [];
    const seqs: number[] = [];
    let batches = 0;
    for await (const batch of readLogInOrder(store, options)) {
      events.push(...batch.events);
      for (let i = 0; i < batch.events.length; i++) seqs.push(batch.seqs[i]);
      batches++;
    }
    return { events, seqs, batches };
  }

  it('reads what the store reads, in the same order, with the same bounds', async () => {
    expect(community.lines.length).toBeGreaterThan(5 * 8192);
    const db = await imported();
    await withStore(db, async ({ store }) => {
      const maxSeq = await store.maxSeq();
      const middle = community.start + (community.end - community.start) / 2;
      for (const bounds of [{ upToSeq: maxSeq }, { upToSeq: Math.floor(maxSeq / 3) }, { upToSeq: maxSeq, until: middle }]) {
        const here = await readAll(store, { ...bounds, onWorker: false });
        const there = await readAll(store, { ...bounds, onWorker: true });
        // The whole log: more batches than the worker sends ahead of being asked.
        if (bounds.upToSeq === maxSeq && bounds.until === undefined) expect(there.batches).toBeGreaterThan(4);
        expect(there.events.length).toBe(here.events.length);
        expect(there.seqs).toEqual(here.seqs);
        expect(there.events).toEqual(here.events);
        expect(Math.max(...there.seqs)).toBeLessThanOrEqual(bounds.upToSeq);
        if (bounds.until !== undefined) expect(Math.max(...there.events.map((event) => event.ts))).toBeLessThanOrEqual(bounds.until);
      }
    });
  });

  it('a replay reading on the worker stores the state a replay reading here stores', async () => {
    const db = await imported();
    process.env.FANFLOW_LOG_READER_WORKER = '1';
    const onWorker = await withStore(db, (workspace) => runReplay(workspace, silentProgress));
    const afterWorker = await dumpState(db);
    process.env.FANFLOW_LOG_READER_WORKER = '0';
    const here = await withStore(db, (workspace) => runReplay(workspace, silentProgress));
    expect(onWorker).toMatchObject({ verified: true, ledgerOk: true, events: community.lines.length });
    expect(here).toMatchObject({ verified: true, ledgerOk: true, events: community.lines.length });
    expect(await dumpState(db)).toEqual(afterWorker);
  });

  it('a stored event that no longer validates fails the read with its seq, on the worker as here', async () => {
    const db = await imported();
    const raw = new Database(db);
    raw.prepare("UPDATE events SET body = '{\"id\":\"broken\"}' WHERE seq = 20000").run();
    raw.close();
    await withStore(db, async ({ store }) => {
      const upToSeq = await store.maxSeq();
      await expect(readAll(store, { upToSeq, onWorker: false })).rejects.toThrow(/stored event 20000 no longer validates/);
      await expect(readAll(store, { upToSeq, onWorker: true })).rejects.toThrow(/reading the log of .*stored event 20000 no longer validates/);
    });
  });
});
