/**
 * The engine: applies one event of the log, in (ts, id) order, to the world. Deterministic and
 * free of I/O; time comes only from the events and from `advanceClock`'s argument.
 *
 * @example
 * const engine = createEngine(program);
 * const out = engine.newOutput();
 * engine.apply(world, event, out); // out.postings, out.derived
 */
import { createCalendar, DAY_MS, type Calendar, type OffsetBlock } from './calendar.js';
import { ACTIVITY_TYPES, INTERACTION_TYPES, type FanEvent } from './events.js';
import { createEngineContext } from './engine-context.js';
import type { EngineOutput } from './engine-output.js';
import { pruneBefore } from './facts.js';
import { DEMOTABLE_FROM_LEVEL, demoteAtMidnight, isEligibleForTop, maintenanceSteadyUntil, promote, type LevelChange } from './levels.js';
import { createOrderRules } from './orders.js';
import { createPointRules } from './points.js';
import { createReferralRules } from './referral.js';
import { classifyLayer } from './layers.js';
import type { Program } from './program.js';
import { takeSnapshot } from './snapshot.js';
import { createFan, type FanState, type World } from './state.js';

export type { DerivedEvent, EngineOutput } from './engine-output.js';

export interface Engine {
  readonly program: Program;
  readonly calendar: Calendar;
  newOutput(): EngineOutput;
  apply(world: World, event: FanEvent, out: EngineOutput): void;
  /** Runs the day boundaries (demotions, month snapshots) of every local midnight in (clock, to]. */
  advanceClock(world: World, to: number, out: EngineOutput): void;
  /**
   * The same midnights for one fan only (its demotions), from `from` to `to`; `onDemotion` hears
   * the midnight of each demotion (the month it counts in is that midnight's). It changes the
   * fan's `level` and `eligibleForNext` and nothing else (callers that look ahead set them back).
   */
  advanceFan(fan: FanState, from: number, to: number, onDemotion?: (boundary: number) => void): void;
}

const INTERACTION_CODES: Record<string, number> = { like: 0, collect: 1, comment: 2, share: 3 };
export const INTERACTION_BY_CODE = ['like', 'collect', 'comment', 'share'];

export interface EngineOptions {
  /**
   * Checks every high-level fan at every midnight instead of skipping those found steady: the
   * same results, slower (a reference for tests).
   */
  checkEveryMidnight?: boolean;
}

/** `offsets`: the zone's offsets found earlier by the same time-zone data (see Calendar.knownOffsets). */
export function createEngine(program: Program, offsets?: Iterable<[number, OffsetBlock]>, options: EngineOptions = {}): Engine {
  const checkEveryMidnight = options.checkEveryMidnight === true;
  const calendar = createCalendar(program.timezone, offsets);
  const context = createEngineContext(program, calendar);
  const { monthOf, monthStart, award, multiplied } = context;
  const historyMs = program.historyDays * DAY_MS;
  const decayPerMs = Math.log(program.tags.loyalty.monthlyDecay) / (30 * DAY_MS);
  const points = createPointRules(context);
  const { checkOneTime, weeklyOnce, dailyPoints, enterWeek } = points;

  const recordActivity = (world: World, fan: FanState, event: FanEvent) => {
    if (fan.lastActivityTs === null || fan.lastActivityTs < monthStart(event.ts)) monthOf(world, event.ts).activeFans++;
    fan.lastActivityTs = event.ts;
    fan.activityTs.push(event.ts);
    fan.activitySlot.push(calendar.timeSlot(event.ts));
    pruneBefore(fan.activityTs, event.ts - historyMs, fan.activitySlot);
    const weight = program.tags.loyalty.weights[event.type] ?? 0;
    if (weight > 0) {
      // ln(value × decay^(−t)): adding w at t is a log-sum-exp with ln w − t·ln(decay).
      const term = Math.log(weight) - decayPerMs * event.ts;
      const current = fan.loyaltyLog;
      fan.loyaltyLog = current === Number.NEGATIVE_INFINITY
        ? term
        : Math.max(current, term) + Math.log1p(Math.exp(-Math.abs(current - term)));
    }
  };

  const recordInteraction = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    fan.ixTs.push(event.ts);
    fan.ixMeta.push(INTERACTION_CODES[event.type] * 8 + calendar.timeSlot(event.ts));
    const category = event.props.category;
    fan.ixCategory.push(typeof category === 'string' ? category : '');
    pruneBefore(fan.ixTs, event.ts - historyMs, fan.ixMeta, fan.ixCategory);
    if (event.type === 'share') {
      fan.shareTs.push(event.ts);
      pruneBefore(fan.shareTs, event.ts - historyMs);
    }
    fan.interactionsEver++;
    dailyPoints(world, fan, event, out);
    enterWeek(fan, event.ts);
    fan.weekInteractions++;
    const weekly = program.points.weekly.nthInteraction;
    if (fan.weekInteractions === weekly.n) weeklyOnce(world, fan, 'nthInteraction', weekly.points, event, out);
    checkOneTime(world, fan, 'interactions', event, out);
  };

  const referral = createReferralRules(context);
  const orders = createOrderRules(context, points, referral, (world, fan, event, out) => afterFanChange(world, fan, event, out));
  const { applyPurchase, applyRefund } = orders;

  const applyFollow = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    if (fan.follow === 0) {
      fan.firstFollowTs = event.ts;
      fan.followChannel = event.channel;
      const month = monthOf(world, event.ts);
      month.newFollowers++;
      // Only the first follow attributes, to a known fan other than the referee, before any purchase,
      // and never to a fan the referee itself referred (directly or further down): the tree has no cycle.
      const referrer = referral.resolveReferrer(world, event);
      if (referrer !== null && referrer !== fan && fan.purchasesEver === 0 && !referral.isAbove(world, fan, referrer)) {
        fan.referrer = referrer.id;
        fan.attributedTs = event.ts;
        month.referredNewFollowers++;
        referral.onAttributed(world, fan, referrer, event, out);
        if (program.referral.qualifyOn === 'follow') orders.qualifyReferral(world, fan, event, null, out);
      }
    }
    fan.follow = 1;
  };

  const applySelect = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    const contentId = event.props.contentId as string;
    if (fan.selected[contentId] !== undefined) return;
    fan.selected[contentId] = event.ts;
    fan.selectedCount++;
    monthOf(world, event.ts).selectedUgc++;
    award(world, fan, multiplied(fan, program.points.perEvent.contentFirstSelected), 'perEvent:contentFirstSelected', event, out);
    checkOneTime(world, fan, 'selectedContents', event, out);
  };

  const applyOperator = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    const props = event.props;
    switch (event.type) {
      case 'op_recognize':
        fan.recognized = true;
        break;
      case 'op_lock_level': {
        const level = props.level as number | null;
        const from = fan.level;
        if (level === null) {
          if (fan.lockedLevel === null) break;
          fan.lockedLevel = null;
          out.derived.push({ type: 'LevelChanged', fan: fan.id, ts: event.ts, eventId: event.id, from, to: from, kind: 'unlock' });
        } else {
          fan.lockedLevel = level;
          fan.level = level;
          out.derived.push({ type: 'LevelChanged', fan: fan.id, ts: event.ts, eventId: event.id, from, to: level, kind: 'lock' });
        }
        break;
      }
      case 'op_grant_badge':
        if (!fan.badges.includes(props.badge as string)) {
          fan.badges.push(props.badge as string);
          out.derived.push({ type: 'BadgeGranted', fan: fan.id, ts: event.ts, eventId: event.id, badge: props.badge as string });
        }
        break;
      case 'op_revoke_badge':
        if (fan.badges.includes(props.badge as string)) {
          fan.badges = fan.badges.filter((badge) => badge !== props.badge);
          out.derived.push({ type: 'BadgeRevoked', fan: fan.id, ts: event.ts, eventId: event.id, badge: props.badge as string });
        }
        break;
      case 'op_adjust_points':
        award(world, fan, props.points as number, 'operator:adjust', event, out);
        break;
      case 'op_set_role':
        fan.roles[props.groupId as string] = props.role as string;
        break;
      case 'op_payout':
        referral.applyPayout(world, fan, event, out);
        break;
      case 'op_review_referral': {
        const problem = referral.applyReview(world, fan, event, out);
        if (problem) out.derived.push({ type: 'Inapplicable', fan: fan.id, ts: event.ts, eventId: event.id, reason: problem });
        break;
      }
    }
  };

  /** Promotion check, high-level bookkeeping, eligibility and layer after any change to a fan. */
  function afterFanChange(world: World, fan: FanState, event: FanEvent, out: EngineOutput): void {
    const change = promote(fan, program, event.ts);
    if (change) {
      out.derived.push({ type: 'LevelChanged', fan: fan.id, ts: event.ts, eventId: event.id, ...change });
      monthOf(world, event.ts).promotions++;
    }
    if (fan.level >= DEMOTABLE_FROM_LEVEL && fan.lockedLevel === null) world.highLevel.add(fan.id);
    else world.highLevel.delete(fan.id);
    const eligible = isEligibleForTop(fan, program, event.ts);
    if (eligible && !fan.eligibleForNext) out.derived.push({ type: 'Lv5Eligible', fan: fan.id, ts: event.ts, eventId: event.id });
    fan.eligibleForNext = eligible;
    const layer = classifyLayer(fan, program, event.ts);
    if (layer !== fan.layer) {
      out.derived.push({ type: 'LayerChanged', fan: fan.id, ts: event.ts, eventId: event.id, from: fan.layer, to: layer });
      fan.layer = layer;
    }
  }

  // The next local midnight after each world's clock: most events need no day boundary work.
  const nextBoundary = new WeakMap<World, number>();
  const advanceClock = (world: World, to: number, out: EngineOutput) => {
    if (world.clock === Number.NEGATIVE_INFINITY) {
      world.clock = to;
      return;
    }
    if (world.cashDue.length > 0 && world.cashDue[0][0] <= to) referral.matureDue(world, to, out);
    if (to <= world.clock) return;
    const boundaryAhead = nextBoundary.get(world);
    if (boundaryAhead !== undefined && to < boundaryAhead) {
      world.clock = to;
      return;
    }
    const lastDay = calendar.dayIndex(to);
    for (let day = calendar.dayIndex(world.clock) + 1; day <= lastDay; day++) {
      const boundary = calendar.startOfDay(day);
      if (boundary > to) break;
      runMidnight(world, boundary, out);
    }
    world.clock = to;
    nextBoundary.set(world, calendar.startOfDay(lastDay + 1));
  };

  /**
   * Demotions first (decided per fan, reported in fan-number order), then the month snapshot. A
   * fan found steady at an earlier midnight is not checked again before its steady instant.
   */
  const runMidnight = (world: World, boundary: number, out: EngineOutput) => {
    const demoted: { fan: FanState; change: LevelChange }[] = [];
    const steady = context.steadyUntil(world);
    for (const fanId of world.highLevel) {
      const until = steady.get(fanId);
      if (until !== undefined && boundary < until) continue;
      const fan = world.fans.get(fanId) as FanState;
      const change = demoteAtMidnight(fan, program, boundary);
      if (change) {
        demoted.push({ fan, change });
        steady.delete(fanId);
      } else if (checkEveryMidnight) steady.delete(fanId);
      else steady.set(fanId, maintenanceSteadyUntil(fan, program, boundary));
    }
    demoted.sort((a, b) => a.fan.no - b.fan.no);
    for (const { fan, change } of demoted) {
      out.touched.add(fan.id);
      out.derived.push({ type: 'LevelChanged', fan: fan.id, ts: boundary, eventId: null, ...change });
      monthOf(world, boundary).demotions++;
      if (fan.level < DEMOTABLE_FROM_LEVEL) world.highLevel.delete(fan.id);
      fan.eligibleForNext = isEligibleForTop(fan, program, boundary);
    }
    const monthKey = calendar.monthKey(boundary);
    if (calendar.startOfMonth(monthKey) === boundary && world.snapshots[monthKey] === undefined) {
      world.snapshots[monthKey] = takeSnapshot(world, program, calendar, boundary);
    }
  };

  const apply = (world: World, event: FanEvent, out: EngineOutput) => {
    advanceClock(world, event.ts, out);
    world.lastTs = event.ts;
    world.lastId = event.id;
    if (event.type === 'post') {
      // A brand publication: workspace-level, it creates no fan even when one is named.
      monthOf(world, event.ts).posts++;
      return;
    }
    const fanId = event.fan as string;
    let fan = world.fans.get(fanId);
    if (!fan) {
      fan = createFan(fanId, world.fans.size, event.ts);
      world.fans.set(fanId, fan);
      referral.issueCode(world, fan);
    }
    if (event.props.device !== undefined || event.props.ip !== undefined) referral.recordDevices(fan, event);
    context.factsChanged(world, fanId);
    fan.lastEventTs = event.ts;
    out.touched.add(fanId);
    // Well-formed but inapplicable events create the fan and nothing else (PRODUCT §2).
    const problem = event.type === 'purchase' ? orders.purchaseProblem(world, event) : event.type === 'refund' ? applyRefund(world, fan, event, out) : null;
    if (problem) {
      out.derived.push({ type: 'Inapplicable', fan: fan.id, ts: event.ts, eventId: event.id, reason: problem });
      return;
    }
    if (ACTIVITY_TYPES.has(event.type)) recordActivity(world, fan, event);
    if (INTERACTION_TYPES.has(event.type)) recordInteraction(world, fan, event, out);
    switch (event.type) {
      case 'view':
      case 'checkin':
      case 'message':
        dailyPoints(world, fan, event, out);
        break;
      case 'follow':
        applyFollow(world, fan, event, out);
        break;
      case 'unfollow':
        if (fan.follow === 1) monthOf(world, event.ts).unfollows++;
        fan.follow = 2;
        break;
      case 'purchase':
        applyPurchase(world, fan, event, out);
        break;
      case 'content_submit':
        if (event.props.kind === 'purchase_share') weeklyOnce(world, fan, 'firstPurchaseShare', program.points.weekly.firstPurchaseShare.points, event, out);
        break;
      case 'content_select':
        applySelect(world, fan, event, out);
        break;
      case 'group_join':
        if (!fan.groups.includes(event.props.groupId as string)) fan.groups.push(event.props.groupId as string);
        break;
      case 'group_leave':
        fan.groups = fan.groups.filter((group) => group !== event.props.groupId);
        break;
      case 'gift':
        fan.giftsMinor += event.amountMinor;
        break;
      case 'nps': {
        const month = monthOf(world, event.ts);
        const score = event.props.score as number;
        month.npsAnswers++;
        if (score >= 9) month.npsPromoters++;
        else if (score <= 6) month.npsDetractors++;
        fan.lastNps = score;
        break;
      }
      case 'profile':
        applyProfile(fan, event);
        checkOneTime(world, fan, 'profileComplete', event, out);
        break;
      case 'test_feedback':
        fan.testFeedbacks++;
        break;
      case 'redeem':
        referral.applyRedeem(world, fan, event, out);
        break;
      default:
        if (event.type.startsWith('op_')) applyOperator(world, fan, event, out);
    }
    if (event.type.startsWith('group_')) {
      monthOf(world, event.ts).groupEvents++;
      world.groupEventsSeen = true;
    }
    afterFanChange(world, fan, event, out);
  };

  const advanceFan = (fan: FanState, from: number, to: number, onDemotion?: (boundary: number) => void) => {
    if (fan.level < DEMOTABLE_FROM_LEVEL || fan.lockedLevel !== null || to <= from) return;
    const lastDay = calendar.dayIndex(to);
    for (let day = calendar.dayIndex(from) + 1; day <= lastDay && fan.level >= DEMOTABLE_FROM_LEVEL; day++) {
      const boundary = calendar.startOfDay(day);
      if (boundary > to) break;
      if (demoteAtMidnight(fan, program, boundary)) {
        fan.eligibleForNext = isEligibleForTop(fan, program, boundary);
        onDemotion?.(boundary);
      }
    }
  };

  return { program, calendar, advanceFan, newOutput: () => ({ postings: [], derived: [], touched: new Set() }), apply, advanceClock };
}

function applyProfile(fan: FanState, event: FanEvent): void {
  for (const [key, value] of Object.entries(event.props)) {
    if (value === null || value === '') delete fan.profile[key];
    else if (typeof value === 'string' || typeof value === 'number') fan.profile[key] = value;
  }
}

