/**
 * The derived state: plain, serialisable objects. The engine evolves them in place (copying a
 * hundred thousand fans per event would be the bottleneck); determinism comes from the engine
 * taking every input, time included, as an argument.
 */
export type FollowState = 0 | 1 | 2; // 0 never followed, 1 following, 2 unfollowed
export type LayerName = 'core' | 'backbone' | 'general' | 'observation' | 'unfollowed';
export const LAYER_NAMES: readonly LayerName[] = ['core', 'backbone', 'general', 'observation', 'unfollowed'];
export const LAYER_CODES = 'CBGOU';

export interface Order {
  orderId: string;
  ts: number;
  amountMinor: number;
  refundedMinor: number;
  series: string | null;
  pointsAwarded: number;
  pointsReversed: number;
  referrer: string | null;
  referrerPointsAwarded: number;
  referrerPointsReversed: number;
  /** The referral cash this order paid: [receiving fan, cash item id] (voided or clawed back on refund). */
  cash: [string, number][];
}

export type Asset = 'points' | 'cash' | 'coupon';
export type CashKind = 'reward' | 'commission' | 'indirect' | 'milestone' | 'campaign';
export type CashItemState = 'pending' | 'available' | 'held' | 'void';

/**
 * One referral payment to a fan (minor units): pending during the refund window, then available
 * (or held, when its referral is under review); voided by a refund or a review.
 */
export interface CashItem {
  id: number;
  kind: CashKind;
  /** The referee whose referral or purchase earned it. */
  referee: string;
  orderId: string | null;
  /** The amount first posted, and how much of it refunds have taken back since. */
  base: number;
  reversed: number;
  due: number;
  state: CashItemState;
}

export type ReviewState = 'open' | 'released' | 'voided';

export interface Posting {
  readonly seq: number;
  readonly eventId: string;
  readonly ts: number;
  readonly asset: Asset;
  readonly source: string;
  readonly target: string;
  readonly amount: number;
  readonly rule: string;
  readonly fan: string;
  readonly programVersion: string;
}

export interface RecentPosting {
  readonly ts: number;
  readonly points: number;
  readonly rule: string;
  readonly eventId: string;
}

export interface FanState {
  id: string;
  no: number;
  firstTs: number;
  lastEventTs: number;
  lastActivityTs: number | null;
  level: number;
  lockedLevel: number | null;
  lastPromotionTs: number | null;
  recognized: boolean;
  eligibleForNext: boolean;
  follow: FollowState;
  firstFollowTs: number | null;
  followChannel: string | null;
  referrer: string | null;
  attributedTs: number | null;
  qualifiedTs: number | null;
  /** Interaction instants (sorted) and, per entry, type code × 8 + time slot; category alongside. */
  ixTs: number[];
  ixMeta: number[];
  ixCategory: string[];
  shareTs: number[];
  activityTs: number[];
  activitySlot: number[];
  interactionsEver: number;
  purchasesEver: number;
  orders: Order[];
  qualifiedReferralTs: number[];
  selected: Record<string, number>;
  selectedCount: number;
  dailyKey: number;
  dailyRewarded: Record<string, number>;
  weekKey: number;
  weekInteractions: number;
  weekAwarded: string[];
  awarded: string[];
  profile: Record<string, string | number>;
  badges: string[];
  roles: Record<string, string>;
  groups: string[];
  giftsMinor: number;
  testFeedbacks: number;
  lastNps: number | null;
  pointsBalance: number;
  recentPostings: RecentPosting[];
  /** ln of the decayed activity value normalised to epoch 0: ranks are the same at any later instant. */
  loyaltyLog: number;
  layer: LayerName;
  /** The fan's referral code (see referral-codes.ts). */
  code: string;
  /** Recent distinct devices and IPs seen on the fan's events ('d:…', 'i:…'), newest last. */
  devices: string[];
  /** Fans this fan referred, in attribution order. */
  referees: string[];
  /** Recent attribution instants of this fan's referees (for the burst rule). */
  attributionTs: number[];
  /** As a referee: why the referral is suspect, with the evidence, and its review. */
  referralFlags: string[];
  referralReview: ReviewState | null;
  /** As a referee: the welcome coupon waits for the review of a suspect referral. */
  couponDeferred: boolean;
  cashPending: number;
  cashAvailable: number;
  cashHeld: number;
  cashPaid: number;
  cashVoided: number;
  couponMinor: number;
  cashItems: CashItem[];
  /** Redemptions made, per catalog item. */
  redeemed: Record<string, number>;
  /** New followers brought per task-fission campaign. */
  campaigns: Record<string, number>;
}

export interface CampaignStats {
  participants: number;
  completed: number;
  newFollowers: number;
  rewardPoints: number;
  rewardCashMinor: number;
}

export interface MonthStats {
  newFollowers: number;
  referredNewFollowers: number;
  unfollows: number;
  newBuyers: number;
  referredNewBuyers: number;
  revenueMinor: number;
  posts: number;
  selectedUgc: number;
  npsPromoters: number;
  npsDetractors: number;
  npsAnswers: number;
  groupEvents: number;
  pointsEarned: number;
  activeFans: number;
  promotions: number;
  demotions: number;
}

/** Per-fan figures at a month boundary, indexed by fan number (one character each). */
export interface Snapshot {
  readonly at: number;
  readonly layers: string;
  readonly levels: string;
  /** '1' when the fan had activity in the month that ended at `at`. */
  readonly active: string;
  /** Purchases in the trailing 365 days, capped at 2. */
  readonly purchases365: string;
  readonly revenueToDateMinor: number;
  readonly buyersToDate: number;
}

/**
 * The version of the engine's semantics and state shape. A stored state of another version is
 * rebuilt from the log (after an upgrade), never mixed with new results.
 */
export const ENGINE_VERSION = 3;

export interface World {
  engineVersion: number;
  programVersion: string;
  clock: number;
  /** The last applied event in log order: later arrivals before it need a rebuild. */
  lastTs: number;
  lastId: string;
  fans: Map<string, FanState>;
  orders: Map<string, string>;
  /** Fans at Lv4 or Lv5 without a lock: the only ones a midnight can demote. */
  highLevel: Set<string>;
  months: Record<string, MonthStats>;
  snapshots: Record<string, Snapshot>;
  firstMonth: string | null;
  postingSeq: number;
  revenueToDateMinor: number;
  buyersToDate: number;
  groupEventsSeen: boolean;
  /** Referral code → fan (rebuilt from the fans on load, not stored twice). */
  codes: Map<string, string>;
  /** Pending cash items in due order: [due, fan, item id]. */
  cashDue: [number, string, number][];
  cashItemSeq: number;
  /** Units redeemed per catalog item. */
  stockUsed: Record<string, number>;
  /** Referees whose referral awaits review, in the order flagged. */
  reviewQueue: string[];
  /** Payout runs: fans paid and the total, per run. */
  payouts: Record<string, { at: number; fans: number; totalMinor: number }>;
  campaignStats: Record<string, CampaignStats>;
}

export function createWorld(programVersion: string): World {
  return {
    engineVersion: ENGINE_VERSION,
    programVersion,
    clock: Number.NEGATIVE_INFINITY,
    lastTs: Number.NEGATIVE_INFINITY,
    lastId: '',
    fans: new Map(),
    orders: new Map(),
    highLevel: new Set(),
    months: {},
    snapshots: {},
    firstMonth: null,
    postingSeq: 0,
    revenueToDateMinor: 0,
    buyersToDate: 0,
    groupEventsSeen: false,
    codes: new Map(),
    cashDue: [],
    cashItemSeq: 0,
    stockUsed: {},
    reviewQueue: [],
    payouts: {},
    campaignStats: {},
  };
}

export function createFan(id: string, no: number, ts: number): FanState {
  return {
    id,
    no,
    firstTs: ts,
    lastEventTs: ts,
    lastActivityTs: null,
    level: 1,
    lockedLevel: null,
    lastPromotionTs: null,
    recognized: false,
    eligibleForNext: false,
    follow: 0,
    firstFollowTs: null,
    followChannel: null,
    referrer: null,
    attributedTs: null,
    qualifiedTs: null,
    ixTs: [],
    ixMeta: [],
    ixCategory: [],
    shareTs: [],
    activityTs: [],
    activitySlot: [],
    interactionsEver: 0,
    purchasesEver: 0,
    orders: [],
    qualifiedReferralTs: [],
    selected: {},
    selectedCount: 0,
    dailyKey: Number.NaN,
    dailyRewarded: {},
    weekKey: Number.NaN,
    weekInteractions: 0,
    weekAwarded: [],
    awarded: [],
    profile: {},
    badges: [],
    roles: {},
    groups: [],
    giftsMinor: 0,
    testFeedbacks: 0,
    lastNps: null,
    pointsBalance: 0,
    recentPostings: [],
    loyaltyLog: Number.NEGATIVE_INFINITY,
    layer: 'observation',
    code: '',
    devices: [],
    referees: [],
    attributionTs: [],
    referralFlags: [],
    referralReview: null,
    couponDeferred: false,
    cashPending: 0,
    cashAvailable: 0,
    cashHeld: 0,
    cashPaid: 0,
    cashVoided: 0,
    couponMinor: 0,
    cashItems: [],
    redeemed: {},
    campaigns: {},
  };
}

export function emptyMonthStats(): MonthStats {
  return {
    newFollowers: 0,
    referredNewFollowers: 0,
    unfollows: 0,
    newBuyers: 0,
    referredNewBuyers: 0,
    revenueMinor: 0,
    posts: 0,
    selectedUgc: 0,
    npsPromoters: 0,
    npsDetractors: 0,
    npsAnswers: 0,
    groupEvents: 0,
    pointsEarned: 0,
    activeFans: 0,
    promotions: 0,
    demotions: 0,
  };
}

/** Deep copy of one fan, for evaluations that must not touch stored state. */
export function cloneFan(fan: FanState): FanState {
  return structuredClone(fan);
}
