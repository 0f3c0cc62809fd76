import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createEngine } from '../src/core/engine.js';
import { compareEvents } from '../src/core/events.js';
import { verifyLedger } from '../src/core/ledger.js';
import { evaluateCondition } from '../src/core/conditions.js';
import { countPurchases, factsOf, fanPredicate, fanShortfall } from '../src/core/facts.js';
import { createWorld, type Posting } from '../src/core/state.js';
import { setFlagsFromString } from 'node:v8';
import { deserializeFan, fingerprintWorld, restoreWorld, serializeFan, serializeWorldMeta } from '../src/app/serialize.js';
import type { Program } from '../src/core/program.js';
import { defaultProgram, programFromSpec } from './helpers.js';
import { rawEvents, rawEventsWith, toEvents } from './arbitrary.js';

const program = defaultProgram();

function applyAll(events: ReturnType<typeof toEvents>) {
  const engine = createEngine(program);
  const world = createWorld(program.version);
  const out = engine.newOutput();
  for (const event of [...events].sort(compareEvents)) engine.apply(world, event, out);
  return { world, out };
}

/**
 * Levels that the arbitrary events reach and lose, with maintenance conditions over every
 * windowed fact (and `any`, `not`), so that midnights demote often and for every reason.
 */
function churningProgram(): Program {
  return programFromSpec((spec) => {
    spec.levels[1].entry = { fact: 'interactions', windowDays: 30, gte: 1 };
    spec.levels[2].entry = { fact: 'activity', windowDays: 30, gte: 1 };
    spec.levels[3].entry = { fact: 'interactions', windowDays: 30, gte: 2 };
    spec.levels[3].maintain = {
      any: [
        { fact: 'purchases', windowDays: 20, gte: 1 },
        { all: [{ fact: 'shares', windowDays: 10, gte: 1 }, { fact: 'activity', windowDays: 15, gte: 2 }] },
        { fact: 'qualifiedReferrals', windowDays: 40, gte: 1 },
        { fact: 'selectedContents', windowDays: 25, gte: 1 },
        { not: { fact: 'interactions', windowDays: 5, lte: 1 } },
      ],
    };
    spec.levels[4].entry = { all: [{ fact: 'interactions', windowDays: 30, gte: 3 }, { fact: 'qualifiedReferrals', gte: 1 }] };
    // Referrals counted both ways: one voided can demote, one more qualified can too.
    spec.levels[4].maintain = {
      all: [{ fact: 'interactions', windowDays: 14, gte: 1 }, { fact: 'qualifiedReferrals', gte: 1 }, { not: { fact: 'qualifiedReferrals', windowDays: 60, gte: 2 } }],
    };
    spec.demotion.graceDays = 3;
  });
}

describe('engine properties (fast-check)', () => {
  it('skipping fans found steady at earlier midnights demotes exactly as checking every fan at every midnight', () => {
    const churning = churningProgram();
    const demotions = [0, 0, 0, 0, 0, 0];
    fc.assert(
      fc.property(rawEventsWith({ minLength: 60, maxLength: 250 }, 5), fc.integer({ min: 0, max: 120 }), (raws, laterDays) => {
        const events = toEvents(raws).sort(compareEvents);
        const results = [false, true].map((checkEveryMidnight) => {
          const engine = createEngine(churning, undefined, { checkEveryMidnight });
          const world = createWorld(churning.version);
          const out = engine.newOutput();
          for (const event of events) engine.apply(world, event, out);
          engine.advanceClock(world, events[events.length - 1].ts + laterDays * 86_400_000, out);
          return { world: fingerprintWorld(world), derived: out.derived, postings: out.postings };
        });
        for (const change of results[1].derived) if (change.type === 'LevelChanged' && change.kind === 'demotion') demotions[change.from]++;
        expect(results[0]).toEqual(results[1]);
      }),
      { numRuns: 300 },
    );
    // The property says something only if midnights did demote, from both levels.
    expect(demotions[4]).toBeGreaterThan(100);
    expect(demotions[5]).toBeGreaterThan(20);
  });

  it('advancing one fan through midnights changes its level and Lv5 eligibility only (a look-ahead sets them back)', () => {
    const churning = churningProgram();
    let demoted = 0;
    fc.assert(
      fc.property(rawEventsWith({ minLength: 60, maxLength: 250 }, 5), fc.integer({ min: 1, max: 120 }), (raws, laterDays) => {
        const events = toEvents(raws).sort(compareEvents);
        const engine = createEngine(churning);
        const world = createWorld(churning.version);
        const out = engine.newOutput();
        for (const event of events) engine.apply(world, event, out);
        const to = world.clock + laterDays * 86_400_000;
        for (const fan of world.fans.values()) {
          const before = structuredClone(fan);
          engine.advanceFan(fan, world.clock, to);
          if (fan.level < before.level) demoted++;
          expect({ ...fan, level: before.level, eligibleForNext: before.eligibleForNext }).toEqual(before);
        }
      }),
      { numRuns: 100 },
    );
    expect(demoted).toBeGreaterThan(20);
  });

  it('incremental batches with a store round trip between them equal one pass over the log', () => {
    fc.assert(
      fc.property(rawEvents, fc.integer({ min: 1, max: 119 }), (raws, cut) => {
        const events = toEvents(raws).sort(compareEvents);
        const whole = applyAll(events);
        const engine = createEngine(program);
        let world = createWorld(program.version);
        const postings: Posting[] = [];
        const split = Math.min(cut, events.length);
        for (const batch of [events.slice(0, split), events.slice(split)]) {
          const out = engine.newOutput();
          for (const event of batch) engine.apply(world, event, out);
          postings.push(...out.postings);
          // Persist and reload as the store does between imports.
          world = restoreWorld(serializeWorldMeta(world), [...world.fans.values()].map(serializeFan), Object.entries(world.snapshots).map(([month, s]) => ({ month, data: JSON.stringify(s) })));
        }
        expect(fingerprintWorld(world)).toEqual(fingerprintWorld(whole.world));
        expect(postings).toEqual(whole.out.postings);
      }),
      { numRuns: 150 },
    );
  });

  it('any arrival order gives the state of applying the log in (ts, id) order', () => {
    fc.assert(
      fc.property(rawEvents.chain((raws) => fc.tuple(fc.constant(raws), fc.shuffledSubarray(raws, { minLength: raws.length, maxLength: raws.length }))), ([raws, shuffled]) => {
        expect(fingerprintWorld(applyAll(toEvents(shuffled)).world)).toEqual(fingerprintWorld(applyAll(toEvents(raws)).world));
      }),
      { numRuns: 100 },
    );
  });

  it('postings sum to zero per asset and every fan balance equals its ledger sum', () => {
    fc.assert(
      fc.property(rawEvents, (raws) => {
        const { world, out } = applyAll(toEvents(raws));
        const check = verifyLedger(out.postings, world.fans.values());
        expect(check.ok).toBe(true);
        for (const posting of out.postings) {
          expect(Number.isSafeInteger(posting.amount) && posting.amount > 0).toBe(true);
        }
      }),
      { numRuns: 150 },
    );
  });

  it('purchases in a window, found by bisection over the orders, equal a count of every order', () => {
    fc.assert(
      fc.property(rawEventsWith({ minLength: 20, maxLength: 200 }, 3), fc.integer({ min: -60, max: 400 }), fc.option(fc.integer({ min: 0, max: 400 }), { nil: null }), (raws, days, windowDays) => {
        const { world } = applyAll(toEvents(raws));
        const window = (windowDays ?? 0) * 86_400_000;
        for (const fan of world.fans.values()) {
          // A random instant, and each order's own instant and the one where it leaves the window.
          const instants = [world.clock + days * 86_400_000, ...fan.orders.flatMap((order) => [order.ts, order.ts + window])];
          for (const at of instants) {
            const from = windowDays === null ? Number.NEGATIVE_INFINITY : at - window;
            const naive = fan.orders.filter((order) => order.ts > from && order.ts <= at && order.refundedMinor < order.amountMinor).length;
            expect(countPurchases(fan, at, windowDays)).toBe(naive);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it('the compiled predicates and shortfalls agree with the explaining evaluator on every rule of the program', () => {
    const conditions = [
      ...program.levels.flatMap((level) => [level.entry, level.maintain]).filter((cond) => cond !== undefined),
      program.layers.core,
      program.layers.backbone,
      program.layers.general,
      ...program.tags.portraits.map((portrait) => portrait.when),
      // Every form of condition (any, not, ≤) over every windowed fact.
      ...churningProgram().levels.flatMap((level) => [level.entry, level.maintain]).filter((cond) => cond !== undefined),
      { fact: 'interactions', windowDays: 30, eq: 2 },
      { not: { fact: 'interactions', windowDays: 30, gte: 1 } },
    ];
    fc.assert(
      fc.property(rawEvents, fc.integer({ min: 0, max: 400 }), (raws, days) => {
        const { world } = applyAll(toEvents(raws));
        const at = world.clock + days * 86_400_000;
        for (const fan of world.fans.values()) {
          for (const cond of conditions) {
            const verdict = evaluateCondition(cond, factsOf(fan, at));
            expect(fanPredicate(cond)(fan, at)).toBe(verdict.ok);
            expect(fanShortfall(cond)(fan, at)).toBe(verdict.shortfall);
          }
        }
      }),
      { numRuns: 100 },
    );
  });

  it('the same log and program give byte-identical state', () => {
    fc.assert(
      fc.property(rawEvents, (raws) => {
        const a = applyAll(toEvents(raws));
        const b = applyAll(toEvents(raws));
        expect(fingerprintWorld(a.world).join('\n')).toBe(fingerprintWorld(b.world).join('\n'));
        expect(JSON.stringify(a.out)).toBe(JSON.stringify(b.out));
      }),
      { numRuns: 50 },
    );
  });
});

describe('loaded fan states', () => {
  it('have the shape of fans the engine makes (V8 fast properties), and round-trip', () => {
    // V8's own check, allowed for this process before the checking function is compiled.
    setFlagsFromString('--allow-natives-syntax');
    const hasFastProperties = new Function('object', 'return %HasFastProperties(object)') as (object: object) => boolean;
    fc.assert(
      fc.property(rawEvents, (raws) => {
        const { world } = applyAll(toEvents(raws));
        for (const fan of world.fans.values()) {
          const loaded = deserializeFan(serializeFan(fan));
          expect(hasFastProperties(loaded)).toBe(true);
          expect(Object.keys(loaded)).toEqual(Object.keys(fan));
          expect(serializeFan(loaded)).toBe(serializeFan(fan));
        }
      }),
      { numRuns: 30 },
    );
  });
});
