import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { runReplay } from '../src/app/replay.js';
import { createFan } from '../src/core/state.js';
import { silentProgress, type Workspace } from '../src/app/workspace.js';
import { rawEvents } from './arbitrary.js';
import { dumpState, importInto, tempDir, withStore, writeNdjson } from './store-helpers.js';

const sample = [
  { id: 'e1', type: 'follow', fan: 'a', ts: '2026-10-01T09:00:00+08:00' },
  { id: 'e2', type: 'like', fan: 'a', ts: '2026-10-01T09:01:00+08:00', props: { contentId: 'p1', category: 'guide' } },
  { id: 'e3', type: 'purchase', fan: 'a', ts: '2026-10-02T10:00:00+08:00', props: { orderId: 'o1', amount: 88.8 } },
  { id: 'e4', type: 'follow', fan: 'b', ts: '2026-10-03T10:00:00+08:00', props: { referrer: 'a' } },
  { id: 'e5', type: 'purchase', fan: 'b', ts: '2026-10-04T10:00:00+08:00', props: { orderId: 'o2', amount: 20 } },
];

describe('import into the SQLite store', () => {
  it('importing the same file twice changes nothing', async () => {
    const dir = tempDir();
    const db = join(dir, 'f.db');
    const file = writeNdjson(join(dir, 'a.ndjson'), sample);
    const [first] = await importInto(db, file);
    expect(first).toMatchObject({ accepted: 5, duplicates: 0, conflicts: 0, rejected: 0, rejectsFile: null });
    const before = await dumpState(db);
    const [second] = await importInto(db, file);
    expect(second).toMatchObject({ accepted: 0, duplicates: 5, conflicts: 0, rejected: 0 });
    expect(await dumpState(db)).toEqual(before);
  });

  it('same id with another payload is a conflict; key order and number spelling are not', async () => {
    const dir = tempDir();
    const db = join(dir, 'f.db');
    await importInto(db, writeNdjson(join(dir, 'a.ndjson'), sample));
    const again = join(dir, 'b.ndjson');
    writeFileSync(again, [
      '{"ts":"2026-10-02T10:00:00+08:00","props":{"amount":88.80,"orderId":"o1"},"fan":"a","type":"purchase","id":"e3"}',
      JSON.stringify({ ...sample[1], props: { contentId: 'p2', category: 'guide' } }),
    ].join('\n'));
    const [summary] = await importInto(db, again);
    expect(summary).toMatchObject({ accepted: 0, duplicates: 1, conflicts: 1 });
  });

  it('rejects bad lines with line, field and reason and keeps the rest', async () => {
    const dir = tempDir();
    const db = join(dir, 'f.db');
    const file = join(dir, 'bad.ndjson');
    writeFileSync(file, [
      JSON.stringify(sample[0]),
      '{"id":"x1","type":"like"',
      JSON.stringify({ id: 'x2', type: 'teleport', fan: 'a', ts: '2026-10-01T09:00:00+08:00' }),
      JSON.stringify({ id: 'x3', type: 'like', ts: '2026-10-01T09:00:00+08:00' }),
      JSON.stringify({ id: 'x4', type: 'like', fan: 'a', ts: '2026-10-01 09:00' }),
      JSON.stringify({ id: 'x5', type: 'purchase', fan: 'a', ts: 0, props: { orderId: 'o', amount: -1 } }),
      '',
      JSON.stringify(sample[1]),
    ].join('\n'));
    const [summary] = await importInto(db, file);
    expect(summary).toMatchObject({ accepted: 2, rejected: 5 });
    const rejects = readFileSync(summary.rejectsFile!, 'utf8').trim().split('\n').map((line) => JSON.parse(line));
    expect(rejects.map((r) => [r.line, r.field])).toEqual([[2, '(line)'], [3, 'type'], [4, 'fan'], [5, 'ts'], [6, 'props.amount']]);
    expect(rejects[0].reason).toMatch(/invalid JSON/);
    // A rejected line does not claim its id.
    const [fixed] = await importInto(db, writeNdjson(join(dir, 'fixed.ndjson'), [{ id: 'x3', type: 'like', fan: 'a', ts: '2026-10-01T09:00:00+08:00' }]));
    expect(fixed.accepted).toBe(1);
  });

  it('CSV with the same columns imports like NDJSON', async () => {
    const dir = tempDir();
    const csv = join(dir, 'a.csv');
    writeFileSync(csv, [
      'id,type,fan,ts,channel,props',
      ...sample.map((e) => [e.id, e.type, e.fan, e.ts, '', e.props ? `"${JSON.stringify(e.props).replace(/"/g, '""')}"` : ''].join(',')),
    ].join('\n'));
    const csvDb = join(dir, 'csv.db');
    const jsonDb = join(dir, 'json.db');
    expect((await importInto(csvDb, csv))[0]).toMatchObject({ accepted: 5, rejected: 0 });
    await importInto(jsonDb, writeNdjson(join(dir, 'a.ndjson'), sample));
    expect((await dumpState(csvDb)).world).toEqual((await dumpState(jsonDb)).world);
  });

  it('events in any order across several files equal one file in ts order (fast-check)', async () => {
    await fc.assert(
      fc.asyncProperty(rawEvents, fc.integer({ min: 1, max: 4 }), fc.integer(), async (raws, parts, salt) => {
        const dir = tempDir();
        const sorted = join(dir, 'sorted.db');
        const scattered = join(dir, 'scattered.db');
        await importInto(sorted, writeNdjson(join(dir, 'all.ndjson'), [...raws].sort((a, b) => (a.ts as number) - (b.ts as number) || ((a.id as string) < (b.id as string) ? -1 : 1))));
        const shuffled = [...raws].sort((a, b) => ((((a.id as string).length * 31 + salt) ^ (a.ts as number)) % 7) - ((((b.id as string).length * 31 + salt) ^ (b.ts as number)) % 7));
        const files = Array.from({ length: parts }, (_, i) => writeNdjson(join(dir, `part${i}.ndjson`), shuffled.filter((_, index) => index % parts === i)));
        await importInto(scattered, ...files);
        expect(await dumpState(scattered)).toEqual(await dumpState(sorted));
        // Re-importing everything is a no-op.
        const again = await importInto(scattered, ...files);
        expect(again.reduce((sum, s) => sum + s.accepted, 0)).toBe(0);
        expect(await dumpState(scattered)).toEqual(await dumpState(sorted));
      }),
      { numRuns: 12 },
    );
  });

  it('replay rebuilds the state from the log and finds it identical to the incremental one', async () => {
    const dir = tempDir();
    const db = join(dir, 'f.db');
    await importInto(db, writeNdjson(join(dir, 'a.ndjson'), sample.slice(0, 3)));
    await importInto(db, writeNdjson(join(dir, 'b.ndjson'), sample.slice(3)));
    const result = await withStore(db, (workspace) => runReplay(workspace, silentProgress));
    expect(result).toMatchObject({ events: 5, fans: 2, compared: true, verified: true, differences: 0, ledgerOk: true });
  });

  it('replay notices a derived state that does not follow from the log, and replaces it', async () => {
    const dir = tempDir();
    const db = join(dir, 'f.db');
    await importInto(db, writeNdjson(join(dir, 'a.ndjson'), sample));
    const tampered = new Database(db);
    const position = Object.keys(createFan('', 0, 0)).indexOf('pointsBalance') + 1;
    tampered.prepare(`UPDATE fans SET state = json_set(state, '$[${position}]', 999999) WHERE id = 'a'`).run();
    tampered.close();
    const first = await withStore(db, (workspace) => runReplay(workspace, silentProgress));
    expect(first).toMatchObject({ compared: true, verified: false, differences: 1 });
    const second = await withStore(db, (workspace) => runReplay(workspace, silentProgress));
    expect(second).toMatchObject({ verified: true, differences: 0 });
  });
});

describe('engine upgrades', () => {
  it('a state written by another engine version is rebuilt from the log, not reused', async () => {
    const { catchUp } = await import('../src/app/workspace.js');
    const dir = tempDir();
    const db = join(dir, 'f.db');
    await importInto(db, writeNdjson(join(dir, 'a.ndjson'), sample));
    const expected = await dumpState(db);
    const old = new Database(db);
    old.prepare(`UPDATE state SET value = json_set(value, '$.engineVersion', 1) WHERE key = 'world'`).run();
    old.close();
    expect(await withStore(db, async (workspace) => (await catchUp(workspace)).rebuilt)).toBe(true);
    expect(await dumpState(db)).toEqual(expected);
  });
});

describe('appending on a worker thread', () => {
  it('gives the statuses and the state of appending in this thread, chunk after chunk', async () => {
    const { generateCommunity, DEFAULT_GENERATE } = await import('../src/demo/generate.js');
    const { importFile } = await import('../src/app/import.js');
    const dir = tempDir();
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 400, months: 3, seed: 'worker', start: '2026-04-01T00:00:00+08:00' });
    const file = join(dir, 'community.ndjson');
    writeFileSync(file, community.lines.join('\n') + '\n');
    // A second file: half of the first again (duplicates), one changed payload (a conflict), one bad line.
    const again = join(dir, 'again.ndjson');
    const half = community.lines.slice(0, Math.floor(community.lines.length / 2));
    const changed = JSON.parse(half[7]) as { props?: Record<string, unknown> };
    changed.props = { ...changed.props, note: 'changed' };
    writeFileSync(again, [...half.slice(0, 7), JSON.stringify(changed), ...half.slice(8), '{"id":"x","type":"nope"}'].join('\n') + '\n');
    const run = async (appendOnWorker: boolean) => {
      const db = join(dir, `${appendOnWorker ? 'worker' : 'inline'}.db`);
      const summaries = await withStore(db, async (workspace) => [await importFile(workspace, file, { appendOnWorker, chunkEvents: 700, rejectsPath: `${db}.rejects` }), await importFile(workspace, again, { appendOnWorker, chunkEvents: 700, rejectsPath: `${db}.rejects` })]);
      return { summaries: summaries.map(({ rejectsFile: _r, ...rest }) => rest), rejects: readFileSync(`${db}.rejects`, 'utf8'), state: await dumpState(db) };
    };
    const inline = await run(false);
    const worker = await run(true);
    expect(inline.summaries[1]).toMatchObject({ duplicates: half.length - 1, conflicts: 1, rejected: 1 });
    expect(inline.state.events).toBe(community.lines.length);
    expect(worker).toEqual(inline);
  });
});

describe('writing an import\'s state on a worker thread', () => {
  it('stores the state when the log did not move, and leaves it to a catch-up here when another writer appended meanwhile', async () => {
    const { generateCommunity, DEFAULT_GENERATE } = await import('../src/demo/generate.js');
    const { appendFile } = await import('../src/app/appended-chunks.js');
    const { startStateWriter } = await import('../src/app/state-writer.js');
    const { startStreamingApply } = await import('../src/app/workspace.js');
    const { samePayload } = await import('../src/app/same-payload.js');
    const dir = tempDir();
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 400, months: 3, seed: 'state-writer', start: '2026-04-01T00:00:00+08:00' });
    const file = join(dir, 'community.ndjson');
    writeFileSync(file, community.lines.join('\n') + '\n');
    const late = { id: 'late-1', type: 'like', fan: 'u000001', ts: community.end + 60_000, props: { contentId: 'p1', category: 'guide' } };
    const lateFile = writeNdjson(join(dir, 'late.ndjson'), [late]);
    // Appended through the worker path, with another writer's event (or none) among its chunks.
    const run = async (db: string, interloper: boolean) =>
      withStore(db, async (workspace) => {
        const applier = await startStreamingApply(workspace);
        let chunks = 0;
        for await (const chunk of appendFile(workspace.store, file, 900, true)) {
          applier.offer(chunk.accepted);
          // Between the import's appends: its events' seqs are no longer the range it counted.
          if (interloper && ++chunks === 1) await workspace.store.append([{ id: late.id, ts: late.ts, body: JSON.stringify(late), source: 'other', line: null, fan: late.fan }], samePayload);
        }
        const writer = startStateWriter(db, workspace.store.workspace);
        const outcomes: string[] = [];
        try {
          await applier.finish(silentProgress, {
            async write(expected, state) {
              const outcome = await writer.write(expected, state);
              outcomes.push(outcome);
              return outcome;
            },
          });
        } finally {
          await writer.close();
        }
        return outcomes;
      });
    const quiet = join(dir, 'quiet.db');
    expect(await run(quiet, false)).toEqual(['saved']);
    const plain = join(dir, 'plain.db');
    await importInto(plain, file);
    expect(await dumpState(quiet)).toEqual(await dumpState(plain));
    const moved = join(dir, 'moved.db');
    expect(await run(moved, true)).toEqual(['moved']);
    const sequential = join(dir, 'sequential.db');
    await importInto(sequential, file, lateFile);
    expect(await dumpState(moved)).toEqual(await dumpState(sequential));
  });
});

describe('the monthly report', () => {
  it('from stored snapshots and candidate fans equals the report over every fan', async () => {
    const { generateCommunity, DEFAULT_GENERATE } = await import('../src/demo/generate.js');
    const { queryReport } = await import('../src/app/queries.js');
    const { evaluateMonthlyReport } = await import('../src/core/analysis.js');
    const { worldAt } = await import('../src/app/workspace.js');
    const dir = tempDir();
    const file = join(dir, 'community.ndjson');
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 1500, months: 6, seed: 'report', start: '2026-04-01T00:00:00+08:00' });
    writeFileSync(file, community.lines.join('\n') + '\n');
    const db = join(dir, 'f.db');
    await importInto(db, file);
    for (const [month, asOf] of [['2026-09', community.end], ['2026-08', community.end + 20 * 86_400_000], ['2026-07', community.end]] as const) {
      const fast = await withStore(db, (workspace) => queryReport(workspace, month, asOf));
      const slow = await withStore(db, async (workspace) => evaluateMonthlyReport(await worldAt(workspace, asOf), workspace.engine, month, asOf));
      expect(fast).toEqual(slow);
      expect(fast.actions.closestToCore.length + fast.actions.closestToBackbone.length).toBeGreaterThan(0);
      // A process making one report looks at the candidates as they are read and keeps none.
      const once = await withStore(db, async (workspace) => {
        workspace.holdReportCandidates = false;
        const report = await queryReport(workspace, month, asOf);
        expect(workspace.reportCandidates ?? null).toBeNull();
        return report;
      });
      expect(once).toEqual(slow);
    }
    // One workspace answering a run of instants reuses its candidates while the state stays;
    // each report still equals the one over every fan at that exact instant.
    const hour = 3_600_000;
    // Later days advance the held fans over the midnights between; the last instant goes back.
    const instants = [community.end, community.end + 1, community.end + 5 * hour, community.end + 23 * hour, community.end + 30 * hour, community.end + 3 * 86_400_000 + 7 * hour, community.end + 45 * 86_400_000, community.end + 2 * hour];
    const reused = await withStore(db, async (workspace) => {
      const reports = [];
      for (const asOf of instants) reports.push(await queryReport(workspace, '2026-09', asOf));
      // The held fans, advanced day by day, have the levels of fans advanced at once to that day.
      const { deserializeFan } = await import('../src/app/serialize.js');
      const clock = (JSON.parse((await workspace.store.loadStateMeta())!.world) as { clock: number }).clock;
      const held = workspace.reportCandidates!;
      let demoted = 0;
      for (const fan of held.fans.values()) {
        const fresh = deserializeFan((await workspace.store.loadFan(fan.id))!.state);
        const stored = fresh.level;
        workspace.engine.advanceFan(fresh, clock, community.end + 45 * 86_400_000);
        expect(fan.level).toBe(fresh.level);
        if (fresh.level < stored) demoted++;
      }
      expect(demoted).toBeGreaterThan(0);
      return reports;
    });
    for (const [index, asOf] of instants.entries()) {
      const slow = await withStore(db, async (workspace) => evaluateMonthlyReport(await worldAt(workspace, asOf), workspace.engine, '2026-09', asOf));
      expect(reused[index]).toEqual(slow);
    }
    // One fan read alone gets the loyalty score it has in the full list.
    const { queryFan, queryFans } = await import('../src/app/queries.js');
    const listed = await withStore(db, (workspace) => queryFans(workspace, {}, community.end));
    for (const view of listed.filter((_, index) => index % 97 === 0)) {
      const alone = await withStore(db, (workspace) => queryFan(workspace, view.id, community.end));
      expect(alone.tags.loyaltyScore).toBe(view.tags.loyaltyScore);
      expect(alone.level).toEqual(view.level);
      expect(alone.layer).toEqual(view.layer);
    }
  });
});

describe('reports past the state clock', () => {
  it('from a pass over the stored fans equal the report over every fan, and the boundaries it found are held', async () => {
    const { generateCommunity, DEFAULT_GENERATE } = await import('../src/demo/generate.js');
    const { queryReport } = await import('../src/app/queries.js');
    const { queryMovement, queryTrend, computeMovement } = await import('../src/app/dashboard.js');
    const { evaluateMonthlyReport } = await import('../src/core/analysis.js');
    const { worldAt, openWorkspace } = await import('../src/app/workspace.js');
    const { compileProgramText } = await import('../src/app/program-source.js');
    const { openSqliteStore } = await import('../src/store/sqlite-store.js');
    const defaultYaml = (await import('../src/core/default-program-text.js')).default;
    const dir = tempDir();
    // The log stops on 20 September: no event since, the midnights after it only demote.
    const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 1200, months: 5, seed: 'stale', start: '2026-05-01T00:00:00+08:00' });
    const events = community.lines.map((line) => JSON.parse(line) as { ts: string }).filter((event) => Date.parse(event.ts) < Date.parse('2026-09-20T00:00:00+08:00'));
    const db = join(dir, 'f.db');
    await importInto(db, writeNdjson(join(dir, 'head.ndjson'), events));
    const at = (text: string) => Date.parse(text);
    const cases: [string, number][] = [
      ['2026-09', at('2026-10-03T12:00:00+08:00')], // the clock's month, ended after it
      ['2026-10', at('2026-11-05T08:30:00+08:00')], // a whole month after the clock
      ['2026-11', at('2026-11-05T08:30:00+08:00')], // still running at asOf
      ['2026-10', at('2026-12-24T23:00:00+08:00')], // served from the boundaries held
    ];
    const slow = (month: string, asOf: number) => withStore(db, async (workspace) => evaluateMonthlyReport(await worldAt(workspace, asOf), workspace.engine, month, asOf));
    const store = await openSqliteStore(db);
    try {
      const workspace = await openWorkspace(store, null);
      for (const [month, asOf] of cases) expect(await queryReport(workspace, month, asOf)).toEqual(await slow(month, asOf));
      expect((await queryReport(workspace, '2026-10', at('2026-11-05T08:30:00+08:00'))).overview.demotions).toBeGreaterThan(0);
      // The report of October as of 24 December read the boundaries the pass of 5 November left.
      expect(workspace.advanced?.through).toBe(at('2026-11-05T08:30:00+08:00'));
      // Movement and the trend read the held boundaries (or make them) for months after the clock.
      const asOf = at('2026-12-24T23:00:00+08:00');
      const full = await withStore(db, (other) => worldAt(other, asOf));
      const meta = await store.loadStateMeta();
      expect(await queryMovement(workspace, '2026-11', asOf, meta)).toEqual(computeMovement('2026-11', full.snapshots['2026-11'], full.snapshots['2026-12']));
      workspace.advanced = null;
      expect(await queryMovement(workspace, '2026-10', asOf, meta)).toEqual(computeMovement('2026-10', full.snapshots['2026-10'], full.snapshots['2026-11']));
      const trend = await queryTrend(workspace, '2026-11', 4, asOf, meta);
      expect(trend.map((point) => point.month)).toEqual(['2026-08', '2026-09', '2026-10', '2026-11']);
      expect(trend[3].layers.general + trend[3].layers.backbone + trend[3].layers.core).toBeLessThan(trend[0].layers.general + trend[0].layers.backbone + trend[0].layers.core);
    } finally {
      await store.close();
    }
    // A program whose layers the fast path cannot bound (a `not`) gets every report from the pass.
    const negated = defaultYaml.replace('      - { fact: purchases, windowDays: 90, gte: 2 }', '      - not: { fact: purchases, windowDays: 90, lte: 1 }');
    expect(negated).not.toBe(defaultYaml);
    const loaded = compileProgramText(negated, 'negated');
    const inProgram = async <T>(run: (workspace: Workspace) => Promise<T>) => {
      const other = await openSqliteStore(db);
      try {
        return await run(await openWorkspace(other, loaded));
      } finally {
        await other.close();
      }
    };
    for (const [month, asOf] of [['2026-08', at('2026-09-25T00:00:00+08:00')], ['2026-10', at('2026-11-05T08:30:00+08:00')]] as const) {
      const fast = await inProgram((workspace) => queryReport(workspace, month, asOf));
      expect(fast).toEqual(await inProgram(async (workspace) => evaluateMonthlyReport(await worldAt(workspace, asOf), workspace.engine, month, asOf)));
      expect(fast.programVersion).toBe(loaded.program.version);
    }
  });
});

describe('the monthly report of a workspace without events', () => {
  it('is empty, not an error', async () => {
    const { queryReport } = await import('../src/app/queries.js');
    const report = await withStore(join(tempDir(), 'empty.db'), (workspace) => queryReport(workspace, '2026-09', Date.parse('2026-11-02T00:00:00+08:00')));
    expect(report.followers).toMatchObject({ start: 0, end: 0 });
  });
});

describe('the provisional snapshot written with the state', () => {
  it('counts a demotion due before the next month start without demoting the stored fan earlier', async () => {
    const { queryFan, queryReport } = await import('../src/app/queries.js');
    const dir = tempDir();
    const db = join(dir, 'f.db');
    // u1 reaches Lv4 on 1 June (12 interactions and a purchase); the interactions leave the 90-day
    // window on 30 August, past the grace. The log ends on 20 August with another fan's event.
    const likes = Array.from({ length: 12 }, (_, i) => ({ id: `l${i}`, type: 'like', fan: 'u1', ts: `2026-06-01T10:${String(i).padStart(2, '0')}:00+08:00` }));
    const events = [
      { id: 'f1', type: 'follow', fan: 'u1', ts: '2026-06-01T09:00:00+08:00' },
      ...likes,
      { id: 'p1', type: 'purchase', fan: 'u1', ts: '2026-06-01T11:00:00+08:00', props: { orderId: 'o1', amount: 50 } },
      { id: 'f2', type: 'follow', fan: 'u2', ts: '2026-08-20T09:00:00+08:00' },
    ];
    await importInto(db, writeNdjson(join(dir, 'a.ndjson'), events));
    await withStore(db, async (workspace) => {
      expect((await queryFan(workspace, 'u1', Date.parse('2026-08-21T00:00:00+08:00'))).level.level).toBe(4);
      expect((await queryFan(workspace, 'u1', Date.parse('2026-09-01T00:00:00+08:00'))).level.level).toBe(3);
      // August's report reads the provisional snapshot of 1 September: u1 is at Lv3 there.
      const report = await queryReport(workspace, '2026-08', Date.parse('2026-09-02T00:00:00+08:00'));
      expect(report.levels).toMatchObject({ '1': 1, '3': 1, '4': 0 });
      expect(report.overview.demotions).toBe(1);
    });
  });
});

describe('what a server holds between reports', () => {
  // The engine inline (candidates patched from each catch-up) and on the state worker (which also
  // updates its provisional snapshot of the next month boundary from the fans each pass rewrote).
  for (const mode of ['inline', 'state worker'] as const) {
    it(`${mode}: follows the stored state through the fans each catch-up rewrote; every report equals the one over every fan`, async () => {
      const { generateCommunity, DEFAULT_GENERATE } = await import('../src/demo/generate.js');
      const { evaluateMonthlyReport } = await import('../src/core/analysis.js');
      const { worldAt } = await import('../src/app/workspace.js');
      const { openSqliteStore } = await import('../src/store/sqlite-store.js');
      const { WorkspaceRuntime } = await import('../src/server/runtime.js');
      const { startStateWorker } = await import('../src/server/state-client.js');
      const dir = tempDir();
      const community = generateCommunity({ ...DEFAULT_GENERATE, fans: 1200, months: 5, seed: 'held', start: '2026-05-01T00:00:00+08:00' });
      const events = community.lines.map((line) => JSON.parse(line) as { ts: string });
      events.sort((a, b) => Date.parse(a.ts) - Date.parse(b.ts));
      // The log up to 20 September; the rest arrives in four parts after the first reports.
      const cut = events.findIndex((event) => Date.parse(event.ts) >= Date.parse('2026-09-20T00:00:00+08:00'));
      const db = join(dir, 'f.db');
      await importInto(db, writeNdjson(join(dir, 'head.ndjson'), events.slice(0, cut)));
      const rest = events.slice(cut);
      const store = await openSqliteStore(db);
      const worker = mode === 'state worker' ? startStateWorker({ kind: 'sqlite', location: db }) : null;
      const runtime = await WorkspaceRuntime.open(store, worker);
      const asOf = community.end + 2 * 86_400_000;
      // August ended before the first part arrives; September's end is the provisional snapshot.
      const months = ['2026-08', '2026-09'];
      const slow = (month: string) => withStore(db, async (workspace) => evaluateMonthlyReport(await worldAt(workspace, asOf), workspace.engine, month, asOf));
      try {
        const first = await runtime.report('2026-08', asOf);
        const quarter = Math.ceil(rest.length / 4);
        let last = first;
        for (let from = 0; from < rest.length; from += quarter) {
          const slice = rest.slice(from, from + quarter);
          for (let at = 0; at < slice.length; at += 500) await runtime.ingest(slice.slice(at, at + 500), 'test');
          for (const month of months) {
            const report = await runtime.report(month, asOf);
            expect(report).toEqual(await slow(month));
            if (month === '2026-08') last = report;
          }
          // The sorted loyalty values written with the state are every stored fan's.
          const sqlite = new Database(db, { readonly: true });
          try {
            const ranks = sqlite.prepare('SELECT total, unranked, sorted FROM loyalty_ranks').get() as { total: number; unranked: number; sorted: Buffer };
            const values = sqlite.prepare('SELECT loyalty FROM fans WHERE loyalty IS NOT NULL ORDER BY loyalty').pluck().all() as number[];
            const sorted = new Float64Array(ranks.sorted.buffer.slice(ranks.sorted.byteOffset, ranks.sorted.byteOffset + ranks.sorted.byteLength));
            expect([...sorted]).toEqual(values);
            expect(ranks).toMatchObject({ total: sqlite.prepare('SELECT COUNT(*) FROM fans').pluck().get(), unranked: (sqlite.prepare('SELECT COUNT(*) FROM fans').pluck().get() as number) - values.length });
          } finally {
            sqlite.close();
          }
        }
        const held = (runtime as unknown as { workspace: { reportCandidates: { reads: number; patches: number } | null } }).workspace.reportCandidates;
        expect(held).toMatchObject({ reads: 1 });
        expect(held?.patches).toBeGreaterThanOrEqual(4);
        expect(last).not.toEqual(first);
      } finally {
        await worker?.close();
        await store.close();
      }
    });
  }
});

describe('workspaces in one SQLite file', () => {
  it('a database of schema 5 migrates: its log becomes workspace "default" and the state is rebuilt from it', async () => {
    const { MIGRATIONS, openSqliteStore } = await import('../src/store/sqlite-store.js');
    const dir = tempDir();
    const events = [
      { id: 'a1', type: 'follow', fan: 'u1', ts: '2026-10-01T09:00:00+08:00', channel: 'wechat' },
      { id: 'a2', type: 'like', fan: 'u1', ts: '2026-10-01T09:05:00+08:00' },
      { id: 'a3', type: 'purchase', fan: 'u1', ts: '2026-10-02T09:00:00+08:00', props: { orderId: 'o1', amount: '99.00' } },
    ];
    const fresh = join(dir, 'fresh.db');
    await importInto(fresh, writeNdjson(join(dir, 'a.ndjson'), events));
    const old = join(dir, 'old.db');
    const db = new Database(old);
    MIGRATIONS.slice(0, 5).forEach((sql) => db.exec(sql));
    db.pragma('user_version = 5');
    events.forEach((event, index) => db.prepare('INSERT INTO events (id, seq, ts, body) VALUES (?, ?, ?, ?)').run(event.id, index + 1, Date.parse(event.ts), JSON.stringify(event)));
    db.prepare("INSERT INTO state (key, value) VALUES ('logSeq', '3'), ('appliedSeq', '3'), ('programVersion', 'x'), ('world', '{}')").run();
    db.close();
    expect(await dumpState(old)).toEqual(await dumpState(fresh));
    const store = await openSqliteStore(old, { workspace: 'other' });
    try {
      expect(await store.countEvents()).toBe(0);
      expect(await store.readEvent('a1')).toBeNull();
    } finally {
      await store.close();
    }
  });

  it("a database from before the fans' event table migrates: each workspace lists the events its state covers", async () => {
    const { MIGRATIONS, openSqliteStore } = await import('../src/store/sqlite-store.js');
    const path = join(tempDir(), 'before.db');
    const db = new Database(path);
    MIGRATIONS.slice(0, -1).forEach((sql) => db.exec(sql));
    db.pragma(`user_version = ${MIGRATIONS.length - 1}`);
    db.prepare("INSERT INTO workspaces (no, name, created_at) VALUES (2, 'other', '2026-11-01T00:00:00Z')").run();
    const insert = db.prepare('INSERT INTO events (ws, id, seq, ts, body, fan) VALUES (?, ?, ?, ?, ?, ?)');
    [[1, 'a1', 1, 'u1'], [1, 'a2', 2, 'u2'], [1, 'a3', 3, 'u1'], [1, 'a4', 4, null], [1, 'a5', 5, 'u1'], [2, 'b1', 1, 'u1']].forEach(([ws, id, seq, fan]) =>
      insert.run(ws, id, seq, seq, JSON.stringify({ id, fan }), fan),
    );
    // Workspace 1's state covers the log up to 4; workspace 2 has none yet.
    db.prepare("INSERT INTO state (ws, key, value) VALUES (1, 'logSeq', '5'), (1, 'appliedSeq', '4'), (2, 'logSeq', '1')").run();
    db.close();
    const store = await openSqliteStore(path);
    const other = await openSqliteStore(path, { workspace: 'other' });
    try {
      expect((await store.readFanEvents('u1', 10)).map((row) => row.seq)).toEqual([3, 1]);
      expect((await store.readFanEvents('u2', 10)).map((row) => row.seq)).toEqual([2]);
      expect(await other.readFanEvents('u1', 10)).toEqual([]);
    } finally {
      await other.close();
      await store.close();
    }
    const indexes = new Database(path, { readonly: true }).prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'events'").pluck().all();
    expect(indexes).toEqual(['events_seq']);
  });

  it('two workspaces of one file keep their own log, state and programs', async () => {
    const { openSqliteDatabase } = await import('../src/store/sqlite-store.js');
    const { importFile } = await import('../src/app/import.js');
    const { openWorkspace } = await import('../src/app/workspace.js');
    const dir = tempDir();
    const file = writeNdjson(join(dir, 'a.ndjson'), [
      { id: 'same-id', type: 'follow', fan: 'u1', ts: '2026-10-01T09:00:00+08:00' },
      { id: 'b', type: 'like', fan: 'u1', ts: '2026-10-01T09:05:00+08:00' },
    ]);
    const other = writeNdjson(join(dir, 'b.ndjson'), [{ id: 'same-id', type: 'follow', fan: 'v9', ts: '2026-10-03T09:00:00+08:00' }]);
    const database = await openSqliteDatabase(join(dir, 'two.db'));
    try {
      const a = await openWorkspace(await database.workspace('a'), null);
      const b = await openWorkspace(await database.workspace('b'), null);
      expect((await importFile(a, file)).accepted).toBe(2);
      // The same id in another workspace is another event, not a conflict.
      expect(await importFile(b, other)).toMatchObject({ accepted: 1, conflicts: 0 });
      expect([await a.store.countEvents(), await b.store.countEvents()]).toEqual([2, 1]);
      expect(await a.store.loadFan('v9')).toBeNull();
      expect(await b.store.loadFan('u1')).toBeNull();
      expect(await b.store.loadFan('v9')).not.toBeNull();
      expect((await database.listWorkspaces()).map((w) => w.name)).toEqual(['default', 'a', 'b']);
    } finally {
      await database.close();
    }
  });
});
