import { describe, expect, it } from 'vitest';
import { DAY, HOUR, T0, defaultProgram, event, interactions, programFromSpec, run } from './helpers.js';

const program = defaultProgram();
const count = (cond: unknown) => cond as { windowDays: number; gte: number };
const lv2 = count(program.levels[1].entry);
const lv3 = count(program.levels[2].entry);
const lv4Maintain = count(program.levels[3].maintain);
const lv5Maintain = count(program.levels[4].maintain);
const grace = program.demotion.graceDays;

describe('levels (PRODUCT §3.1)', () => {
  it('a new fan starts at Lv1', () => {
    const r = run().apply(event('follow', 'a', T0));
    expect(r.fan('a').level).toBe(1);
  });

  it(`given ${lv2.gte} interactions within ${lv2.windowDays} days, the fan reaches Lv2`, () => {
    const r = run().apply(...interactions('a', lv2.gte - 1, T0, DAY));
    expect(r.fan('a').level).toBe(1);
    r.apply(...interactions('a', 1, T0 + (lv2.gte - 1) * DAY));
    expect(r.fan('a').level).toBe(2);
  });

  it('interactions spread wider than the window do not promote', () => {
    const r = run().apply(...interactions('a', lv2.gte, T0, (lv2.windowDays / (lv2.gte - 1)) * DAY + HOUR));
    expect(r.fan('a').level).toBe(1);
  });

  it('climbs several levels in one cascade, one promotion at that instant', () => {
    const r = run().apply(...interactions('a', lv3.gte, T0, HOUR));
    expect(r.fan('a').level).toBe(3);
    const changes = r.out.derived.filter((d) => d.type === 'LevelChanged');
    expect(changes.map((d) => (d as { to: number }).to)).toEqual([2, 3]);
  });

  it('a buyer who never interacts stays Lv1 (the path is the seed’s)', () => {
    const r = run().apply(event('purchase', 'a', T0, { orderId: 'o1', amount: 999 }), event('purchase', 'a', T0 + HOUR, { orderId: 'o2', amount: 999 }));
    expect(r.fan('a').level).toBe(1);
  });

  it('Lv4 needs a purchase (or 30 in 90 d) and 12 interactions in 90 d', () => {
    const r = run().apply(...interactions('a', lv4Maintain.gte, T0, HOUR));
    expect(r.fan('a').level).toBe(3);
    r.apply(event('purchase', 'a', T0 + DAY, { orderId: 'o1', amount: 10 }));
    expect(r.fan('a').level).toBe(4);
  });

  it('a Lv4 fan meeting every Lv5 condition but recognition is eligible; recognition promotes', () => {
    const r2 = run().apply(event('follow', 'a', T0 - 20 * DAY));
    for (let i = 0; i < 5; i++) r2.apply(event('follow', `ref${i}`, T0 - 10 * DAY + i * HOUR, { referrer: 'a' }));
    r2.apply(...interactions('a', 50, T0 - 9 * DAY, 3 * HOUR));
    r2.apply(event('purchase', 'a', T0, { orderId: 'oa1', amount: 100 }), event('purchase', 'a', T0 + HOUR, { orderId: 'oa2', amount: 100 }));
    for (let i = 0; i < 5; i++) r2.apply(event('purchase', `ref${i}`, T0 + 2 * HOUR + i * 60_000, { orderId: `or${i}`, amount: 50 }));
    r2.apply(event('content_select', 'a', T0 + 3 * HOUR, { contentId: 'c1' }));
    expect(r2.fan('a').level).toBe(4);
    expect(r2.fan('a').eligibleForNext).toBe(true);
    expect(r2.out.derived.some((d) => d.type === 'Lv5Eligible' && d.fan === 'a')).toBe(true);
    r2.apply(event('op_recognize', 'a', T0 + 4 * HOUR));
    expect(r2.fan('a').level).toBe(5);
    expect(r2.fan('a').eligibleForNext).toBe(false);
  });

  it('recognition given before the rest also counts once the rest is met', () => {
    const r = run().apply(event('op_recognize', 'a', T0 - 30 * DAY));
    expect(r.fan('a').recognized).toBe(true);
    expect(r.fan('a').level).toBe(1);
  });

  it(`demotes a Lv4 fan below ${lv4Maintain.gte} interactions in ${lv4Maintain.windowDays} d at a midnight after the ${grace}-day grace`, () => {
    const r = run().apply(...interactions('a', lv4Maintain.gte, T0, HOUR), event('purchase', 'a', T0 + DAY, { orderId: 'o1', amount: 10 }));
    expect(r.fan('a').level).toBe(4);
    // Inside the grace period nothing happens even though activity stops.
    r.advance(T0 + DAY + (grace - 1) * DAY);
    expect(r.fan('a').level).toBe(4);
    // Interactions leave the window ~90 days after T0; the next midnight demotes by one level.
    r.advance(T0 + (lv4Maintain.windowDays + 2) * DAY);
    expect(r.fan('a').level).toBe(3);
    const demotion = r.out.derived.find((d) => d.type === 'LevelChanged' && (d as { kind: string }).kind === 'demotion') as { ts: number };
    const local = new Date(demotion.ts + 8 * HOUR).toISOString();
    expect(local.endsWith('T00:00:00.000Z')).toBe(true); // at a local midnight
  });

  it('Lv1–Lv3 never demote', () => {
    const r = run().apply(...interactions('a', lv3.gte, T0, HOUR));
    r.advance(T0 + 400 * DAY);
    expect(r.fan('a').level).toBe(3);
  });

  it(`a Lv5 fan below ${lv5Maintain.gte} in ${lv5Maintain.windowDays} d drops to Lv4 only`, () => {
    const r = run().apply(event('follow', 'a', T0 - DAY), event('op_lock_level', 'a', T0, { level: 5 }), event('op_lock_level', 'a', T0 + HOUR, { level: null }));
    expect(r.fan('a').level).toBe(5);
    r.advance(T0 + DAY); // one midnight
    expect(r.fan('a').level).toBe(4);
    r.advance(T0 + 2 * DAY); // the next one
    expect(r.fan('a').level).toBe(3);
  });

  it('a lock pins the level: no promotion, no demotion; lock changes are not promotions', () => {
    const r = run().apply(event('op_lock_level', 'a', T0, { level: 4 }));
    expect(r.fan('a').level).toBe(4);
    expect(r.fan('a').lastPromotionTs).toBeNull();
    r.advance(T0 + 200 * DAY);
    expect(r.fan('a').level).toBe(4);
    const r2 = run().apply(event('op_lock_level', 'b', T0, { level: 1 }), ...interactions('b', lv3.gte, T0 + HOUR, HOUR));
    expect(r2.fan('b').level).toBe(1);
    r2.apply(event('op_lock_level', 'b', T0 + DAY, { level: null }));
    expect(r2.fan('b').level).toBe(3); // unlocking triggers a promotion check
  });
});

describe('midnights skip fans found steady, never a demotion', () => {
  // Levels held by qualified referrals alone: only another fan's events change them.
  const byReferrals = programFromSpec((spec) => {
    for (const level of [1, 2, 3]) spec.levels[level].entry = { fact: 'qualifiedReferrals', gte: 1 };
    spec.levels[3].maintain = { fact: 'qualifiedReferrals', gte: 1 };
    spec.demotion.graceDays = 1;
  });

  it('demotes a referrer at the first midnight after its only referral is voided, though it was steady for days', () => {
    const start = [
      event('follow', 'ref', T0, { device: 'shared' }),
      // The same device as the referrer's: a self-referral, held for review.
      event('follow', 'new', T0 + HOUR, { referrer: 'ref', device: 'shared' }),
      event('purchase', 'new', T0 + 2 * HOUR, { orderId: 'o-1', amount: 120 }),
    ];
    const voided = event('op_review_referral', 'new', T0 + 5 * DAY + HOUR, { decision: 'void' });
    const results = [false, true].map((checkEveryMidnight) => {
      const r = run(byReferrals, { checkEveryMidnight });
      r.apply(...start);
      expect(r.fan('ref').level).toBe(4);
      expect(r.fan('new').referralReview).toBe('open');
      // Five midnights find the referrer's level maintained.
      r.advance(T0 + 5 * DAY);
      expect(r.fan('ref').level).toBe(4);
      r.apply(voided);
      r.advance(T0 + 8 * DAY);
      return r.out.derived.filter((change) => change.type === 'LevelChanged' && change.fan === 'ref');
    });
    expect(results[0]).toEqual(results[1]);
    const demotion = results[1].find((change) => change.type === 'LevelChanged' && change.kind === 'demotion');
    expect(demotion?.ts).toBe(Date.parse('2026-10-11T00:00:00+08:00'));
  });
});
