import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HeldRanks, ranksOf } from '../src/store/loyalty-ranks.js';

// A fan's value: none (no activity), or one of a few values, so that equal values occur often.
const value = fc.oneof(fc.constant(Number.NEGATIVE_INFINITY), fc.integer({ min: -3, max: 3 }).map((n) => n / 2), fc.double({ min: -50, max: 50, noNaN: true }));

describe('loyalty ranks held between state writes', () => {
  it('updated from the fans each write changed, equal the ranks sorted from every fan', () => {
    fc.assert(
      fc.property(
        fc.array(value, { minLength: 0, maxLength: 60 }),
        // Writes: fans (by number, some new beyond the first ones) and their new values.
        fc.array(fc.array(fc.tuple(fc.nat(90), value), { maxLength: 25 }), { maxLength: 8 }),
        (initial, writes) => {
          const fans = initial.map((loyaltyLog, no) => ({ no, loyaltyLog }));
          const held = HeldRanks.of(fans, fans.length);
          for (const changes of writes) {
            const touched = new Map<number, { no: number; loyaltyLog: number }>();
            for (const [no, loyaltyLog] of changes) {
              while (fans.length <= no) fans.push({ no: fans.length, loyaltyLog: Number.NEGATIVE_INFINITY });
              fans[no].loyaltyLog = loyaltyLog;
              touched.set(no, fans[no]);
            }
            // New fans without a value are not always among the touched ones.
            held.update(touched.values());
            const expected = ranksOf(fans.map((fan) => fan.loyaltyLog), fans.length);
            const actual = held.ranks(fans.length);
            expect({ ...actual, sorted: [...actual.sorted] }).toEqual({ ...expected, sorted: [...expected.sorted] });
          }
        },
      ),
      { numRuns: 300 },
    );
  });

  it('a ranks object given out earlier keeps its values after later updates', () => {
    const fans = [1, 2, 3].map((loyaltyLog, no) => ({ no, loyaltyLog }));
    const held = HeldRanks.of(fans, 3);
    const first = held.ranks(3);
    fans[0].loyaltyLog = 10;
    held.update([fans[0]]);
    expect([...first.sorted]).toEqual([1, 2, 3]);
    expect([...held.ranks(3).sorted]).toEqual([2, 3, 10]);
  });
});
