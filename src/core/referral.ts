/**
 * Referral fission (PRODUCT §5, seed 000 §3.3): attribution by code, the referee's coupon, the
 * referrer's cash reward, commissions up the tree within the configured depth, milestones, the
 * two-phase life of referral cash (pending through the refund window, then available or held),
 * fraud flags with a review, payouts and redemptions. Everything here is a posting in the ledger.
 */
import { refundedShare } from './facts.js';
import type { EngineContext } from './engine-context.js';
import type { EngineOutput } from './engine-output.js';
import type { FanEvent } from './events.js';
import { cashAccount, couponAccount, postMove, postPoints, PROGRAM_ACCOUNTS, type CashBucket } from './ledger.js';
import { looksLikeCode, normalizeCode, referralCode } from './referral-codes.js';
import type { CashItem, CashKind, FanState, Order, World } from './state.js';
import { DAY_MS } from './calendar.js';
import { parseTimestamp } from './events.js';

const DEVICES_KEPT = 4;

export interface ReferralRules {
  /** True when the never-acted rule would hold this referee's referral at the end of a refund window. */
  neverActed(referee: FanState): boolean;
  /** Gives a new fan its code. */
  issueCode(world: World, fan: FanState): void;
  /** Remembers the device and IP an event carries (props.device, props.ip). */
  recordDevices(fan: FanState, event: FanEvent): void;
  /** The referrer a first follow names, by id or code; null when none applies. */
  resolveReferrer(world: World, event: FanEvent): FanState | null;
  /** True when `fan` is `other` or one of its referrers, up the tree. */
  isAbove(world: World, fan: FanState, other: FanState): boolean;
  onAttributed(world: World, referee: FanState, referrer: FanState, event: FanEvent, out: EngineOutput): void;
  onQualified(world: World, referee: FanState, referrer: FanState, event: FanEvent, order: Order | null, out: EngineOutput): void;
  /** Commissions on a purchase of a qualified referee, up the tree. */
  onPurchase(world: World, referee: FanState, order: Order, event: FanEvent, out: EngineOutput): void;
  /** Voids (in the window) or claws back (after it) the cash an order paid, for `refunded` of it. */
  onRefund(world: World, order: Order, event: FanEvent, out: EngineOutput): void;
  /** Moves cash whose refund window ended by `to` to available (or held). */
  matureDue(world: World, to: number, out: EngineOutput): void;
  applyReview(world: World, referee: FanState, event: FanEvent, out: EngineOutput): string | null;
  applyPayout(world: World, fan: FanState, event: FanEvent, out: EngineOutput): void;
  applyRedeem(world: World, fan: FanState, event: FanEvent, out: EngineOutput): void;
}

/** Floor of amountMinor × percent %, exact (percent has at most 2 decimals). */
export function percentOf(amountMinor: number, percent: number): number {
  return Math.floor((amountMinor * Math.round(percent * 100)) / 10_000);
}

export function createReferralRules(context: EngineContext): ReferralRules {
  const { program } = context;
  const referral = program.referral;
  const windowMs = referral.refundWindowDays * DAY_MS;
  const couponMinor = Math.round(referral.refereeCoupon * 100);
  const rewardMinor = Math.round(referral.referrerReward * 100);

  const issueCode = (world: World, fan: FanState) => {
    let code = referralCode(referral.codeSalt, fan.id);
    // A collision (about 1 in 10^9 pairs) gives the later fan an alternative, the same on every replay.
    for (let attempt = 1; world.codes.has(code); attempt++) code = referralCode(referral.codeSalt, fan.id, attempt);
    fan.code = code;
    world.codes.set(code, fan.id);
  };

  const recordDevices = (fan: FanState, event: FanEvent) => {
    const { device, ip } = event.props;
    if (typeof device === 'string' && device !== '') remember(fan, `d:${device}`);
    if (typeof ip === 'string' && ip !== '') remember(fan, `i:${ip}`);
  };

  const resolveReferrer = (world: World, event: FanEvent): FanState | null => {
    const byId = event.props.referrer;
    if (typeof byId === 'string') return world.fans.get(byId) ?? null;
    const code = event.props.referralCode;
    if (typeof code !== 'string') return null;
    // A fan id works as a code too (PRODUCT §2); an issued code is tried first.
    const owner = looksLikeCode(code) ? world.codes.get(normalizeCode(code)) : undefined;
    return world.fans.get(owner ?? code) ?? null;
  };

  const isAbove = (world: World, fan: FanState, other: FanState): boolean => {
    for (let at: FanState | undefined = other; at; at = at.referrer === null ? undefined : world.fans.get(at.referrer)) if (at === fan) return true;
    return false;
  };

  const fraudFlags = (world: World, referee: FanState, referrer: FanState, event: FanEvent): string[] => {
    const flags: string[] = [];
    const fraud = referral.fraud;
    const markers = markersOf(event, referee);
    if (fraud.selfReferral) {
      for (const marker of markers) {
        if (referrer.devices.includes(marker)) flags.push(`self-referral: ${describe(marker)} is also the referrer's`);
      }
    }
    if (fraud.sharedDevice) {
      for (const marker of markers) {
        const other = referrer.referees.find((id) => id !== referee.id && (world.fans.get(id)?.devices.includes(marker) ?? false));
        if (other !== undefined) flags.push(`shared device: ${describe(marker)} is also referee ${other}'s`);
      }
    }
    if (fraud.burst) {
      const since = event.ts - fraud.burst.minutes * 60_000;
      const recent = referrer.attributionTs.filter((ts) => ts > since).length + 1;
      if (recent >= fraud.burst.referrals) flags.push(`burst: ${recent} referrals of this referrer within ${fraud.burst.minutes} minutes`);
    }
    return flags;
  };
  const onAttributed = (world: World, referee: FanState, referrer: FanState, event: FanEvent, out: EngineOutput) => {
    const flags = fraudFlags(world, referee, referrer, event);
    referrer.referees.push(referee.id);
    referrer.attributionTs.push(event.ts);
    if (referral.fraud.burst) {
      const since = event.ts - referral.fraud.burst.minutes * 60_000;
      while (referrer.attributionTs.length > 0 && referrer.attributionTs[0] <= since) referrer.attributionTs.shift();
    }
    out.touched.add(referrer.id);
    if (flags.length > 0) {
      hold(world, referee, flags, event.ts, event.id, out);
      if (couponMinor > 0) referee.couponDeferred = true;
      return;
    }
    issueCoupon(world, referee, event, out);
    countCampaigns(world, referee, referrer, event, out);
  };

  const campaigns = referral.campaigns.map((campaign) => ({ ...campaign, fromTs: parseTimestamp(campaign.from) as number, toTs: parseTimestamp(campaign.to) as number, cashMinor: Math.round(campaign.rewardCash * 100) }));
  /** A genuinely new follower (a first follow, not suspect) counts for the campaigns running at its instant. */
  const countCampaigns = (world: World, referee: FanState, referrer: FanState, event: FanEvent, out: EngineOutput) => {
    for (const campaign of campaigns) {
      if (event.ts < campaign.fromTs || event.ts >= campaign.toTs) continue;
      const stats = (world.campaignStats[campaign.id] ??= { participants: 0, completed: 0, newFollowers: 0, rewardPoints: 0, rewardCashMinor: 0 });
      const count = (referrer.campaigns[campaign.id] ?? 0) + 1;
      referrer.campaigns[campaign.id] = count;
      stats.newFollowers++;
      if (count === 1) stats.participants++;
      if (count !== campaign.newFollowers) continue;
      stats.completed++;
      if (campaign.rewardPoints > 0) {
        context.award(world, referrer, campaign.rewardPoints, `campaign:${campaign.id}`, event, out);
        stats.rewardPoints += campaign.rewardPoints;
      }
      if (campaign.cashMinor > 0) {
        issueCash(world, referrer, 'campaign', referee, null, campaign.cashMinor, event, out);
        stats.rewardCashMinor += campaign.cashMinor;
      }
    }
  };

  /** Puts a referral under review: its cash goes to held, not available, until an operator decides. */
  const hold = (world: World, referee: FanState, reasons: string[], ts: number, eventId: string | null, out: EngineOutput) => {
    referee.referralFlags = [...referee.referralFlags, ...reasons];
    referee.referralReview = 'open';
    world.reviewQueue.push(referee.id);
    out.touched.add(referee.id);
    out.derived.push({ type: 'ReferralHeld', fan: referee.referrer as string, referee: referee.id, ts, eventId: eventId ?? `review:${referee.id}`, reasons });
  };

  const issueCoupon = (world: World, referee: FanState, event: FanEvent, out: EngineOutput) => {
    referee.couponDeferred = false;
    if (couponMinor === 0) return;
    referee.couponMinor += couponMinor;
    postMove(world, referee.id, 'coupon', PROGRAM_ACCOUNTS.couponIssued, couponAccount(referee.id), couponMinor, 'referral:refereeCoupon', event.id, event.ts, out.postings);
  };

  /** Posts cash to a fan's pending account, due at the end of the refund window. */
  const issueCash = (world: World, fan: FanState, kind: CashKind, referee: FanState, order: Order | null, amount: number, event: FanEvent, out: EngineOutput) => {
    if (amount <= 0 || referee.referralReview === 'voided') return;
    const item: CashItem = { id: ++world.cashItemSeq, kind, referee: referee.id, orderId: order?.orderId ?? null, base: amount, reversed: 0, due: event.ts + windowMs, state: 'pending' };
    fan.cashItems.push(item);
    fan.cashPending += amount;
    out.touched.add(fan.id);
    postMove(world, fan.id, 'cash', PROGRAM_ACCOUNTS.cashIssued, cashAccount(fan.id, 'pending'), amount, `referral:${kind}`, event.id, event.ts, out.postings);
    order?.cash.push([fan.id, item.id]);
    world.cashDue.push([item.due, fan.id, item.id]);
    if (windowMs === 0) matureDue(world, event.ts, out, event.id);
  };

  const onQualified = (world: World, referee: FanState, referrer: FanState, event: FanEvent, order: Order | null, out: EngineOutput) => {
    const ring = referral.fraud.ring;
    if (ring && referee.referralReview === null) {
      // Up the tree while each fan bought exactly once (the purchase that qualified it) and referred only the one below.
      const chain = [referee.id];
      for (let at: FanState | undefined = referrer; at && chain.length < ring.chain && at.purchasesEver === 1 && at.qualifiedTs !== null && at.referees.length === 1; at = at.referrer === null ? undefined : world.fans.get(at.referrer)) {
        chain.push(at.id);
      }
      if (chain.length >= ring.chain) hold(world, referee, [`ring: ${chain.reverse().join(' → ')} each bought once, only to qualify, and referred only the next`], event.ts, event.id, out);
    }
    if (referral.fraud.couponOnly && order !== null && couponMinor > 0 && order.amountMinor <= couponMinor && referee.referralReview === null) {
      hold(world, referee, [`coupon-only: the qualifying purchase ${(order.amountMinor / 100).toFixed(2)} is within the referee's ${(couponMinor / 100).toFixed(2)} coupon`], event.ts, event.id, out);
    }
    issueCash(world, referrer, 'reward', referee, order, rewardMinor, event, out);
    const count = referrer.qualifiedReferralTs.length;
    for (const milestone of referral.milestones) {
      if (milestone.referrals !== count) continue;
      issueCash(world, referrer, 'milestone', referee, order, Math.round(milestone.reward * 100), event, out);
      for (const badge of milestone.badges) {
        if (referrer.badges.includes(badge)) continue;
        referrer.badges.push(badge);
        out.derived.push({ type: 'BadgeGranted', fan: referrer.id, ts: event.ts, eventId: event.id, badge });
      }
    }
  };

  const onPurchase = (world: World, referee: FanState, order: Order, event: FanEvent, out: EngineOutput) => {
    // The referee bought nothing before the attribution, so this is purchase number purchasesEver.
    const index = referee.purchasesEver - 1;
    const { commission } = referral;
    const percent = index === 0 ? commission.firstPurchasePercent : index <= commission.repurchases ? commission.repurchasePercent : 0;
    if (percent === 0) return;
    const direct = world.fans.get(referee.referrer as string) as FanState;
    issueCash(world, direct, 'commission', referee, order, percentOf(order.amountMinor, percent), event, out);
    // One level up per indirect rate, each link a qualified referral, within the depth.
    let link: FanState = direct;
    for (let level = 0; level < commission.indirectPercent.length && level < referral.depth - 1; level++) {
      if (link.referrer === null || link.qualifiedTs === null) break;
      const above = world.fans.get(link.referrer);
      if (!above) break;
      issueCash(world, above, 'indirect', referee, order, percentOf(order.amountMinor, commission.indirectPercent[level]), event, out);
      link = above;
    }
  };

  const itemOf = (world: World, fanId: string, itemId: number): { fan: FanState; item: CashItem } => {
    const fan = world.fans.get(fanId) as FanState;
    const item = fan.cashItems.find((candidate) => candidate.id === itemId);
    if (!item) throw new Error(`invariant: cash item ${itemId} missing from fan ${fanId}`);
    return { fan, item };
  };

  const bucketOf = (item: CashItem): CashBucket | null => (item.state === 'void' ? null : item.state);

  const adjustBalance = (fan: FanState, bucket: CashBucket, delta: number) => {
    if (bucket === 'pending') fan.cashPending += delta;
    else if (bucket === 'available') fan.cashAvailable += delta;
    else fan.cashHeld += delta;
  };

  /** Takes `amount` of an item back to the programme: a void while pending or held, a clawback once available. */
  const takeBack = (world: World, fan: FanState, item: CashItem, amount: number, why: string, event: FanEvent, out: EngineOutput) => {
    const bucket = bucketOf(item);
    if (amount <= 0 || bucket === null) return;
    adjustBalance(fan, bucket, -amount);
    fan.cashVoided += amount;
    item.reversed += amount;
    out.touched.add(fan.id);
    const rule = bucket === 'available' ? `clawback:${why}` : `void:${why}`;
    postMove(world, fan.id, 'cash', cashAccount(fan.id, bucket), PROGRAM_ACCOUNTS.cashIssued, amount, rule, event.id, event.ts, out.postings);
    if (bucket !== 'available' && item.reversed === item.base) item.state = 'void';
  };

  const onRefund = (world: World, order: Order, event: FanEvent, out: EngineOutput) => {
    const fully = order.refundedMinor >= order.amountMinor;
    for (const [fanId, itemId] of order.cash) {
      const { fan, item } = itemOf(world, fanId, itemId);
      if (item.kind === 'commission' || item.kind === 'indirect') {
        // Pro rata, like purchase points: what refunds have taken back equals the refunded share.
        takeBack(world, fan, item, refundedShare(item.base, order) - item.reversed, 'refund', event, out);
      } else if (fully && item.state !== 'available') {
        // A reward for a referral stands once its window is over; within it a full refund voids it.
        takeBack(world, fan, item, item.base - item.reversed, 'refund', event, out);
      }
    }
  };

  const move = (world: World, fan: FanState, item: CashItem, to: CashBucket, rule: string, eventId: string, ts: number, out: EngineOutput) => {
    const from = bucketOf(item) as CashBucket;
    const amount = item.base - item.reversed;
    item.state = to;
    if (amount <= 0) return;
    adjustBalance(fan, from, -amount);
    adjustBalance(fan, to, amount);
    out.touched.add(fan.id);
    postMove(world, fan.id, 'cash', cashAccount(fan.id, from), cashAccount(fan.id, to), amount, rule, eventId, ts, out.postings);
  };

  const matureDue = (world: World, to: number, out: EngineOutput, eventId?: string) => {
    const queue = world.cashDue;
    let taken = 0;
    while (taken < queue.length && queue[taken][0] <= to) {
      const [due, fanId, itemId] = queue[taken++];
      const { fan, item } = itemOf(world, fanId, itemId);
      if (item.state !== 'pending') continue;
      const referee = world.fans.get(item.referee);
      // Postings of the window's end carry the instant and the item, not an event.
      const cause = eventId ?? `cash:${item.id}`;
      if (referee && referee.referralReview === null && neverActed(referee)) {
        hold(world, referee, [`never acted: no activity from the follow to the end of the refund window`], due, cause, out);
      }
      const review = referee?.referralReview ?? null;
      if (review === 'open') move(world, fan, item, 'held', 'referral:held', cause, due, out);
      else move(world, fan, item, 'available', 'referral:available', cause, due, out);
    }
    if (taken > 0) queue.splice(0, taken);
  };

  /** The never-acted rule: no activity since the referee's attribution. */
  const neverActed = (referee: FanState) => referral.fraud.neverActed && referee.attributedTs !== null && (referee.lastActivityTs === null || referee.lastActivityTs < referee.attributedTs);


  const applyReview = (world: World, referee: FanState, event: FanEvent, out: EngineOutput): string | null => {
    if (referee.referralReview !== 'open' || referee.referrer === null) return `fan ${referee.id} has no referral under review`;
    const decision = event.props.decision as 'release' | 'void';
    referee.referralReview = decision === 'release' ? 'released' : 'voided';
    world.reviewQueue = world.reviewQueue.filter((id) => id !== referee.id);
    // The fans paid for this referral: the referrer and those above it, within the depth.
    let fan: FanState | undefined = world.fans.get(referee.referrer);
    for (let level = 0; fan && level < 3; level++, fan = fan.referrer === null ? undefined : world.fans.get(fan.referrer)) {
      for (const item of fan.cashItems) {
        if (item.referee !== referee.id) continue;
        if (decision === 'release' && item.state === 'held') move(world, fan, item, 'available', 'review:release', event.id, event.ts, out);
        else if (decision === 'void' && (item.state === 'held' || item.state === 'pending')) takeBack(world, fan, item, item.base - item.reversed, 'review', event, out);
      }
    }
    if (decision === 'void' && referee.qualifiedTs !== null) {
      // A voided referral no longer counts for the referrer (leaderboards, milestones to come); levels already reached stay.
      const referrer = world.fans.get(referee.referrer) as FanState;
      const at = referrer.qualifiedReferralTs.indexOf(referee.qualifiedTs);
      if (at >= 0) referrer.qualifiedReferralTs.splice(at, 1);
      context.factsChanged(world, referrer.id);
      out.touched.add(referrer.id);
    }
    if (decision === 'release' && referee.couponDeferred) issueCoupon(world, referee, event, out);
    referee.couponDeferred = false;
    return null;
  };

  const applyPayout = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    const amount = event.amountMinor;
    const payoutId = event.props.payoutId as string;
    if (amount > 0) {
      fan.cashAvailable -= amount;
      fan.cashPaid += amount;
      postMove(world, fan.id, 'cash', cashAccount(fan.id, 'available'), PROGRAM_ACCOUNTS.cashPaid, amount, 'payout', event.id, event.ts, out.postings);
    }
    const run = (world.payouts[payoutId] ??= { at: event.ts, fans: 0, totalMinor: 0 });
    run.fans++;
    run.totalMinor += amount;
  };

  const applyRedeem = (world: World, fan: FanState, event: FanEvent, out: EngineOutput) => {
    const item = event.props.item as string;
    const points = event.props.points as number;
    fan.redeemed[item] = (fan.redeemed[item] ?? 0) + 1;
    world.stockUsed[item] = (world.stockUsed[item] ?? 0) + 1;
    postPoints(world, fan, -points, `redeem:${item}`, event.id, event.ts, out.postings, PROGRAM_ACCOUNTS.pointsRedeemed);
  };

  if (!referral.enabled) {
    // Attribution by fan id and qualification stay (PRODUCT §2); the programme pays nothing.
    const none = () => undefined;
    return {
      issueCode: none, recordDevices: none, resolveReferrer, isAbove, onAttributed: none, onQualified: none, onPurchase: none, onRefund: none,
      matureDue: none, neverActed: () => false, applyReview: () => 'the referral programme is disabled', applyPayout, applyRedeem,
    };
  }
  return { neverActed, issueCode, recordDevices, resolveReferrer, isAbove, onAttributed, onQualified, onPurchase, onRefund, matureDue, applyReview, applyPayout, applyRedeem };
}

function remember(fan: FanState, marker: string): void {
  const at = fan.devices.indexOf(marker);
  if (at === fan.devices.length - 1 && at >= 0) return;
  if (at >= 0) fan.devices.splice(at, 1);
  fan.devices.push(marker);
  if (fan.devices.length > DEVICES_KEPT) fan.devices.shift();
}

function markersOf(event: FanEvent, fan: FanState): string[] {
  const markers = new Set(fan.devices);
  const { device, ip } = event.props;
  if (typeof device === 'string' && device !== '') markers.add(`d:${device}`);
  if (typeof ip === 'string' && ip !== '') markers.add(`i:${ip}`);
  return [...markers];
}

function describe(marker: string): string {
  return marker.startsWith('d:') ? `device ${marker.slice(2)}` : `IP ${marker.slice(2)}`;
}
