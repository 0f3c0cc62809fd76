/**
 * Purchases, refunds and referral qualification (PRODUCT §2, §3.2): the order book, purchase and
 * referral points, and their pro-rata reversal.
 */
import { refundedShare } from './facts.js';
import type { EngineContext } from './engine-context.js';
import type { EngineOutput } from './engine-output.js';
import type { FanEvent } from './events.js';
import { percentPoints, type PointRules } from './points.js';
import type { ReferralRules } from './referral.js';
import type { FanState, Order, World } from './state.js';

export type AfterFanChange = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => void;

export interface OrderRules {
  /** The referee's referral qualifies at `event` (its first purchase, or the follow). */
  qualifyReferral(world: World, referee: FanState, event: FanEvent, order: Order | null, out: EngineOutput): void;
  purchaseProblem(world: World, event: FanEvent): string | null;
  applyPurchase(world: World, fan: FanState, event: FanEvent, out: EngineOutput): void;
  /** Applies a refund, or returns why it cannot apply. */
  applyRefund(world: World, fan: FanState, event: FanEvent, out: EngineOutput): string | null;
}

export function createOrderRules(context: EngineContext, points: PointRules, referral: ReferralRules, afterFanChange: AfterFanChange): OrderRules {
  const { program, multipliers, monthOf, award } = context;
  const { checkOneTime, weeklyOnce } = points;

  const qualifyReferral = (world: World, referee: FanState, event: FanEvent, order: Order | null, out: EngineOutput) => {
    referee.qualifiedTs = event.ts;
    const referrer = world.fans.get(referee.referrer as string) as FanState;
    out.touched.add(referrer.id);
    referrer.qualifiedReferralTs.push(event.ts);
    context.factsChanged(world, referrer.id);
    out.derived.push({ type: 'ReferralQualified', fan: referrer.id, referee: referee.id, ts: event.ts, eventId: event.id });
    weeklyOnce(world, referrer, 'firstReferralQualified', program.points.weekly.firstReferralQualified.points, event, out);
    checkOneTime(world, referrer, 'qualifiedReferrals', event, out);
    referral.onQualified(world, referee, referrer, event, order, out);
    afterFanChange(world, referrer, event, out);
  };

  const applyPurchase = (world: World, fan: FanState, event: FanEvent, out: EngineOutput): void => {
    const orderId = event.props.orderId as string;
    world.orders.set(orderId, fan.id);
    const series = typeof event.props.series === 'string' ? event.props.series : null;
    const order: Order = {
      orderId, ts: event.ts, amountMinor: event.amountMinor, refundedMinor: 0, series,
      pointsAwarded: 0, pointsReversed: 0, referrer: null, referrerPointsAwarded: 0, referrerPointsReversed: 0, cash: [],
    };
    const firstEver = fan.purchasesEver === 0;
    fan.orders.push(order);
    fan.purchasesEver++;
    const month = monthOf(world, event.ts);
    month.revenueMinor += event.amountMinor;
    world.revenueToDateMinor += event.amountMinor;
    if (firstEver) {
      month.newBuyers++;
      world.buyersToDate++;
      if (fan.referrer !== null) month.referredNewBuyers++;
    }
    order.pointsAwarded = percentPoints(event.amountMinor, program.points.perEvent.purchasePercent, multipliers[fan.level - 1]);
    award(world, fan, order.pointsAwarded, 'perEvent:purchase', event, out);
    checkOneTime(world, fan, 'purchases', event, out);
    if (fan.referrer !== null && fan.qualifiedTs === null && (fan.attributedTs as number) <= event.ts) {
      qualifyReferral(world, fan, event, order, out);
    }
    if (fan.qualifiedTs !== null && fan.referrer !== null) {
      const referrer = world.fans.get(fan.referrer) as FanState;
      out.touched.add(referrer.id);
      order.referrer = referrer.id;
      order.referrerPointsAwarded = percentPoints(event.amountMinor, program.points.perEvent.referralPurchasePercent, multipliers[referrer.level - 1]);
      award(world, referrer, order.referrerPointsAwarded, 'perEvent:referralPurchase', event, out);
      referral.onPurchase(world, fan, order, event, out);
    }
  };

  const applyRefund = (world: World, fan: FanState, event: FanEvent, out: EngineOutput): string | null => {
    const orderId = event.props.orderId as string;
    const owner = world.orders.get(orderId);
    if (owner === undefined) return `refund of unknown order ${orderId}`;
    if (owner !== fan.id) return `order ${orderId} belongs to another fan`;
    const order = fan.orders.find((candidate) => candidate.orderId === orderId);
    if (!order) throw new Error(`invariant: order ${orderId} missing from its fan`);
    const refunded = Math.min(order.amountMinor, order.refundedMinor + event.amountMinor);
    const delta = refunded - order.refundedMinor;
    order.refundedMinor = refunded;
    monthOf(world, event.ts).revenueMinor -= delta;
    world.revenueToDateMinor -= delta;
    const reverse = (awarded: number, reversed: number) => refundedShare(awarded, order) - reversed;
    const own = reverse(order.pointsAwarded, order.pointsReversed);
    order.pointsReversed += own;
    award(world, fan, -own, 'reversal:purchase', event, out);
    if (order.referrer !== null) {
      const referrer = world.fans.get(order.referrer) as FanState;
      out.touched.add(referrer.id);
      const theirs = reverse(order.referrerPointsAwarded, order.referrerPointsReversed);
      order.referrerPointsReversed += theirs;
      award(world, referrer, -theirs, 'reversal:referralPurchase', event, out);
    }
    if (order.cash.length > 0) referral.onRefund(world, order, event, out);
    return null;
  };

  return { qualifyReferral, purchaseProblem, applyPurchase, applyRefund };
}

function purchaseProblem(world: World, event: FanEvent): string | null {
  const orderId = event.props.orderId as string;
  return world.orders.has(orderId) ? `orderId ${orderId} was already used by an earlier purchase` : null;
}
