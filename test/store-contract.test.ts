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

const entry = (id: string, ts: number, body: Record<string, unknown> = {}): LogEntry => ({ id, ts, body: JSON.stringify({ id, ts, ...body }), source: 'test', line: 1 });

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
      const reordered: LogEntry = { id: 'c', ts: 1, body: '{"x":1.0,"ts":1,"id":"c"}', source: null, line: null };
      expect(await store.append([reordered, entry('c', 1, { x: 2 }), entry('d', 3)], samePayload)).toEqual(['duplicate', 'conflict', 'accepted']);
      expect(await store.maxSeq()).toBe(4);
      expect(await store.countEvents()).toBe(4);
      expect(JSON.parse((await store.readEvent('c')) as string)).toEqual({ id: 'c', ts: 1, x: 1 });
      expect(await store.readEvent('nope')).toBeNull();
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

    it('saves and loads the derived state, with the fan queries', async () => {
      await store.exclusive((tx) => tx.saveState(stateWrite()));
      expect(await store.loadStateMeta()).toEqual({ programVersion: 'p@1', appliedSeq: 3, world: '{"engineVersion":2,"clock":1000}' });
      expect(await store.loadProvisional()).toEqual({ month: '2026-11', data: '{"p":1}' });
      const loaded = await store.loadState();
      expect(loaded?.fans.map((fan) => fan.id)).toEqual(['f-a', 'f-b', 'f-c']);
      expect(loaded?.snapshots).toEqual([{ month: '2026-10', data: '{"m":1}' }]);
      expect(await store.loadFan('f-b')).toEqual({ state: '["f-b"]', programVersion: 'p@1' });
      expect(await store.loadFan('nobody')).toBeNull();
      expect((await collect(store.iterateFans())).map((fan) => fan.id)).toEqual(['f-a', 'f-b', 'f-c']);
      expect((await store.pageFans({ afterNo: 0, limit: 5 })).map((row) => row.no)).toEqual([1, 2]);
      expect((await store.findFanStates({ layers: ['C', 'B'], activeAfter: 100, level: 2 })).sort()).toEqual(['["f-a"]', '["f-b"]']);
      expect((await collect(store.iterateByBackboneGap('G', 0))).map((row) => row.state)).toEqual(['["f-b"]']);
      expect(await store.findInactiveRecent(600, 10)).toEqual(['["f-c"]', '["f-b"]']);
      expect(await store.loyaltyRank(2)).toEqual({ below: 2, total: 3 });
      expect((await store.referralEdges()).sort((x, y) => (x.fan < y.fan ? -1 : 1))).toEqual([{ fan: 'f-b', referrer: 'f-a' }, { fan: 'f-c', referrer: 'f-b' }]);
      expect(await store.referrerStates()).toEqual(['["f-a"]', '["f-c"]']);
      expect(await store.referrerStates(1)).toEqual(['["f-a"]']);
      expect(await collect(store.readPostings())).toEqual(stateWrite().postings);
      // An incremental write upserts the fans it names and appends postings.
      await store.exclusive((tx) => tx.saveState(stateWrite({ rebuild: false, appliedSeq: 4, fans: [{ ...FANS[0], level: 3, state: '["f-b2"]' }], postings: [], snapshots: [] })));
      expect(await store.loadFan('f-b')).toEqual({ state: '["f-b2"]', programVersion: 'p@1' });
      expect((await collect(store.readPostings())).length).toBe(5);
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
      expect((await store.loadStateMeta())?.appliedSeq).toBe(4);
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
