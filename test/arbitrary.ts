import fc from 'fast-check';
import { validateEvent, type FanEvent } from '../src/core/events.js';

const BASE = Date.parse('2026-03-01T00:00:00+08:00');
const TYPES = [
  'follow', 'follow', 'unfollow', 'view', 'like', 'like', 'collect', 'comment', 'share', 'share', 'checkin', 'message',
  'purchase', 'purchase', 'refund', 'content_submit', 'content_select', 'post', 'group_join', 'group_message', 'gift',
  'nps', 'profile', 'test_feedback', 'vote', 'op_recognize', 'op_lock_level', 'op_adjust_points', 'op_grant_badge',
  'redeem', 'op_payout', 'op_review_referral',
] as const;

const spec = fc.record({
  type: fc.constantFrom(...TYPES),
  fan: fc.integer({ min: 0, max: 5 }),
  other: fc.integer({ min: 0, max: 5 }),
  minutes: fc.integer({ min: 0, max: 200 * 24 * 60 }),
  amount: fc.integer({ min: 0, max: 50_000 }),
  order: fc.integer({ min: 0, max: 6 }),
  small: fc.integer({ min: 0, max: 10 }),
});

/** Raw event objects (the JSON a client sends) for a handful of fans over ~200 days. */
export const rawEvents = rawEventsWith({ minLength: 1, maxLength: 120 });

/** Raw events as above, as many as asked, over 200 days divided by `compress`. */
export function rawEventsWith(constraints: { minLength: number; maxLength: number }, compress = 1) {
  return fc.array(spec, constraints).map((specs) => specs.map((s, index) => rawEvent(s, index, compress)));
}

function rawEvent(s: typeof spec extends fc.Arbitrary<infer T> ? T : never, index: number, compress: number): Record<string, unknown> {
  const raw: Record<string, unknown> = { id: `x-${index}`, type: s.type, ts: BASE + Math.floor((s.minutes * 60_000) / compress) };
  const fan = `f${s.fan}`;
  if (s.type !== 'post') raw.fan = fan;
  const amount = s.amount / 100;
  switch (s.type) {
    case 'follow':
      if (s.other !== s.fan && s.small % 2 === 0) raw.props = { referrer: `f${s.other}`, device: `d${s.order % 3}` };
      else raw.props = { device: `d${s.order % 3}` };
      break;
    case 'redeem':
      raw.props = { requestId: `q${index}`, item: s.small % 2 ? 'coupon-5' : 'coupon-20', points: s.small % 2 ? 50 : 200 };
      break;
    case 'op_payout':
      raw.props = { payoutId: `run${s.small % 2}`, amount: Math.floor(s.amount / 10) / 100 };
      break;
    case 'op_review_referral':
      raw.props = { decision: s.small % 2 ? 'release' : 'void' };
      break;
    case 'purchase':
      raw.props = { orderId: `o${s.order}`, amount, series: `s${s.small % 3}` };
      break;
    case 'refund':
      raw.props = { orderId: `o${s.order}`, amount };
      break;
    case 'content_submit':
      raw.props = { contentId: `c${s.order}`, kind: s.small % 2 ? 'purchase_share' : 'note' };
      break;
    case 'content_select':
      raw.props = { contentId: `c${s.order}` };
      break;
    case 'post':
      raw.props = { contentId: `p${index}`, category: 'guide' };
      break;
    case 'group_join':
    case 'group_message':
      raw.props = { groupId: `g${s.small % 2}` };
      break;
    case 'gift':
      raw.props = { amount, streamId: 's1' };
      break;
    case 'nps':
      raw.props = { score: s.small };
      break;
    case 'profile':
      raw.props = { age: 20 + s.small, gender: s.small % 2 ? 'female' : 'male', region: s.small > 5 ? 'Shanghai' : null };
      break;
    case 'test_feedback':
      raw.props = { productId: 'p', score: 1 + (s.small % 5) };
      break;
    case 'vote':
      raw.props = { pollId: 'poll', option: 'A' };
      break;
    case 'op_lock_level':
      raw.props = { level: s.small > 5 ? null : 1 + (s.small % 5) };
      break;
    case 'op_adjust_points':
      raw.props = { points: s.amount - 25_000 };
      break;
    case 'op_grant_badge':
      raw.props = { badge: 'tester' };
      break;
    default:
      if (['view', 'like', 'collect', 'comment', 'share'].includes(s.type)) raw.props = { contentId: `p${s.order}`, category: `cat${s.small % 3}` };
  }
  return raw;
}

export function toEvents(raws: Record<string, unknown>[]): FanEvent[] {
  return raws.map((raw) => {
    const result = validateEvent(raw);
    if (!result.ok) throw new Error(`arbitrary produced an invalid event: ${JSON.stringify(result.issues)}`);
    return result.event;
  });
}
