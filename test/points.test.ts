import { describe, expect, it } from 'vitest';
import { DAY, HOUR, T0, defaultProgram, event, interactions, run } from './helpers.js';

const program = defaultProgram();
const daily = program.points.daily;
const weekly = program.points.weekly;
const perEvent = program.points.perEvent;
const oneTime = (id: string) => program.points.oneTime.find((rule) => rule.id === id)!.points;
const multiplier = (level: number) => program.levels[level - 1].pointsMultiplier;

describe('points (PRODUCT §3.2)', () => {
  it('daily lines pay per event up to the daily cap per type; events over the cap still count', () => {
    const cap = daily.like!.capPerDay;
    const r = run().apply(event('op_lock_level', 'a', T0 - HOUR, { level: 1 }), ...interactions('a', cap + 3, T0, 60_000));
    expect(r.points('a', 'daily:like')).toBe(cap * daily.like!.points);
    expect(r.fan('a').interactionsEver).toBe(cap + 3);
    // The next local day pays again.
    r.apply(...interactions('a', 1, T0 + DAY));
    expect(r.points('a', 'daily:like')).toBe((cap + 1) * daily.like!.points);
  });

  it('check-in pays once a day', () => {
    const r = run().apply(event('checkin', 'a', T0), event('checkin', 'a', T0 + HOUR));
    expect(r.points('a', 'daily:checkin')).toBe(daily.checkin!.points * daily.checkin!.capPerDay);
  });

  it('daily, weekly and per-event lines use the multiplier of the level held just before the event, floored', () => {
    const r = run().apply(event('op_lock_level', 'a', T0 - HOUR, { level: 2 }), event('comment', 'a', T0));
    expect(r.points('a', 'daily:comment')).toBe(Math.floor(daily.comment!.points * multiplier(2)));
    r.apply(event('purchase', 'a', T0 + HOUR, { orderId: 'o1', amount: 123.45 }));
    expect(r.points('a', 'perEvent:purchase')).toBe(Math.floor(123.45 * (perEvent.purchasePercent / 100) * multiplier(2)));
  });

  it(`the ${weekly.nthInteraction.n}th interaction of an ISO week pays once`, () => {
    const r = run().apply(event('op_lock_level', 'a', T0 - HOUR, { level: 1 }), ...interactions('a', weekly.nthInteraction.n * 2, T0, HOUR, 'comment'));
    expect(r.points('a', 'weekly:nthInteraction')).toBe(weekly.nthInteraction.points);
    // T0 is a Monday: next Monday starts a new week.
    r.apply(...interactions('a', weekly.nthInteraction.n, T0 + 7 * DAY, HOUR, 'comment'));
    expect(r.points('a', 'weekly:nthInteraction')).toBe(2 * weekly.nthInteraction.points);
  });

  it('the first purchase-share submission of a week pays once', () => {
    const r = run().apply(
      event('content_submit', 'a', T0, { contentId: 'c1', kind: 'purchase_share' }),
      event('content_submit', 'a', T0 + HOUR, { contentId: 'c2', kind: 'purchase_share' }),
      event('content_submit', 'a', T0 + 2 * HOUR, { contentId: 'c3', kind: 'note' }),
    );
    expect(r.points('a', 'weekly:firstPurchaseShare')).toBe(weekly.firstPurchaseShare.points);
  });

  it('one-time awards pay once, unmultiplied: first interaction, first purchase, profile complete across events', () => {
    const r = run().apply(event('op_lock_level', 'a', T0 - HOUR, { level: 5 }), event('like', 'a', T0), event('like', 'a', T0 + HOUR));
    expect(r.points('a', 'oneTime:firstInteraction')).toBe(oneTime('firstInteraction'));
    r.apply(event('purchase', 'a', T0 + 2 * HOUR, { orderId: 'o1', amount: 1 }));
    expect(r.points('a', 'oneTime:firstPurchase')).toBe(oneTime('firstPurchase'));
    r.apply(event('profile', 'a', T0 + 3 * HOUR, { age: 30, gender: 'female' }));
    expect(r.points('a', 'oneTime:profileComplete')).toBe(0);
    r.apply(event('profile', 'a', T0 + 4 * HOUR, { region: 'Shanghai' }));
    expect(r.points('a', 'oneTime:profileComplete')).toBe(oneTime('profileComplete'));
    r.apply(event('profile', 'a', T0 + 5 * HOUR, { region: null }), event('profile', 'a', T0 + 6 * HOUR, { region: 'Beijing' }));
    expect(r.points('a', 'oneTime:profileComplete')).toBe(oneTime('profileComplete'));
  });

  it('the first selection of each content pays; selecting it again pays and counts nothing', () => {
    const r = run().apply(event('content_select', 'a', T0, { contentId: 'c1' }), event('content_select', 'a', T0 + HOUR, { contentId: 'c1' }));
    expect(r.points('a', 'perEvent:contentFirstSelected')).toBe(perEvent.contentFirstSelected);
    expect(r.fan('a').selectedCount).toBe(1);
  });

  it('refunds reverse floor(awarded × refunded so far / amount), cumulatively, capped at the order amount', () => {
    const r = run().apply(event('op_lock_level', 'a', T0 - HOUR, { level: 1 }), event('purchase', 'a', T0, { orderId: 'o1', amount: 333 }));
    const awarded = Math.floor(333 * (perEvent.purchasePercent / 100));
    expect(r.points('a', 'perEvent:purchase')).toBe(awarded);
    r.apply(event('refund', 'a', T0 + DAY, { orderId: 'o1', amount: 100 }));
    expect(-r.points('a', 'reversal:purchase')).toBe(Math.floor((awarded * 100) / 333));
    r.apply(event('refund', 'a', T0 + 2 * DAY, { orderId: 'o1', amount: 100 }));
    expect(-r.points('a', 'reversal:purchase')).toBe(Math.floor((awarded * 200) / 333));
    r.apply(event('refund', 'a', T0 + 3 * DAY, { orderId: 'o1', amount: 500 }));
    expect(-r.points('a', 'reversal:purchase')).toBe(awarded);
    // One-time awards stay; a fully refunded order stops counting as a purchase.
    expect(r.points('a', 'oneTime:firstPurchase')).toBe(oneTime('firstPurchase'));
    expect(r.fan('a').orders[0].refundedMinor).toBe(33300);
  });

  it('a purchase of amount 0 earns no purchase points, and its refund takes none back', () => {
    const r = run().apply(event('purchase', 'a', T0, { orderId: 'o0', amount: 0 }), event('refund', 'a', T0 + HOUR, { orderId: 'o0', amount: 0 }));
    expect(r.points('a', 'perEvent:purchase')).toBe(0);
    expect(r.points('a', 'reversal:purchase')).toBe(0);
    expect(Number.isInteger(r.fan('a').pointsBalance)).toBe(true);
    expect(r.out.postings.every((p) => Number.isSafeInteger(p.amount) && p.amount > 0)).toBe(true);
  });

  it('operator adjustments add their integer as is and may make the balance negative', () => {
    const r = run().apply(event('op_lock_level', 'a', T0 - HOUR, { level: 5 }), event('op_adjust_points', 'a', T0, { points: -7 }));
    expect(r.fan('a').pointsBalance).toBe(-7);
  });

  it('every posting moves points between the programme account and a fan account', () => {
    const r = run().apply(...interactions('a', 20, T0, HOUR), event('purchase', 'a', T0 + DAY, { orderId: 'o', amount: 50 }), event('refund', 'a', T0 + 2 * DAY, { orderId: 'o', amount: 50 }));
    for (const p of r.out.postings) {
      expect([p.source, p.target].sort()).toEqual(['fan:a', 'program:points:issued']);
      expect(p.amount).toBeGreaterThan(0);
      expect(Number.isInteger(p.amount)).toBe(true);
    }
    expect(r.points('a')).toBe(r.fan('a').pointsBalance);
  });
});

describe('referrals (PRODUCT §2, §5)', () => {
  it('attributes only the first follow, to a known fan other than the referee who has not bought', () => {
    const r = run().apply(
      event('follow', 'boss', T0),
      event('follow', 'x', T0 + HOUR, { referrer: 'boss' }),
      event('follow', 'y', T0 + HOUR, { referralCode: 'ghost' }),
      event('follow', 'z', T0 + HOUR, { referrer: 'z' }),
      event('purchase', 'w', T0 + HOUR, { orderId: 'ow', amount: 5 }),
      event('follow', 'w', T0 + 2 * HOUR, { referrer: 'boss' }),
      event('unfollow', 'v', T0 + HOUR),
      event('follow', 'v', T0 + 2 * HOUR),
      event('follow', 'v', T0 + 3 * HOUR, { referrer: 'boss' }),
    );
    expect(r.fan('x').referrer).toBe('boss');
    expect(r.fan('y').referrer).toBeNull();
    expect(r.fan('z').referrer).toBeNull();
    expect(r.fan('w').referrer).toBeNull();
    expect(r.fan('v').referrer).toBeNull();
  });

  it('qualifies at the referee’s first purchase; the referrer earns weekly, one-time and 5 % lines', () => {
    const r = run().apply(event('op_lock_level', 'boss', T0 - DAY, { level: 1 }), event('follow', 'x', T0, { referrer: 'boss' }), event('purchase', 'x', T0 + HOUR, { orderId: 'o1', amount: 200 }));
    expect(r.fan('x').qualifiedTs).toBe(T0 + HOUR);
    expect(r.fan('boss').qualifiedReferralTs).toEqual([T0 + HOUR]);
    expect(r.points('boss', 'weekly:firstReferralQualified')).toBe(weekly.firstReferralQualified.points);
    expect(r.points('boss', 'oneTime:firstQualifiedReferral')).toBe(oneTime('firstQualifiedReferral'));
    expect(r.points('boss', 'perEvent:referralPurchase')).toBe(Math.floor(200 * (perEvent.referralPurchasePercent / 100)));
    r.apply(event('purchase', 'x', T0 + 2 * HOUR, { orderId: 'o2', amount: 100 }), event('refund', 'x', T0 + DAY, { orderId: 'o2', amount: 50 }));
    expect(r.points('boss', 'perEvent:referralPurchase')).toBe(10 + 5);
    expect(r.points('boss', 'reversal:referralPurchase')).toBe(-Math.floor((5 * 50) / 100));
    expect(r.fan('boss').qualifiedReferralTs).toHaveLength(1);
  });
});

describe('inapplicable events (PRODUCT §2)', () => {
  it('a reused orderId, an unknown order and another fan’s order are logged as inapplicable and change nothing', () => {
    const r = run().apply(
      event('purchase', 'a', T0, { orderId: 'o1', amount: 10 }),
      event('purchase', 'b', T0 + HOUR, { orderId: 'o1', amount: 10 }),
      event('refund', 'a', T0 + HOUR, { orderId: 'nope', amount: 1 }),
      event('refund', 'b', T0 + 2 * HOUR, { orderId: 'o1', amount: 10 }),
    );
    const reasons = r.out.derived.filter((d) => d.type === 'Inapplicable').map((d) => (d as { reason: string }).reason);
    expect(reasons).toHaveLength(3);
    expect(r.fan('b').orders).toHaveLength(0);
    expect(r.fan('a').orders[0].refundedMinor).toBe(0);
    expect(r.fan('b').pointsBalance).toBe(0);
  });
});
