/**
 * The store contract: the same cases against the SQLite adapter and the PostgreSQL adapter (on the
 * real server; see postgres-helpers.ts for when that part skips).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importFile } from '../src/app/import.js';
import { samePayload } from '../src/app/same-payload.js';
import { openWorkspace } from '../src/app/workspace.js';
import { DEFAULT_GENERATE, generateCommunity } from '../src/demo/generate.js';
import { openPostgresDatabase } from '../src/store/postgres-store.js';
import { openSqliteDatabase } from '../src/store/sqlite-store.js';
import type { Database, FanRow, LogEntry, StateWrite, Store } from '../src/store/store.js';
import { freshSchema, postgresAvailable } from './postgres-helpers.js';
import { dumpState, dumpWorkspace, tempDir } from './store-helpers.js';

const entry = (id: string, ts: number, body: Record<string, unknown> = {}): LogEntry => ({ id, ts, body: JSON.stringify({ id, ts, ...body }), source: 'test', line: 1, fan: typeof body.fan === 'string' ? body.fan : null });

async function collect<T>(batches: AsyncIterable<readonly T[]>): Promise<T[]> {
  const all: T[] = [];
  for await (const batch of batches) all.push(...batch);
  return all;
}

const FANS: FanRow[] = [
    { id: 'f-b', no: 1, level: 2, layer: 'G', loyaltyLog: 1.5, lastActivity: 500, recency: 100, backboneGap: 3, interactionsInWindow: 4, referrer: 'f-a', referrals: 0, state: '["f-b"]' },
    { id: 'f-a', no: 0, level: 4, layer: 'C', loyaltyLog: 2.5, lastActivity: 900, recency: 50, backboneGap: 0, interactionsInWindow: 9, referrer: null, referrals: 2, state: '["f-a"]' },
    { id: 'f-c', no: 2, level: 1, layer: 'O', loyaltyLog: null, lastActivity: null, recency: 300, backboneGap: 7, interactionsInWindow: 0, referrer: 'f-b', referrals: 1, state: '["f-c"]' },
];

const stateWrite = (overrides: Partial<StateWrite> = {}): StateWrite => ({
  programVersion: 'p@1',
  appliedSeq: 3,
  rebuild: true,
  fans: FANS,
  postings: [
    { seq: 1, eventId: 'e1', ts: 10, asset: 'points', source: 'program:points:issued', target: 'fan:f-a', amount: 5, rule: 'r1', fan: 'f-a', programVersion: 'p@1' },
    { seq: 2, eventId: 'e2', ts: 11, asset: 'points', source: 'program:points:issued', target: 'fan:f-b', amount: 3, rule: 'r2', fan: 'f-b', programVersion: 'p@1' },
    { seq: 3, eventId: 'e2', ts: 11, asset: 'cash', source: 'program:cash:issued', target: 'fan:f-b:cash:pending', amount: 200, rule: 'referral:reward', fan: 'f-b', programVersion: 'p@1' },
    { seq: 4, eventId: 'cash:1', ts: 12, asset: 'cash', source: 'fan:f-b:cash:pending', target: 'fan:f-b:cash:available', amount: 200, rule: 'referral:available', fan: 'f-b', programVersion: 'p@1' },
    { seq: 5, eventId: 'e3', ts: 13, asset: 'cash', source: 'fan:f-b:cash:available', target: 'program:cash:paid', amount: 150, rule: 'payout', fan: 'f-b', programVersion: 'p@1' },
  ] as StateWrite['postings'],
  postingBlocks: [],
  derived: [],
  snapshots: [{ month: '2026-10', data: '{"m":1}' }],
  provisional: { month: '2026-11', data: '{"p":1}' },
  world: '{"engineVersion":2,"clock":1000}',
  ...overrides,
});

function contract(kind: string, open: () => Promise<{ database: Database; cleanup: () => Promise<void> }>, enabled = true) {
  // Disabled only off CI, with the reason printed by postgresAvailable.
  describe.skipIf(!enabled)(`store contract: ${kind}`, () => {
    let database: Database;
    let store: Store;
    let cleanup: () => Promise<void> = async () => {};

    it('opens, creating the workspace', async () => {
      ({ database, cleanup } = await open());
      store = await database.workspace('contract');
      expect(store.workspace).toBe('contract');
      expect(await store.maxSeq()).toBe(0);
      expect(await store.loadStateMeta()).toBeNull();
    });

    it('appends with dense seqs; same payload is a duplicate, another a conflict', async () => {
      const statuses = await store.append([entry('b', 2), entry('a', 1), entry('c', 1, { x: 1 }), entry('a', 1)], samePayload);
      expect(statuses).toEqual(['accepted', 'accepted', 'accepted', 'duplicate']);
      // Key order and number spelling do not make another payload; a changed value does.
      const reordered: LogEntry = { id: 'c', ts: 1, body: '{"x":1.0,"ts":1,"id":"c"}', source: null, line: null, fan: null };
      expect(await store.append([reordered, entry('c', 1, { x: 2 }), entry('d', 3)], samePayload)).toEqual(['duplicate', 'conflict', 'accepted']);
      expect(await store.maxSeq()).toBe(4);
      expect(await store.countEvents()).toBe(4);
      expect(JSON.parse((await store.readEvent('c')) as string)).toEqual({ id: 'c', ts: 1, x: 1 });
      expect(await store.readEvent('nope')).toBeNull();
      expect((await collect(store.readAfter(0))).map((row) => [row.seq, JSON.parse(row.body).id])).toEqual([[1, 'b'], [2, 'a'], [3, 'c'], [4, 'd']]);
      // Several new events after skipped ones move down, in order, to dense seqs.
      const moved = await database.workspace('moves');
      await moved.append([entry('m1', 1), entry('m2', 1)], samePayload);
      const mixed = [entry('m1', 1), entry('n1', 2), entry('m2', 1, { x: 1 }), entry('n2', 2), entry('n1', 2), entry('n3', 2)];
      expect(await moved.append(mixed, samePayload)).toEqual(['duplicate', 'accepted', 'conflict', 'accepted', 'duplicate', 'accepted']);
      expect((await collect(moved.readAfter(0))).map((row) => [row.seq, JSON.parse(row.body).id])).toEqual([[1, 'm1'], [2, 'm2'], [3, 'n1'], [4, 'n2'], [5, 'n3']]);
      expect(await moved.maxSeq()).toBe(5);
    });

    it('keeps event bodies and fan states byte for byte: quotes, backslashes, escapes, non-ASCII', async () => {
      const other = await database.workspace('texts');
      const tricky = ['say "hi"', 'back\\slash \\" \\\\', 'tab\tnew\nline', '\u0000 \u001f \ud800 lone', '粉丝 ファン 😀', '{"a":[1,"]}"]}', ''];
      const entries = tricky.map((text, i) => entry(`t${i}`, i, { text, fan: `f${i}` }));
      expect(await other.append(entries, samePayload)).toEqual(entries.map(() => 'accepted'));
      for (const [i, stored] of entries.entries()) {
        expect(await other.readEvent(`t${i}`)).toBe(stored.body);
        expect(JSON.parse((await other.readEvent(`t${i}`)) as string).text).toBe(tricky[i]);
      }
      expect((await collect(other.readAfter(0))).map((row) => row.body)).toEqual(entries.map((stored) => stored.body));
      const fans = tricky.map((text, i) => ({ ...FANS[0], id: `f${i}`, no: i + 1, state: JSON.stringify([text, i]) }));
      await other.exclusive((tx) => tx.saveState(stateWrite({ fans, appliedSeq: entries.length })));
      for (const fan of fans) expect((await other.loadFan(fan.id))?.state).toBe(fan.state);
    });

    it('reads after a position in seq order, and the whole log in (ts, id) code point order', async () => {
      expect((await collect(store.readAfter(1))).map((row) => row.seq)).toEqual([2, 3, 4]);
      await store.append([entry('é', 1), entry('Z', 1), entry('a2', 1)], samePayload);
      const ordered = (await collect(store.readOrdered())).map((row) => JSON.parse(row.body).id);
      expect(ordered).toEqual(['Z', 'a', 'a2', 'c', 'é', 'b', 'd']);
      expect((await collect(store.readOrdered(1))).length).toBe(5);
    });

    it('concurrent appends store each id once, with dense seqs', async () => {
      const other = await database.workspace('concurrent');
      const ids = Array.from({ length: 300 }, (_, i) => `k${i}`);
      const results = await Promise.all(
        [0, 1, 2, 3].map((offset) => other.append(ids.slice(offset * 50, offset * 50 + 150).map((id) => entry(id, 5)), samePayload)),
      );
      const accepted = results.flat().filter((status) => status === 'accepted').length;
      expect(accepted).toBe(new Set(ids.slice(0, 300)).size);
      expect(await other.countEvents()).toBe(300);
      expect((await collect(other.readAfter(0))).map((row) => row.seq)).toEqual(Array.from({ length: 300 }, (_, i) => i + 1));
    });

    it('replaces the provisional snapshot alone, and a state write replaces it again', async () => {
      const other = await database.workspace('provisional');
      await other.exclusive((tx) => tx.saveState(stateWrite({ provisional: null })));
      expect(await other.loadProvisional()).toBeNull();
      await other.exclusive((tx) => tx.saveProvisional({ month: '2026-12', data: '{"p":2}' }));
      expect(await other.loadProvisional()).toEqual({ month: '2026-12', data: '{"p":2}' });
      expect((await other.loadStateMeta())?.appliedSeq).toBe(3);
      await other.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, postings: [], provisional: null })));
      expect(await other.loadProvisional()).toBeNull();
    });

    it('keeps a time zone\'s offsets with a state write, per zone, until a write replaces them', async () => {
      const other = await database.workspace('zones');
      expect(await other.zoneOffsets('Asia/Shanghai')).toBeNull();
      await other.exclusive((tx) => tx.saveState(stateWrite({ zoneOffsets: { zone: 'Asia/Shanghai', text: '{"a":1}' } })));
      await other.exclusive((tx) => tx.saveState(stateWrite({ zoneOffsets: { zone: 'Europe/London', text: '{"b":1}' } })));
      // A write without offsets leaves the kept ones as they are.
      await other.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, postings: [] })));
      expect(await other.zoneOffsets('Asia/Shanghai')).toBe('{"a":1}');
      expect(await other.zoneOffsets('Europe/London')).toBe('{"b":1}');
      await other.exclusive((tx) => tx.saveState(stateWrite({ zoneOffsets: { zone: 'Asia/Shanghai', text: '{"a":2}' } })));
      expect(await other.zoneOffsets('Asia/Shanghai')).toBe('{"a":2}');
      // Another workspace's are not this one's.
      expect(await store.zoneOffsets('Asia/Shanghai')).toBeNull();
    });

    it('saves and loads the derived state, with the fan queries', async () => {
      await store.exclusive((tx) => tx.saveState(stateWrite()));
      expect(await store.loadStateMeta()).toEqual({ programVersion: 'p@1', appliedSeq: 3, world: '{"engineVersion":2,"clock":1000}' });
      expect(await store.loadProvisional()).toEqual({ month: '2026-11', data: '{"p":1}' });
      const loaded = await store.loadState();
      expect(loaded?.fans.map((fan) => fan.id)).toEqual(['f-a', 'f-b', 'f-c']);
      expect(loaded?.snapshots).toEqual([{ month: '2026-10', data: '{"m":1}' }]);
      expect(await store.loadFan('f-b')).toEqual({ state: '["f-b"]', programVersion: 'p@1', appliedSeq: 3 });
      expect(await store.loadFan('nobody')).toBeNull();
      expect((await collect(store.iterateFans())).map((fan) => fan.id)).toEqual(['f-a', 'f-b', 'f-c']);
      expect((await store.pageFans({ afterNo: 0, limit: 5 })).map((row) => row.no)).toEqual([1, 2]);
      expect(await store.countFans()).toBe(3);
      expect((await collect(store.findFanStates({ layers: ['C', 'B'], activeAfter: 100, level: 2 }))).sort()).toEqual(['["f-a"]', '["f-b"]']);
      expect((await collect(store.iterateByBackboneGap('G', 0))).map((row) => row.state)).toEqual(['["f-b"]']);
      expect(await store.findInactiveRecent(600, 10)).toEqual(['["f-c"]', '["f-b"]']);
      expect(await store.loyaltyRank(2)).toEqual({ below: 2, total: 3 });
      // Ordered pages: fans without a value last in both directions; a cursor resumes after its row.
      const order = async (sort: 'level' | 'loyalty', descending: boolean, limit: number) => {
        const seen: [number, number | null][] = [];
        let after: { value: number | null; no: number } | null = null;
        for (;;) {
          const rows = await store.pageFansBy({ sort, descending, after, limit });
          if (rows.length === 0) return seen;
          for (const row of rows) seen.push([row.no, row.value]);
          after = { value: rows[rows.length - 1].value, no: rows[rows.length - 1].no };
        }
      };
      expect(await order('level', true, 1)).toEqual([[0, 4], [1, 2], [2, 1]]);
      expect(await order('level', false, 2)).toEqual([[2, 1], [1, 2], [0, 4]]);
      expect(await order('loyalty', true, 1)).toEqual([[0, 2.5], [1, 1.5], [2, null]]);
      expect(await order('loyalty', false, 5)).toEqual([[1, 1.5], [0, 2.5], [2, null]]);
      expect((await store.referralEdges()).sort((x, y) => (x.fan < y.fan ? -1 : 1))).toEqual([{ fan: 'f-b', referrer: 'f-a' }, { fan: 'f-c', referrer: 'f-b' }]);
      expect(await store.referrerStates()).toEqual(['["f-a"]', '["f-c"]']);
      expect(await store.referrerStates(1)).toEqual(['["f-a"]']);
      expect(await collect(store.readPostings())).toEqual(stateWrite().postings);
      // An incremental write upserts the fans it names and appends postings.
      await store.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 4, fans: [{ ...FANS[0], level: 3, state: '["f-b2"]' }], postings: [], snapshots: [] })));
      expect(await store.loadFan('f-b')).toEqual({ state: '["f-b2"]', programVersion: 'p@1', appliedSeq: 4 });
      expect((await collect(store.readPostings())).length).toBe(5);
      // A consistent read sees the state as of its first read, not a write committed during it.
      const seen = await store.readConsistently(async (reader) => {
        const before = await reader.loadStateMeta();
        await store.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 5, fans: [{ ...FANS[0], level: 3, state: '["f-b3"]' }], postings: [], snapshots: [] })));
        return { before, after: await reader.loadStateMeta(), fans: (await reader.pageFans({ afterNo: -1, limit: 5 })).map((row) => row.state), count: await reader.countFans() };
      });
      expect(seen.before?.appliedSeq).toBe(4);
      expect(seen.after?.appliedSeq).toBe(4);
      expect(seen.fans).toEqual(['["f-a"]', '["f-b2"]', '["f-c"]']);
      expect(seen.count).toBe(3);
      expect((await store.loadStateMeta())?.appliedSeq).toBe(5);
      expect(await store.loadFan('f-b')).toEqual({ state: '["f-b3"]', programVersion: 'p@1', appliedSeq: 5 });
      // Incremental writes that move one column or another: every query by a column sees the new value.
      const moved: FanRow[] = [
        { ...FANS[2], loyaltyLog: 3, referrer: null, state: '["f-c2"]' },
        { ...FANS[1], layer: 'B', lastActivity: 50, state: '["f-a"]' },
      ];
      await store.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 6, fans: moved, postings: [], snapshots: [] })));
      expect(await order('loyalty', true, 5)).toEqual([[2, 3], [0, 2.5], [1, 1.5]]);
      expect(await order('level', true, 5)).toEqual([[0, 4], [1, 3], [2, 1]]);
      expect(await store.referralEdges()).toEqual([{ fan: 'f-b', referrer: 'f-a' }]);
      expect((await collect(store.findFanStates({ layers: ['B'], activeAfter: 0, level: 9 }))).sort()).toEqual(['["f-a"]']);
      expect(await store.findInactiveRecent(100, 10)).toEqual(['["f-c2"]', '["f-a"]']);
      expect(await store.loyaltyRank(2)).toEqual({ below: 1, total: 3 });
      // A row written again as stored, and one under another program, read back as written.
      await store.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 7, fans: moved.slice(1), postings: [], snapshots: [] })));
      await store.exclusive((tx) => tx.saveState(stateWrite({ programVersion: 'p@2', rebuild: false, appliedSeq: 8, fans: moved.slice(0, 1), postings: [], snapshots: [] })));
      expect(await store.loadFan('f-a')).toEqual({ state: '["f-a"]', programVersion: 'p@1', appliedSeq: 8 });
      expect(await store.loadFan('f-c')).toEqual({ state: '["f-c2"]', programVersion: 'p@2', appliedSeq: 8 });
    });

    it('a rebuild leaves exactly its fans, each with the columns it gives, whatever was stored', async () => {
      const rebuilt = await database.workspace('rebuilds');
      await rebuilt.append([entry('r1', 1, { fan: 'f-a' }), entry('r2', 2, { fan: 'f-b' }), entry('r3', 3, { fan: 'f-c' })], samePayload);
      await rebuilt.exclusive((tx) => tx.saveState(stateWrite()));
      // The same fans again (a replay that verifies), then fewer and changed (one ending earlier).
      await rebuilt.exclusive((tx) => tx.saveState(stateWrite()));
      expect((await collect(rebuilt.iterateFans())).map((fan) => [fan.id, fan.state])).toEqual([
        ['f-a', '["f-a"]'],
        ['f-b', '["f-b"]'],
        ['f-c', '["f-c"]'],
      ]);
      const fewer: FanRow[] = [
        { ...FANS[1], level: 1, loyaltyLog: 0.5, layer: 'O', referrals: 0, state: '["f-a2"]' },
        { ...FANS[0], referrer: null, state: '["f-b"]' },
      ];
      await rebuilt.exclusive((tx) => tx.saveState(stateWrite({ programVersion: 'p@2', appliedSeq: 2, fans: fewer })));
      expect(await rebuilt.loadFan('f-c')).toBeNull();
      expect(await rebuilt.countFans()).toBe(2);
      expect(await rebuilt.loadFan('f-a')).toEqual({ state: '["f-a2"]', programVersion: 'p@2', appliedSeq: 2 });
      expect(await rebuilt.loadFan('f-b')).toEqual({ state: '["f-b"]', programVersion: 'p@2', appliedSeq: 2 });
      expect((await rebuilt.pageFansBy({ sort: 'loyalty', descending: true, after: null, limit: 5 })).map((row) => [row.no, row.value])).toEqual([
        [1, 1.5],
        [0, 0.5],
      ]);
      expect(await rebuilt.referralEdges()).toEqual([]);
      expect(await rebuilt.referrerStates()).toEqual([]);
      expect(await collect(rebuilt.findFanStates({ layers: ['O'], activeAfter: 0, level: 9 }))).toEqual(['["f-a2"]']);
      expect((await rebuilt.readFanEvents('f-c', 10)).map((row) => row.seq)).toEqual([]);
      expect((await rebuilt.readFanEvents('f-b', 10)).map((row) => row.seq)).toEqual([2]);
      // And back to all three: the removed fan is written again.
      await rebuilt.exclusive((tx) => tx.saveState(stateWrite()));
      expect((await collect(rebuilt.iterateFans())).map((fan) => [fan.id, fan.state])).toEqual([
        ['f-a', '["f-a"]'],
        ['f-b', '["f-b"]'],
        ['f-c', '["f-c"]'],
      ]);
      expect((await rebuilt.readFanEvents('f-c', 10)).map((row) => row.seq)).toEqual([3]);
      expect(await rebuilt.referralEdges()).toHaveLength(2);
    });

    it('redemptions: one record per request id, and the accepted ones after a log position', async () => {
      const record = (requestId: string, seq: number | null) => ({ requestId, fan: 'f-a', item: 'coupon-5', points: 50, seq, outcome: JSON.stringify({ requestId }), createdAt: '2026-11-01T00:00:00.000Z' });
      await store.exclusive(async (tx) => {
        await tx.saveRedemption(record('q1', 3));
        await tx.saveRedemption(record('q2', null));
        await tx.saveRedemption(record('q3', 7));
      });
      expect(await store.findRedemption('q2')).toEqual(record('q2', null));
      expect(await store.findRedemption('q1')).toEqual(record('q1', 3));
      expect(await store.findRedemption('nope')).toBeNull();
      await expect(store.saveRedemption(record('q1', 9))).rejects.toThrow();
      expect(await store.redemptionsAfter(3)).toEqual([{ fan: 'f-a', item: 'coupon-5', points: 50 }]);
      expect(await store.redemptionsAfter(0)).toHaveLength(2);
    });

    it('a failed exclusive section writes nothing', async () => {
      await expect(
        store.exclusive(async (tx) => {
          await tx.saveState(stateWrite({ appliedSeq: 99 }));
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect((await store.loadStateMeta())?.appliedSeq).toBe(8);
    });

    it('keeps program history, the active one first', async () => {
      expect(await store.activeProgramVersion()).toBeNull();
      await store.activateProgram('p@1', 'name: p', '{}', '2026-11-01T00:00:00Z');
      await store.activateProgram('p@2', 'name: p2', '{}', '2026-11-02T00:00:00Z');
      expect((await store.activeProgram())?.version).toBe('p@2');
      expect(await store.activeProgramVersion()).toBe('p@2');
      await store.activateProgram('p@1', 'name: p', '{}', '2026-11-03T00:00:00Z');
      expect(await store.activeProgramVersion()).toBe('p@1');
      expect((await store.programHistory()).map((program) => program.version)).toEqual(['p@1', 'p@2']);
    });

    it('reads the position (active program, state meta, log) as the three separate reads give it', async () => {
      const position = await store.readPosition();
      expect(position).toEqual({ activeProgramVersion: await store.activeProgramVersion(), meta: await store.loadStateMeta(), maxSeq: await store.maxSeq() });
      expect(position.meta).not.toBeNull();
      expect(position.maxSeq).toBeGreaterThan(0);
      const fresh = await database.workspace('contract-empty');
      expect(await fresh.readPosition()).toEqual({ activeProgramVersion: null, meta: null, maxSeq: 0 });
      // Ranks for the state the caller names are those of that state.
      const meta = position.meta as { appliedSeq: number; programVersion: string };
      expect(await store.loyaltyRank(2, meta)).toEqual(await store.loyaltyRank(2));
    });

    it('keys: stored, found, listed per workspace, revoked once', async () => {
      await database.createKey({ id: 'key1', workspace: 'contract', hash: 'h1', scopes: ['read', 'ingest'], label: 'x', createdAt: '2026-11-01T00:00:00Z' });
      await database.createKey({ id: 'key2', workspace: 'elsewhere', hash: 'h2', scopes: ['admin'], label: null, createdAt: '2026-11-02T00:00:00Z' });
      expect(await database.findKey('key1')).toMatchObject({ workspace: 'contract', scopes: ['read', 'ingest'], revokedAt: null });
      expect((await database.listKeys('elsewhere')).map((key) => key.id)).toEqual(['key2']);
      expect(await database.revokeKey('key1', '2026-11-03T00:00:00Z')).toBe(true);
      expect(await database.revokeKey('key1', '2026-11-04T00:00:00Z')).toBe(false);
      expect((await database.findKey('key1'))?.revokedAt).toBe('2026-11-03T00:00:00Z');
      expect((await database.listWorkspaces()).map((w) => w.name)).toEqual(expect.arrayContaining(['contract', 'concurrent', 'elsewhere']));
    });

    it("one fan's events and derived changes, newest first, paged by position", async () => {
      const fans = await database.workspace('timeline');
      await fans.append([entry('t1', 1, { fan: 'x' }), entry('t2', 2, { fan: 'y' }), entry('t3', 3, { fan: 'x' }), entry('t4', 4, { fan: 'x' })], samePayload);
      // A fan's events are listed once the stored state covers them.
      expect(await fans.readFanEvents('x', 10)).toEqual([]);
      await fans.exclusive((tx) => tx.saveState(stateWrite({ appliedSeq: 3, fans: [], postings: [] })));
      expect((await fans.readFanEvents('x', 10)).map((row) => row.seq)).toEqual([3, 1]);
      await fans.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 4, fans: [], postings: [], snapshots: [] })));
      expect((await fans.readFanEvents('x', 10)).map((row) => [row.seq, JSON.parse(row.body).id])).toEqual([[4, 't4'], [3, 't3'], [1, 't1']]);
      expect((await fans.readFanEvents('x', 1, 4)).map((row) => row.seq)).toEqual([3]);
      expect(await fans.readFanEvents('nobody', 10)).toEqual([]);
      // A rebuild to an earlier position (another program's replay in progress) lists what it covers.
      await fans.exclusive((tx) => tx.saveState(stateWrite({ appliedSeq: 2, fans: [], postings: [] })));
      expect((await fans.readFanEvents('x', 10)).map((row) => row.seq)).toEqual([1]);
      expect((await fans.readFanEvents('y', 10)).map((row) => row.seq)).toEqual([2]);
      await fans.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 4, fans: [], postings: [], snapshots: [] })));
      expect((await fans.readFanEvents('x', 10)).map((row) => row.seq)).toEqual([4, 3, 1]);
      const derived = [
        { type: 'LevelChanged', fan: 'x', ts: 3, eventId: 't3', from: 1, to: 2, kind: 'promotion' },
        { type: 'BadgeGranted', fan: 'x', ts: 4, eventId: 't4', badge: 'b' },
        { type: 'LevelChanged', fan: 'y', ts: 2, eventId: 't2', from: 1, to: 2, kind: 'promotion' },
      ] as StateWrite['derived'];
      await fans.exclusive((tx) => tx.saveState(stateWrite({ derived, postings: [] })));
      const rows = await fans.readFanDerived('x', 10);
      expect(rows.map((row) => [row.type, row.ts, row.eventId])).toEqual([['BadgeGranted', 4, 't4'], ['LevelChanged', 3, 't3']]);
      expect(JSON.parse(rows[1].data)).toMatchObject({ from: 1, to: 2 });
    });

    it('users and sessions: one email per deployment, sessions end with expiry, logout and disabling', async () => {
      const user = { id: 'u1', workspace: 'contract', email: 'ops@example.com', passwordHash: 'scrypt$x', role: 'owner' as const, createdAt: '2026-11-01T00:00:00Z', disabledAt: null };
      await database.createUser(user);
      await expect(database.createUser({ ...user, id: 'u2', workspace: 'elsewhere' })).rejects.toThrow();
      await database.createUser({ ...user, id: 'u3', email: 'analyst@example.com', role: 'analyst', workspace: 'elsewhere' });
      expect(await database.findUserByEmail('ops@example.com')).toEqual(user);
      expect(await database.findUser('u3')).toMatchObject({ workspace: 'elsewhere', role: 'analyst' });
      expect(await database.findUserByEmail('nobody@example.com')).toBeNull();
      expect((await database.listUsers('elsewhere')).map((row) => row.email)).toEqual(['analyst@example.com']);
      expect((await database.listUsers()).length).toBe(2);
      await database.createSession({ hash: 's1', userId: 'u1', csrf: 'c1', createdAt: '2026-11-01T00:00:00Z', expiresAt: 5000 });
      await database.createSession({ hash: 's2', userId: 'u1', csrf: 'c2', createdAt: '2026-11-01T00:00:00Z', expiresAt: 9000 });
      await database.createSession({ hash: 's3', userId: 'u3', csrf: 'c3', createdAt: '2026-11-01T00:00:00Z', expiresAt: 9000 });
      expect(await database.findSession('s1', 4000)).toMatchObject({ session: { csrf: 'c1', userId: 'u1' }, user: { email: 'ops@example.com' } });
      expect(await database.findSession('s1', 5000)).toBeNull();
      expect(await database.findSession('s1', 0)).toBeNull(); // deleted when found expired
      await database.deleteSession('s3');
      await database.createSession({ hash: 's4', userId: 'u3', csrf: 'c4', createdAt: '2026-11-01T00:00:00Z', expiresAt: 9000 });
      expect(await database.setPassword('analyst@example.com', 'scrypt$y')).toBe(true);
      expect(await database.setPassword('nobody@example.com', 'scrypt$y')).toBe(false);
      expect(await database.findSession('s4', 0)).toBeNull();
      expect((await database.findUser('u3'))?.passwordHash).toBe('scrypt$y');
      expect(await database.findSession('s3', 0)).toBeNull();
      expect(await database.disableUser('ops@example.com', '2026-11-02T00:00:00Z')).toBe(true);
      expect(await database.disableUser('ops@example.com', '2026-11-03T00:00:00Z')).toBe(false);
      expect(await database.findSession('s2', 0)).toBeNull();
      expect((await database.findUserByEmail('ops@example.com'))?.disabledAt).toBe('2026-11-02T00:00:00Z');
    });

    it('webhooks: notifications written with the state are claimed once, retried, dead-lettered, retried again', async () => {
      const hooks = await database.workspace('hooks');
      await database.addWebhook({ id: 'wh-1', workspace: 'hooks', url: 'http://127.0.0.1:9/a', secret: 's1', types: ['level.changed', 'event.rejected'], createdAt: '2026-11-01T00:00:00Z' });
      expect([...(await hooks.subscribedTypes())].sort()).toEqual(['event.rejected', 'level.changed']);
      expect(await (await database.workspace('contract')).subscribedTypes()).toEqual(new Set());
      await hooks.exclusive((tx) =>
        tx.saveState(stateWrite({ notifications: [{ type: 'level.changed', data: { fan: 'f', from: 1, to: 2 } }, { type: 'points.posted', data: { fan: 'f', amount: 5 } }] })),
      );
      await hooks.recordRejects([{ source: 'api', line: 1, field: 'ts', reason: 'required', raw: '{}' }]);
      const now = Date.now();
      const claimed = await database.claimDeliveries(now, 10, 60_000);
      expect(claimed.map((item) => item.type)).toEqual(['level.changed', 'event.rejected']);
      expect(claimed[0]).toMatchObject({ workspace: 'hooks', subscription: 'wh-1', url: 'http://127.0.0.1:9/a', secret: 's1', attempts: 0 });
      expect(JSON.parse(claimed[0].payload)).toMatchObject({ type: 'level.changed', workspace: 'hooks', data: { fan: 'f', to: 2 } });
      // Claimed items are not handed to a second dispatcher before their lease ends.
      expect(await database.claimDeliveries(now, 10, 60_000)).toEqual([]);
      await database.finishDelivery(claimed[0].seq, { deliveredAt: new Date(now).toISOString() });
      await database.finishDelivery(claimed[1].seq, { error: 'HTTP 500', nextAttemptAt: now + 1000 });
      expect(await database.claimDeliveries(now, 10, 60_000)).toEqual([]);
      const again = await database.claimDeliveries(now + 1000, 10, 60_000);
      expect(again.map((item) => [item.seq, item.attempts])).toEqual([[claimed[1].seq, 1]]);
      await database.finishDelivery(again[0].seq, { error: 'HTTP 500', nextAttemptAt: null });
      expect((await database.deadLetters('hooks')).map((item) => [item.seq, item.attempts, item.lastError])).toEqual([[claimed[1].seq, 2, 'HTTP 500']]);
      expect(await database.deadLetters('contract')).toEqual([]);
      expect(await database.retryDelivery('contract', claimed[1].seq, now)).toBe(false);
      expect(await database.retryDelivery('hooks', claimed[1].seq, now + 2000)).toBe(true);
      expect((await database.claimDeliveries(now + 2000, 10, 60_000)).map((item) => item.seq)).toEqual([claimed[1].seq]);
      expect((await database.listWebhooks('hooks')).map((hook) => hook.id)).toEqual(['wh-1']);
      expect(await database.removeWebhook('contract', 'wh-1')).toBe(false);
      expect(await database.removeWebhook('hooks', 'wh-1')).toBe(true);
      expect(await database.listWebhooks('hooks')).toEqual([]);
    });

    it('workspaces share nothing', async () => {
      const other = await database.workspace('elsewhere');
      expect(await other.countEvents()).toBe(0);
      expect(await other.readEvent('a')).toBeNull();
      expect(await other.loadFan('f-a')).toBeNull();
      expect(await other.loadStateMeta()).toBeNull();
      expect(await other.activeProgram()).toBeNull();
    });

    it('an import through this store equals one through SQLite', async () => {
      const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 250, months: 3, seed: `contract-${kind}`, start: '2026-06-01T00:00:00+08:00' });
      const dir = tempDir();
      const file = join(dir, 'c.ndjson');
      writeFileSync(file, community.lines.join('\n') + '\n');
      // Two halves, the second partly before the end of the first: an incremental pass and a rebuild.
      const first = join(dir, 'first.ndjson');
      const second = join(dir, 'second.ndjson');
      const cut = Math.floor(community.lines.length * 0.6);
      writeFileSync(first, community.lines.slice(0, cut).join('\n') + '\n');
      writeFileSync(second, [...community.lines.slice(cut), ...community.lines.slice(cut - 50, cut)].join('\n') + '\n');
      const workspace = await openWorkspace(await database.workspace('imported'), null);
      await importFile(workspace, first, { chunkEvents: 1000 });
      const summary = await importFile(workspace, second, { chunkEvents: 1000 });
      expect(summary.duplicates).toBe(50);
      const reference = join(dir, 'ref.db');
      const sqlite = await openSqliteDatabase(reference);
      try {
        await importFile(await openWorkspace(await sqlite.workspace('default'), null), file);
      } finally {
        await sqlite.close();
      }
      expect(await dumpWorkspace(workspace)).toEqual(await dumpState(reference));
    });

    afterAll(async () => {
      await database?.close();
      await cleanup();
    });
  });
}

contract('sqlite', async () => ({ database: await openSqliteDatabase(join(tempDir(), 'contract.db')), cleanup: async () => {} }));

const postgres = await postgresAvailable();
contract(
  'postgres',
  async () => {
    const schema = freshSchema('contract');
    return { database: await openPostgresDatabase(schema.url), cleanup: schema.drop };
  },
  postgres,
);
