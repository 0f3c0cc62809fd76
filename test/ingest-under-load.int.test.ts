import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { samePayload } from '../src/app/same-payload.js';
import { catchUp, prefixCut, silentProgress, type Workspace } from '../src/app/workspace.js';
import { compareEvents, validateEvent, type FanEvent } from '../src/core/events.js';
import type { LogEntry } from '../src/store/store.js';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { rawEvents } from './arbitrary.js';
import { dumpState, tempDir, withStore } from './store-helpers.js';

describe('prefixCut', () => {
  it('ends a pass where the events applied are exactly the lowest seqs, at or past the count asked for (fast-check)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 0, maxLength: 60 }), fc.integer({ min: 1, max: 70 }), fc.integer({ min: 0, max: 5 }), (keys, maxEvents, gap) => {
        // Seqs with gaps (duplicates take none), in an order of their own (the events' ts order).
        let seq = 10;
        const seqs = keys.map((_, index) => (seq += 1 + (index % (gap + 1))));
        const order = seqs.map((seq, index) => ({ seq, key: keys[index] })).sort((a, b) => a.key - b.key || a.seq - b.seq);
        const inApplyOrder = order.map((item) => item.seq);
        const cut = prefixCut(inApplyOrder, maxEvents);
        expect(cut).toBeGreaterThanOrEqual(Math.min(maxEvents, inApplyOrder.length));
        const applied = inApplyOrder.slice(0, cut).sort((a, b) => a - b);
        const lowest = [...inApplyOrder].sort((a, b) => a - b).slice(0, cut);
        expect(applied).toEqual(lowest);
        // The first such point: no shorter count at or past maxEvents would do.
        for (let shorter = Math.max(maxEvents, 1); shorter < cut; shorter++) {
          const head = inApplyOrder.slice(0, shorter).sort((a, b) => a - b);
          expect(head).not.toEqual([...inApplyOrder].sort((a, b) => a - b).slice(0, shorter));
        }
      }),
      { numRuns: 300 },
    );
  });

  it('applies everything when no prefix of the log ends past the count', () => {
    expect(prefixCut([5, 4, 3, 2, 1], 2)).toBe(5);
    expect(prefixCut([1, 3, 2, 4, 5], 2)).toBe(3);
    expect(prefixCut([1, 2, 3], 10)).toBe(3);
  });
});

/** Appends events to the log without deriving anything (as the server's request thread does). */
async function appendOnly(workspace: Workspace, raws: readonly Record<string, unknown>[], requests: number): Promise<void> {
  const size = Math.max(1, Math.ceil(raws.length / requests));
  for (let from = 0; from < raws.length; from += size) {
    const entries: LogEntry[] = raws.slice(from, from + size).map((raw, index) => {
      const event = (validateEvent(raw) as { ok: true; event: FanEvent }).event;
      return { id: event.id, ts: event.ts, body: JSON.stringify(raw), source: 'test', line: index + 1, fan: event.fan };
    });
    await workspace.store.append(entries, samePayload);
  }
}

function derivedRows(dbPath: string): string[] {
  const db = new Database(dbPath, { readonly: true });
  try {
    return (db.prepare('SELECT type, fan, ts, event_id, data FROM derived ORDER BY rowid').all() as Record<string, unknown>[]).map((row) => JSON.stringify(row)).sort();
  } finally {
    db.close();
  }
}

describe('a catch-up in steps (the state worker under a backlog)', () => {
  it('writes, pass by pass, the state and derived events of one pass over the whole backlog, while more events arrive (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(rawEvents, fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 25 }), fc.boolean(), fc.boolean(), async (raws, requests, maxEvents, startFromState, keepWorld) => {
        // Mostly in time order, as clients send, but unordered within each request.
        const sorted = [...raws].sort((a, b) => compareEvents(a as { ts: number; id: string }, b as { ts: number; id: string }));
        const size = Math.max(1, Math.ceil(sorted.length / requests));
        const sent: Record<string, unknown>[] = [];
        for (let from = 0; from < sorted.length; from += size) sent.push(...sorted.slice(from, from + size).reverse());
        const head = startFromState ? sent.slice(0, size) : [];
        const rest = startFromState ? sent.slice(size) : sent;
        // Half the backlog is there at the first pass; the other half arrives after it.
        const early = rest.slice(0, Math.ceil(rest.length / 2));
        const late = rest.slice(early.length);
        const dir = tempDir();
        const whole = join(dir, 'whole.db');
        const steps = join(dir, 'steps.db');
        await withStore(whole, async (workspace) => {
          await appendOnly(workspace, head, 1);
          if (startFromState) await catchUp(workspace);
          await appendOnly(workspace, early, requests);
          await appendOnly(workspace, late, requests);
          const result = await catchUp(workspace);
          expect(result.partial ?? false).toBe(false);
        });
        let passes = 0;
        await withStore(steps, async (workspace) => {
          // As on the state worker: the world stays in memory between passes, and with it what a pass left for the next.
          workspace.keepWorld = keepWorld;
          await appendOnly(workspace, head, 1);
          if (startFromState) await catchUp(workspace);
          await appendOnly(workspace, early, requests);
          let lateSent = false;
          for (;;) {
            const result = await catchUp(workspace, silentProgress, { maxEvents });
            passes++;
            if (!lateSent) {
              await appendOnly(workspace, late, requests);
              lateSent = true;
              continue;
            }
            if (!result.partial) break;
            expect(result.applied).toBeGreaterThanOrEqual(maxEvents);
          }
        });
        if (rest.length >= 3 * size && maxEvents < size) expect(passes).toBeGreaterThan(2);
        expect(await dumpState(steps)).toEqual(await dumpState(whole));
        expect(derivedRows(steps)).toEqual(derivedRows(whole));
      }),
      { numRuns: 30 },
    );
  });
});

describe('a catch-up in steps over a generated community', () => {
  // 400 fans over five months: a few thousand events, sent as requests of 200 unordered within.
  const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 400, months: 5, seed: 'steps', attacks: 1, start: '2026-03-01T00:00:00+08:00' });
  const raws = community.lines.map((line) => JSON.parse(line) as Record<string, unknown>);
  const requests: Record<string, unknown>[] = [];
  for (let from = 0; from < raws.length; from += 200) requests.push(...raws.slice(from, from + 200).reverse());

  it.each([
    ['with the world kept between passes', true],
    ['reading the state back each pass', false],
  ])('equals one pass when more events arrive between its passes (%s)', async (_name, keepWorld) => {
    const dir = tempDir();
    const whole = join(dir, 'whole.db');
    const steps = join(dir, 'steps.db');
    const third = Math.floor(requests.length / 3);
    const parts = [requests.slice(0, third), requests.slice(third, 2 * third), requests.slice(2 * third)];
    await withStore(whole, async (workspace) => {
      for (const part of parts) await appendOnly(workspace, part, Math.ceil(part.length / 200));
      await catchUp(workspace);
    });
    let passes = 0;
    await withStore(steps, async (workspace) => {
      workspace.keepWorld = keepWorld;
      await appendOnly(workspace, parts[0], Math.ceil(parts[0].length / 200));
      for (const part of [...parts.slice(1), null]) {
        // Two passes, then the next part of the log arrives; after the last part, passes to the end.
        for (let i = 0; i < 2 || part === null; i++) {
          const result = await catchUp(workspace, silentProgress, { maxEvents: 150 });
          passes++;
          if (!result.partial) break;
          expect(result.applied).toBeGreaterThanOrEqual(150);
        }
        if (part) await appendOnly(workspace, part, Math.ceil(part.length / 200));
      }
    });
    expect(raws.length).toBeGreaterThan(2000);
    expect(passes).toBeGreaterThan(raws.length / 200 - 2);
    expect(await dumpState(steps)).toEqual(await dumpState(whole));
    expect(derivedRows(steps)).toEqual(derivedRows(whole));
  });
});

describe('an append while another connection holds the SQLite write lock', () => {
  it('waits without blocking the event loop, and lands once the lock is free', async () => {
    const dir = tempDir();
    const path = join(dir, 'locked.db');
    await withStore(path, async (workspace) => {
      await appendOnly(workspace, [{ id: 'first', type: 'follow', fan: 'a', ts: '2026-10-01T09:00:00+08:00' }], 1);
      const other = new Database(path);
      other.exec('BEGIN IMMEDIATE');
      const started = performance.now();
      let appended = false;
      const append = appendOnly(workspace, [{ id: 'second', type: 'like', fan: 'a', ts: '2026-10-01T09:01:00+08:00', props: { contentId: 'p1' } }], 1).then(() => (appended = true));
      // Timers keep firing on time while the append waits for the lock.
      const lateness: number[] = [];
      for (let i = 0; i < 10; i++) {
        const due = performance.now() + 5;
        await new Promise((resolve) => setTimeout(resolve, 5));
        lateness.push(performance.now() - due);
      }
      expect(appended).toBe(false);
      expect(Math.max(...lateness)).toBeLessThan(40);
      other.exec('COMMIT');
      other.close();
      await append;
      expect(performance.now() - started).toBeGreaterThanOrEqual(50);
      expect(await workspace.store.countEvents()).toBe(2);
    });
  });
});
