import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { verifyLedger } from '../src/core/ledger.js';
import { normalizeCode, referralCode } from '../src/core/referral-codes.js';
import { parseProgram, DEFAULT_PROGRAM_YAML } from '../src/core/program.js';
import { DAY, HOUR, T0, defaultProgram, event, programWith, run } from './helpers.js';

const program = defaultProgram();
const referral = program.referral;
const yuan = (value: number) => Math.round(value * 100);

/** Cash moved to (positive) or from (negative) one of the fan's cash accounts by rules matching `rule`. */
function cash(r: ReturnType<typeof run>, fan: string, bucket: 'pending' | 'available' | 'held', rule?: string): number {
  const account = `fan:${fan}:cash:${bucket}`;
  return r.out.postings
    .filter((p) => p.asset === 'cash' && (rule === undefined || p.rule === rule))
    .reduce((sum, p) => sum + (p.target === account ? p.amount : 0) - (p.source === account ? p.amount : 0), 0);
}

/** A referrer, a referee attributed by code, and the referee's first purchase. */
function referredPurchase(amount = 100, extra: { props?: Record<string, unknown> } = {}) {
  const r = run().apply(event('follow', 'p', T0 - DAY), event('like', 'p', T0 - DAY + HOUR));
  const code = r.fan('p').code;
  r.apply(event('follow', 'r', T0, { referralCode: code, ...extra.props }), event('purchase', 'r', T0 + HOUR, { orderId: 'o1', amount }));
  return r;
}

describe('referral codes (PRODUCT §5)', () => {
  it('are 10 unambiguous characters, stable per fan and salt, unrelated between neighbouring ids', () => {
    const a = referralCode('', 'u1');
    expect(a).toMatch(/^[0-9A-HJKMNP-TV-Z]{10}$/);
    expect(referralCode('', 'u1')).toBe(a);
    expect(referralCode('salt', 'u1')).not.toBe(a);
    const shared = [...a].filter((char, i) => referralCode('', 'u2')[i] === char).length;
    expect(shared).toBeLessThan(6);
  });

  it('are the first 50 bits of HMAC-SHA256(salt, id[#attempt]) in Crockford base 32, for any id and salt in any order', () => {
    const crockford = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    const reference = (salt: string, id: string, attempt: number) => {
      const digest = createHmac('sha256', salt).update(attempt === 0 ? id : `${id}#${attempt}`, 'utf8').digest();
      let bits = '';
      for (const byte of digest.subarray(0, 7)) bits += byte.toString(2).padStart(8, '0');
      return Array.from({ length: 10 }, (_, i) => crockford[parseInt(bits.slice(5 * i, 5 * i + 5), 2)]).join('');
    };
    const ids = ['u1', 'u000042', '', 'ファン-7', 'x'.repeat(600), 'é'.repeat(300), '😀'.repeat(200)];
    for (const salt of ['', 'salt', 'ファン', '']) {
      for (const id of ids) for (const attempt of [0, 1, 7]) expect(referralCode(salt, id, attempt)).toBe(reference(salt, id, attempt));
    }
  });

  it('read the way people type them: lower case, O for 0, I and L for 1, dashes', () => {
    const code = referralCode('', 'u7');
    const typed = `${code.slice(0, 5)}-${code.slice(5)}`.toLowerCase().replace(/0/g, 'o').replace(/1/g, 'l');
    expect(normalizeCode(typed)).toBe(code);
  });

  it('attribute a follow by code, and a fan id still works as a code', () => {
    const r = run().apply(event('follow', 'p', T0));
    r.apply(event('follow', 'a', T0 + 1, { referralCode: r.fan('p').code.toLowerCase() }), event('follow', 'b', T0 + 2, { referralCode: 'p' }));
    expect(r.fan('a').referrer).toBe('p');
    expect(r.fan('b').referrer).toBe('p');
    expect(r.fan('p').referees).toEqual(['a', 'b']);
  });
});

describe('two-sided rewards and commissions (PRODUCT §5 defaults)', () => {
  it('the referee gets the coupon on follow; the referrer the reward and 10 % on qualification, pending', () => {
    const r = referredPurchase(100);
    expect(r.fan('r').couponMinor).toBe(yuan(referral.refereeCoupon));
    expect(cash(r, 'p', 'pending', 'referral:reward')).toBe(yuan(referral.referrerReward));
    expect(cash(r, 'p', 'pending', 'referral:commission')).toBe(yuan(100 * 0.1));
    expect(r.fan('p').cashPending).toBe(yuan(20 + 10));
    expect(r.fan('p').cashAvailable).toBe(0);
  });

  it('the next 3 purchases pay 5 %, later ones nothing', () => {
    const r = referredPurchase(100);
    for (let i = 2; i <= 6; i++) r.apply(event('purchase', 'r', T0 + i * HOUR, { orderId: `o${i}`, amount: 200 }));
    expect(cash(r, 'p', 'pending', 'referral:commission')).toBe(yuan(10 + 3 * 200 * 0.05));
  });

  it('cash becomes available when the refund window ends, at the instant', () => {
    const r = referredPurchase(100);
    const due = T0 + HOUR + referral.refundWindowDays * DAY;
    r.advance(due - 1);
    expect(r.fan('p').cashAvailable).toBe(0);
    r.advance(due);
    expect(r.fan('p').cashAvailable).toBe(yuan(30));
    expect(r.fan('p').cashPending).toBe(0);
  });

  it('a refund in the window voids the commission pro rata; a full refund voids the reward too', () => {
    const r = referredPurchase(100);
    r.apply(event('refund', 'r', T0 + 2 * HOUR, { orderId: 'o1', amount: 40 }));
    expect(r.fan('p').cashPending).toBe(yuan(20 + 6));
    expect(r.fan('p').cashVoided).toBe(yuan(4));
    r.apply(event('refund', 'r', T0 + 3 * HOUR, { orderId: 'o1', amount: 60 }));
    expect(r.fan('p').cashPending).toBe(0);
    expect(r.fan('p').cashVoided).toBe(yuan(30));
  });

  it('a referee\'s purchase of amount 0 pays no commission, and its refund (a full one) voids the reward', () => {
    const r = referredPurchase(0);
    expect(cash(r, 'p', 'pending', 'referral:commission')).toBe(0);
    r.apply(event('refund', 'r', T0 + 2 * HOUR, { orderId: 'o1', amount: 0 }));
    expect(r.fan('p').cashPending).toBe(0);
    expect(r.fan('p').cashVoided).toBe(r.fan('p').cashItems.reduce((sum, item) => sum + item.base, 0));
    expect(verifyLedger(r.out.postings, r.world.fans.values()).ok).toBe(true);
  });

  it('a refund after payout claws back from available cash, never edits a posting', () => {
    const r = referredPurchase(100);
    r.advance(T0 + 8 * DAY);
    r.apply(event('op_payout', 'p', T0 + 8 * DAY + 1, { payoutId: 'run-1', amount: 30 }));
    const before = r.out.postings.map((p) => ({ ...p }));
    r.apply(event('refund', 'r', T0 + 9 * DAY, { orderId: 'o1', amount: 100 }));
    expect(r.out.postings.slice(0, before.length)).toEqual(before);
    const clawback = r.out.postings.filter((p) => p.rule === 'clawback:refund');
    expect(clawback).toHaveLength(1);
    expect(clawback[0]).toMatchObject({ source: 'fan:p:cash:available', target: 'program:cash:issued', amount: yuan(10) });
    expect(r.fan('p').cashPaid).toBe(yuan(30));
    expect(r.fan('p').cashAvailable).toBe(-yuan(10));
  });

  it('pays 2 % one level up when depth is 2, and nothing beyond', () => {
    const r = run().apply(event('follow', 'g', T0 - 3 * DAY));
    r.apply(event('follow', 'p', T0 - 2 * DAY, { referrer: 'g' }), event('purchase', 'p', T0 - 2 * DAY + HOUR, { orderId: 'op', amount: 10 }));
    r.apply(event('follow', 'c', T0 - DAY, { referrer: 'p' }), event('purchase', 'c', T0 - DAY + HOUR, { orderId: 'oc', amount: 10 }));
    r.apply(event('follow', 'x', T0, { referrer: 'c' }), event('purchase', 'x', T0 + HOUR, { orderId: 'ox', amount: 1000 }));
    expect(cash(r, 'c', 'pending', 'referral:commission')).toBe(yuan(100));
    expect(cash(r, 'p', 'pending', 'referral:indirect')).toBe(yuan(1000 * 0.02));
    // g is three levels above x: beyond the default depth of 2.
    expect(cash(r, 'g', 'pending', 'referral:indirect')).toBe(yuan(10 * 0.02));
  });

  it('milestones pay once at 3, 5 and 10 qualified referrals, with their badges', () => {
    const r = run().apply(event('follow', 'p', T0 - DAY));
    for (let i = 1; i <= 10; i++) {
      r.apply(event('follow', `f${i}`, T0 + i * HOUR, { referrer: 'p' }), event('purchase', `f${i}`, T0 + i * HOUR + 1, { orderId: `o${i}`, amount: 1 }));
    }
    expect(cash(r, 'p', 'pending', 'referral:milestone')).toBe(yuan(50 + 150 + 500));
    expect(r.fan('p').badges).toEqual(expect.arrayContaining(['koc-certified', 'core-group', 'product-tester', 'referral-expert']));
  });

  it('a fan who bought before the follow is not attributed; nor is a follow naming an unknown fan', () => {
    const r = run().apply(event('follow', 'p', T0), event('purchase', 'b', T0 + 1, { orderId: 'ob', amount: 5 }));
    r.apply(event('follow', 'b', T0 + 2, { referrer: 'p' }), event('follow', 'c', T0 + 3, { referralCode: 'NOPE' }));
    expect(r.fan('b').referrer).toBeNull();
    expect(r.fan('c').referrer).toBeNull();
    expect(r.fan('p').cashPending).toBe(0);
  });
});

describe('fraud holds and review (PRODUCT §5)', () => {
  it('a referee on the referrer’s device is held: no coupon, cash held at the window’s end, released on review', () => {
    const r = run().apply(event('follow', 'p', T0 - DAY, { device: 'dev-1' }));
    r.apply(event('follow', 's', T0, { referrer: 'p', device: 'dev-1' }), event('purchase', 's', T0 + HOUR, { orderId: 'o1', amount: 100 }));
    expect(r.fan('s').referralFlags[0]).toMatch(/self-referral: device dev-1/);
    expect(r.world.reviewQueue).toEqual(['s']);
    expect(r.fan('s').couponMinor).toBe(0);
    r.advance(T0 + 8 * DAY);
    expect(r.fan('p').cashHeld).toBe(yuan(30));
    expect(r.fan('p').cashAvailable).toBe(0);
    r.apply(event('op_review_referral', 's', T0 + 9 * DAY, { decision: 'release' }));
    expect(r.fan('p').cashAvailable).toBe(yuan(30));
    expect(r.fan('s').couponMinor).toBe(yuan(20));
    expect(r.world.reviewQueue).toEqual([]);
  });

  it('a voided review returns held cash to the programme and pays nothing more for that referral', () => {
    const r = run().apply(event('follow', 'p', T0 - DAY, { ip: '10.0.0.9' }));
    r.apply(event('follow', 's', T0, { referrer: 'p', ip: '10.0.0.9' }), event('purchase', 's', T0 + HOUR, { orderId: 'o1', amount: 100 }));
    r.apply(event('op_review_referral', 's', T0 + 2 * HOUR, { decision: 'void' }));
    r.apply(event('purchase', 's', T0 + 3 * HOUR, { orderId: 'o2', amount: 100 }));
    r.advance(T0 + 10 * DAY);
    expect(r.fan('p').cashPending + r.fan('p').cashAvailable + r.fan('p').cashHeld).toBe(0);
    expect(r.fan('p').cashVoided).toBe(yuan(30));
    // It no longer counts as a qualified referral of p.
    expect(r.fan('p').qualifiedReferralTs).toEqual([]);
  });

  it('referees sharing a device, and bursts of referrals, are flagged with the evidence', () => {
    const r = run().apply(event('follow', 'p', T0 - DAY));
    r.apply(event('follow', 'a', T0, { referrer: 'p', device: 'phone-9' }), event('follow', 'b', T0 + 1000, { referrer: 'p', device: 'phone-9' }));
    expect(r.fan('a').referralFlags).toEqual([]);
    expect(r.fan('b').referralFlags).toEqual(['shared device: device phone-9 is also referee a\'s']);
    for (let i = 0; i < 4; i++) r.apply(event('follow', `z${i}`, T0 + 2000 + i * 1000, { referrer: 'p' }));
    expect(r.fan('z2').referralFlags).toEqual([expect.stringMatching(/^burst: 5 referrals/)]);
    expect(r.fan('z1').referralFlags).toEqual([]);
  });

  it('a review of a fan with nothing under review is inapplicable', () => {
    const r = run().apply(event('follow', 'p', T0), event('op_review_referral', 'p', T0 + 1, { decision: 'release' }));
    expect(r.out.derived.some((d) => d.type === 'Inapplicable' && /no referral under review/.test(d.reason))).toBe(true);
  });
});

describe('redemption and payout events', () => {
  it('a redemption debits points to the redeemed account and counts stock; the ledger stays balanced', () => {
    const r = run().apply(event('op_adjust_points', 'a', T0, { points: 300 }), event('redeem', 'a', T0 + 1, { requestId: 'q1', item: 'coupon-20', points: 200 }));
    expect(r.fan('a').pointsBalance).toBe(100);
    expect(r.fan('a').redeemed).toEqual({ 'coupon-20': 1 });
    expect(r.world.stockUsed).toEqual({ 'coupon-20': 1 });
    const check = verifyLedger(r.out.postings, r.world.fans.values());
    expect(check).toMatchObject({ ok: true, negativeAccounts: [], mismatchedFans: [] });
  });
});

describe('compliance in the program (PRODUCT §5)', () => {
  it('a depth above 3 is rejected with the field named', () => {
    const parsed = parseProgram(DEFAULT_PROGRAM_YAML.replace('  depth: 2', '  depth: 4'));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.issues[0]).toMatchObject({ path: 'referral.depth', message: expect.stringMatching(/at most 3/) });
  });

  it('indirect rates beyond the depth are rejected', () => {
    const parsed = parseProgram(DEFAULT_PROGRAM_YAML.replace('indirectPercent: [2]', 'indirectPercent: [2, 1]'));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.issues[0].path).toBe('referral.commission.indirectPercent');
  });

  it('milestone rewards for recruiting alone (qualify on follow) are rejected', () => {
    const parsed = parseProgram(DEFAULT_PROGRAM_YAML.replace('qualifyOn: purchase', 'qualifyOn: follow'));
    expect(parsed.ok).toBe(false);
    if (!parsed.ok) expect(parsed.issues.map((issue) => issue.path)).toContain('referral.milestones[0].reward');
  });

  it('depth 3 pays a second level up', () => {
    const p3 = programWith((yaml) => yaml.replace('  depth: 2', '  depth: 3').replace('indirectPercent: [2]', 'indirectPercent: [2, 1]'));
    const r = run(p3).apply(event('follow', 'g', T0 - 3 * DAY));
    r.apply(event('follow', 'p', T0 - 2 * DAY, { referrer: 'g' }), event('purchase', 'p', T0 - 2 * DAY + HOUR, { orderId: 'op', amount: 10 }));
    r.apply(event('follow', 'c', T0 - DAY, { referrer: 'p' }), event('purchase', 'c', T0 - DAY + HOUR, { orderId: 'oc', amount: 10 }));
    r.apply(event('follow', 'x', T0, { referrer: 'c' }), event('purchase', 'x', T0 + HOUR, { orderId: 'ox', amount: 1000 }));
    expect(cash(r, 'g', 'pending', 'referral:indirect')).toBe(yuan(10 * 0.02) + yuan(1000 * 0.01));
  });
});

describe('the referral tree', () => {
  it('has no cycle: a fan cannot be attributed to a fan it referred, directly or further down', () => {
    const r = run().apply(event('like', 'b', T0), event('follow', 'a', T0 + 1, { referrer: 'b' }), event('follow', 'c', T0 + 2, { referrer: 'a' }));
    r.apply(event('follow', 'b', T0 + 3, { referrer: 'c' }));
    expect(r.fan('b').referrer).toBeNull();
    expect(r.fan('c').referrer).toBe('a');
  });
});

describe('task fission campaigns (seed 002)', () => {
  const withCampaign = programWith((yaml) =>
    yaml.replace('  campaigns: []', `  campaigns:\n    - { id: poster-5, title: Poster task, from: "2026-10-05T00:00:00+08:00", to: "2026-10-12T00:00:00+08:00", newFollowers: 3, rewardPoints: 500, rewardCash: 30 }`),
  );

  it('rewards a referrer once at N genuinely new followers within the dates; suspect and out-of-window follows do not count', () => {
    const r = run(withCampaign).apply(event('follow', 'p', T0 - 2 * DAY, { device: 'own' }));
    r.apply(event('follow', 'early', T0 - DAY, { referrer: 'p' })); // before the campaign
    r.apply(event('follow', 'a', T0, { referrer: 'p' }), event('follow', 'sock', T0 + HOUR, { referrer: 'p', device: 'own' }));
    r.apply(event('follow', 'b', T0 + DAY, { referrer: 'p' }));
    expect(r.points('p', 'campaign:poster-5')).toBe(0);
    r.apply(event('follow', 'c', T0 + 2 * DAY, { referrer: 'p' }), event('follow', 'd', T0 + 3 * DAY, { referrer: 'p' }));
    expect(r.points('p', 'campaign:poster-5')).toBe(500);
    expect(cash(r, 'p', 'pending', 'referral:campaign')).toBe(yuan(30));
    expect(r.fan('p').campaigns).toEqual({ 'poster-5': 4 });
    expect(r.world.campaignStats['poster-5']).toEqual({ participants: 1, completed: 1, newFollowers: 4, rewardPoints: 500, rewardCashMinor: 3000 });
  });

  it('are validated: dates, order and unique ids', () => {
    const bad = parseProgram(DEFAULT_PROGRAM_YAML.replace('  campaigns: []', `  campaigns:\n    - { id: x, from: "2026-10-12T00:00:00+08:00", to: "2026-10-05T00:00:00+08:00", newFollowers: 3 }\n    - { id: x, from: "soon", to: "2026-10-05T00:00:00+08:00", newFollowers: 3 }`));
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.issues.map((issue) => issue.path).sort()).toEqual(['referral.campaigns[0].to', 'referral.campaigns[1].from', 'referral.campaigns[1].id']);
  });
});

describe('fraud rules that look at what the referee did', () => {
  it('holds the cash of a referral whose referee never acted by the end of the refund window (qualify on follow)', () => {
    const onFollow = programWith((yaml) => yaml.replace('qualifyOn: purchase', 'qualifyOn: follow').replace(/reward: (50|150|500)/g, 'reward: 0'));
    const r = run(onFollow).apply(event('follow', 'p', T0 - DAY), event('follow', 'idle', T0, { referrer: 'p' }), event('follow', 'active', T0 + 1, { referrer: 'p' }), event('like', 'active', T0 + DAY));
    r.advance(T0 + 8 * DAY);
    expect(r.fan('idle').referralFlags).toEqual([expect.stringMatching(/^never acted/)]);
    expect(r.fan('active').referralFlags).toEqual([]);
    expect(r.fan('p').cashHeld).toBe(yuan(20));
    expect(r.fan('p').cashAvailable).toBe(yuan(20));
    expect(r.world.reviewQueue).toEqual(['idle']);
  });

  it('holds a referral whose qualifying purchase fits in the coupon, when couponOnly is on', () => {
    const strict = programWith((yaml) => yaml.replace('couponOnly: false', 'couponOnly: true'));
    const r = run(strict).apply(event('follow', 'p', T0 - DAY), event('follow', 'c', T0, { referrer: 'p' }), event('purchase', 'c', T0 + HOUR, { orderId: 'o1', amount: 19.9 }));
    r.apply(event('follow', 'b', T0 + 1, { referrer: 'p' }), event('purchase', 'b', T0 + 2 * HOUR, { orderId: 'o2', amount: 120 }));
    expect(r.fan('c').referralFlags).toEqual([expect.stringMatching(/^coupon-only: the qualifying purchase 19.90/)]);
    expect(r.fan('b').referralFlags).toEqual([]);
    r.advance(T0 + 8 * DAY);
    expect(r.fan('p').cashHeld).toBe(yuan(20 + 1.99));
  });
});

describe('ring rule', () => {
  it('holds the referral that completes a chain of fans each buying once only to qualify and referring only the next', () => {
    const r = run().apply(event('follow', 'top', T0 - DAY), event('like', 'top', T0 - DAY + 1), event('purchase', 'top', T0 - DAY + 2, { orderId: 't1', amount: 50 }), event('purchase', 'top', T0 - DAY + 3, { orderId: 't2', amount: 50 }));
    let above = 'top';
    for (let k = 1; k <= 5; k++) {
      r.apply(event('follow', `k${k}`, T0 + k * DAY, { referrer: above }), event('purchase', `k${k}`, T0 + k * DAY + HOUR, { orderId: `o${k}`, amount: 9.9 }));
      above = `k${k}`;
    }
    expect(r.fan('k3').referralFlags).toEqual([]);
    expect(r.fan('k4').referralFlags).toEqual(['ring: k1 → k2 → k3 → k4 each bought once, only to qualify, and referred only the next']);
    expect(r.fan('k5').referralFlags).toHaveLength(1);
    // A fan of the chain that buys again breaks the pattern for those below it.
    r.apply(event('purchase', 'k5', T0 + 7 * DAY, { orderId: 'again', amount: 80 }), event('follow', 'k6', T0 + 8 * DAY, { referrer: 'k5' }), event('purchase', 'k6', T0 + 8 * DAY + HOUR, { orderId: 'o6', amount: 30 }));
    expect(r.fan('k6').referralFlags).toEqual([]);
  });
});
