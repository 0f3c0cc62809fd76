/**
 * What the operator sees of one fan as of an instant: level with its rule and figures, what the
 * next level needs, layer with reasons, points, windows, churn risk and tags (PRODUCT §3.4).
 */
import { DAY_MS, TIME_SLOTS, type Calendar } from './calendar.js';
import { countFact, countPurchases, fanPredicate } from './facts.js';
import { INTERACTION_BY_CODE } from './engine.js';
import { computeLayer } from './layers.js';
import { explainLevel, isEligibleForTop } from './levels.js';
import type { Program } from './program.js';
import type { FanState, LayerName, RecentPosting } from './state.js';

export type ChurnRisk = 'low' | 'medium' | 'high';

export interface FanView {
  id: string;
  level: {
    level: number;
    name: string;
    locked: boolean;
    eligibleForNext: boolean;
    reasons: string[];
    next: { level: number; name: string; missing: string[]; met: string[] } | null;
    benefits: Record<string, string | number | boolean>;
  };
  layer: { layer: LayerName; reasons: string[] };
  points: { balance: number; recent: (RecentPosting & { at: string })[] };
  referrer: string | null;
  qualifiedReferrals: number;
  windows: { interactions7d: number; interactions30d: number; interactions90d: number; interactions180d: number; purchases90d: number; purchases180d: number; shares90d: number };
  churnRisk: ChurnRisk;
  tags: Record<string, string | number | boolean | null>;
  badges: string[];
  firstSeen: string;
  lastActivity: string | null;
  programVersion: string;
  asOf: string;
}

function mostFrequent<T>(values: Iterable<T>): T | null {
  const counts = new Map<T, number>();
  let best: T | null = null;
  let bestCount = 0;
  for (const value of values) {
    const count = (counts.get(value) ?? 0) + 1;
    counts.set(value, count);
    // Ties go to the first value to reach the count, so the result is deterministic.
    if (count > bestCount) {
      best = value;
      bestCount = count;
    }
  }
  return best;
}

export function computeChurnRisk(fan: FanState, program: Program, at: number): ChurnRisk {
  const last = fan.lastActivityTs ?? fan.firstTs;
  const days = Math.floor((at - last) / DAY_MS);
  if (days >= program.tags.churnRisk.highAfterDays) return 'high';
  if (days >= program.tags.churnRisk.mediumAfterDays) return 'medium';
  return 'low';
}

function sinceIndex(sorted: readonly number[], from: number): number {
  let index = sorted.length;
  while (index > 0 && sorted[index - 1] > from) index--;
  return index;
}

export function computeTags(fan: FanState, program: Program, calendar: Calendar, at: number, loyaltyScore: number | null): Record<string, string | number | boolean | null> {
  const tags = program.tags;
  const frequency = countFact(fan, 'interactions', at, tags.interactionFrequency.windowDays);
  const from90 = at - program.layers.windowDays * DAY_MS;
  const ixStart = sinceIndex(fan.ixTs, from90);
  const activityStart = sinceIndex(fan.activityTs, from90);
  const categories = fan.ixCategory.slice(ixStart).filter((category) => category !== '');
  const orders = fan.orders.filter((order) => order.refundedMinor < order.amountMinor && order.ts <= at);
  const spendFrom = at - tags.consumptionLevel.windowDays * DAY_MS;
  const spend365Minor = orders.filter((order) => order.ts > spendFrom).reduce((sum, order) => sum + order.amountMinor - order.refundedMinor, 0);
  const totalMinor = orders.reduce((sum, order) => sum + order.amountMinor - order.refundedMinor, 0);
  const followFrom = fan.firstFollowTs ?? fan.firstTs;
  // The first portrait whose rule holds (compiled: its texts are not shown).
  const portrait = tags.portraits.find((rule) => fanPredicate(rule.when)(fan, at));
  const reach = Number(fan.profile.reach ?? 0);
  const adminRoles = new Set(['owner', 'admin', 'administrator']);
  return {
    interactionFrequency: frequency >= tags.interactionFrequency.highGte ? 'high' : frequency >= tags.interactionFrequency.mediumGte ? 'medium' : 'low',
    activeTimeSlot: (() => {
      const slot = mostFrequent(fan.activitySlot.slice(activityStart));
      return slot === null ? null : TIME_SLOTS[slot];
    })(),
    contentPreference: mostFrequent(categories),
    interactionType: (() => {
      const code = mostFrequent(fan.ixMeta.slice(ixStart).map((meta) => meta >> 3));
      return code === null ? null : INTERACTION_BY_CODE[code];
    })(),
    consumptionLevel: spend365Minor >= tags.consumptionLevel.highGte * 100 ? 'high' : spend365Minor >= tags.consumptionLevel.mediumGte * 100 ? 'medium' : spend365Minor > 0 ? 'low' : 'none',
    firstPurchase: orders.length > 0 ? calendar.formatLocal(orders[0].ts) : null,
    lastPurchase: orders.length > 0 ? calendar.formatLocal(orders[orders.length - 1].ts) : null,
    averageOrderValue: orders.length > 0 ? Math.round(totalMinor / orders.length) / 100 : null,
    repurchaseTimes: Math.max(0, orders.length - 1),
    productPreference: mostFrequent(orders.map((order) => order.series).filter((series): series is string => series !== null)),
    followMonths: Math.max(0, Math.floor((at - followFrom) / (30 * DAY_MS))),
    portrait: portrait ? portrait.id : null,
    koc: reach > tags.koc.reachGt || fan.badges.includes('koc'),
    tester: fan.badges.includes('tester') || fan.testFeedbacks > 0,
    communityAdmin: Object.values(fan.roles).some((role) => adminRoles.has(role.toLowerCase())),
    loyaltyScore,
    churnRisk: computeChurnRisk(fan, program, at),
    purchases365d: countPurchases(fan, at, 365),
    // Where the fan followed from (the follow event's channel).
    channel: fan.followChannel,
  };
}

export function computeFanView(fan: FanState, program: Program, calendar: Calendar, at: number, loyaltyScore: number | null): FanView {
  const explained = explainLevel(fan, program, at);
  const layer = computeLayer(fan, program, at);
  const level = program.levels[fan.level - 1];
  return {
    id: fan.id,
    level: {
      level: fan.level,
      name: level.name,
      locked: fan.lockedLevel !== null,
      eligibleForNext: isEligibleForTop(fan, program, at),
      reasons: explained.reasons,
      next: explained.next,
      benefits: { pointsMultiplier: level.pointsMultiplier, ...level.benefits },
    },
    layer: { layer: layer.layer, reasons: layer.reasons },
    points: {
      balance: fan.pointsBalance,
      recent: [...fan.recentPostings].reverse().map((posting) => ({ ts: posting.ts, points: posting.points, rule: posting.rule, eventId: posting.eventId, at: calendar.formatLocal(posting.ts) })),
    },
    referrer: fan.referrer,
    qualifiedReferrals: fan.qualifiedReferralTs.length,
    windows: {
      interactions7d: countFact(fan, 'interactions', at, 7),
      interactions30d: countFact(fan, 'interactions', at, 30),
      interactions90d: countFact(fan, 'interactions', at, 90),
      interactions180d: countFact(fan, 'interactions', at, 180),
      purchases90d: countPurchases(fan, at, 90),
      purchases180d: countPurchases(fan, at, 180),
      shares90d: countFact(fan, 'shares', at, 90),
    },
    churnRisk: computeChurnRisk(fan, program, at),
    tags: computeTags(fan, program, calendar, at, loyaltyScore),
    badges: [...fan.badges],
    firstSeen: calendar.formatLocal(fan.firstTs),
    lastActivity: fan.lastActivityTs === null ? null : calendar.formatLocal(fan.lastActivityTs),
    programVersion: program.version,
    asOf: calendar.formatLocal(at),
  };
}
