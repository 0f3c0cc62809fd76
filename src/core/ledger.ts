/**
 * The ledger (PRODUCT §1.4, §5): double-entry postings for every asset. Points move between the
 * programme's issuing account and the fan's; referral cash (minor units) from the programme to the
 * fan's pending account, then to available (or held for review), then out as paid; coupons (face
 * value, minor units) to the fan. Corrections are postings the other way, never edits.
 */
import type { Asset, Posting, World, FanState } from './state.js';

export const PROGRAM_POINTS_ACCOUNT = 'program:points:issued';
export const PROGRAM_ACCOUNTS = {
  pointsIssued: PROGRAM_POINTS_ACCOUNT,
  pointsRedeemed: 'program:points:redeemed',
  cashIssued: 'program:cash:issued',
  cashPaid: 'program:cash:paid',
  couponIssued: 'program:coupon:issued',
} as const;
const RECENT_POSTINGS_KEPT = 10;

/** The fan's points account. */
export function fanAccount(fanId: string): string {
  return `fan:${fanId}`;
}

export type CashBucket = 'pending' | 'available' | 'held';

export function cashAccount(fanId: string, bucket: CashBucket): string {
  return `fan:${fanId}:cash:${bucket}`;
}

export function couponAccount(fanId: string): string {
  return `fan:${fanId}:coupon`;
}

/** Fan accounts that may never go below zero (points and available cash may: refunds, clawbacks). */
export function isNonNegativeAccount(account: string): boolean {
  return account.startsWith('fan:') && (account.endsWith(':cash:pending') || account.endsWith(':cash:held') || account.endsWith(':coupon'));
}

/** Records one movement of `amount` (> 0) of an asset between two accounts, on behalf of `fan`. */
export function postMove(
  world: World,
  fan: string,
  asset: Asset,
  source: string,
  target: string,
  amount: number,
  rule: string,
  eventId: string,
  ts: number,
  out: Posting[],
): void {
  if (!Number.isSafeInteger(amount) || amount <= 0) throw new Error(`invariant: a posting moves a positive integer amount, got ${amount}`);
  out.push({ seq: ++world.postingSeq, eventId, ts, asset, source, target, amount, rule, fan, programVersion: world.programVersion });
}

/**
 * Records a signed points movement for a fan (positive = award, negative = reversal or spend)
 * against a programme account (the issuing one unless given) and returns the posting, or null for zero.
 */
export function postPoints(
  world: World,
  fan: FanState,
  points: number,
  rule: string,
  eventId: string,
  ts: number,
  out: Posting[],
  counterpart: string = PROGRAM_POINTS_ACCOUNT,
): Posting | null {
  if (points === 0) return null;
  if (!Number.isSafeInteger(points)) throw new Error(`invariant: points must be a safe integer, got ${points}`);
  const account = fanAccount(fan.id);
  const posting: Posting = {
    seq: ++world.postingSeq,
    eventId,
    ts,
    asset: 'points',
    source: points > 0 ? counterpart : account,
    target: points > 0 ? account : counterpart,
    amount: Math.abs(points),
    rule,
    fan: fan.id,
    programVersion: world.programVersion,
  };
  fan.pointsBalance += points;
  fan.recentPostings.push({ ts, points, rule, eventId });
  if (fan.recentPostings.length > RECENT_POSTINGS_KEPT) fan.recentPostings.shift();
  out.push(posting);
  return posting;
}

export interface LedgerCheck {
  readonly ok: boolean;
  /** Per asset, the sum over all accounts (programme accounts included): zero when consistent. */
  readonly assets: { asset: string; sum: number }[];
  /** Fan accounts below zero that must never be (pending or held cash, coupons). */
  readonly negativeAccounts: { account: string; asset: string; balance: number }[];
  /** Fan balances in the derived state that differ from the sum of their postings. */
  readonly mismatchedFans: { fan: string; account: string; ledger: number; state: number }[];
}

/** The balances the fan state keeps, by account, to compare with the postings. */
function stateBalances(fan: FanState): [string, string, number][] {
  return [
    ['points', fanAccount(fan.id), fan.pointsBalance],
    ['cash', cashAccount(fan.id, 'pending'), fan.cashPending],
    ['cash', cashAccount(fan.id, 'available'), fan.cashAvailable],
    ['cash', cashAccount(fan.id, 'held'), fan.cashHeld],
    ['coupon', couponAccount(fan.id), fan.couponMinor],
  ];
}

/** Accumulates postings (in any number of passes) for `verifyLedger`'s checks. */
export class LedgerTally {
  private readonly balances = new Map<string, number>();
  private readonly assetNames = new Set<string>();

  add(posting: Pick<Posting, 'asset' | 'source' | 'target' | 'amount'>): void {
    const source = `${posting.asset}|${posting.source}`;
    const target = `${posting.asset}|${posting.target}`;
    this.balances.set(source, (this.balances.get(source) ?? 0) - posting.amount);
    this.balances.set(target, (this.balances.get(target) ?? 0) + posting.amount);
    this.assetNames.add(posting.asset);
  }

  /** The checks, against the balances the fans' derived states keep. */
  check(fans: Iterable<FanState>): LedgerCheck {
    const assetSums = new Map<string, number>([...this.assetNames].map((asset) => [asset, 0]));
    const negativeAccounts: LedgerCheck['negativeAccounts'] = [];
    for (const [key, value] of this.balances) {
      const split = key.indexOf('|');
      const asset = key.slice(0, split);
      const account = key.slice(split + 1);
      assetSums.set(asset, (assetSums.get(asset) ?? 0) + value);
      if (value < 0 && isNonNegativeAccount(account)) negativeAccounts.push({ account, asset, balance: value });
    }
    const mismatchedFans: LedgerCheck['mismatchedFans'] = [];
    for (const fan of fans) {
      for (const [asset, account, state] of stateBalances(fan)) {
        const ledger = this.balances.get(`${asset}|${account}`) ?? 0;
        if (ledger !== state) mismatchedFans.push({ fan: fan.id, account, ledger, state });
      }
    }
    const assets = [...assetSums].sort(([a], [b]) => (a < b ? -1 : 1)).map(([asset, sum]) => ({ asset, sum }));
    return { ok: assets.every((entry) => entry.sum === 0) && mismatchedFans.length === 0 && negativeAccounts.length === 0, assets, negativeAccounts, mismatchedFans };
  }
}

/** Sums postings per asset and per account; checks sums are zero, balances agree and none is negative where forbidden. */
export function verifyLedger(postings: Iterable<Pick<Posting, 'asset' | 'source' | 'target' | 'amount'>>, fans: Iterable<FanState>): LedgerCheck {
  const tally = new LedgerTally();
  for (const posting of postings) tally.add(posting);
  return tally.check(fans);
}
