/**
 * Points as double-entry postings (PRODUCT §1.4): every award moves points from the programme's
 * issuing account to the fan's; every reversal or negative adjustment moves them back.
 */
import type { Posting, World, FanState } from './state.js';

export const PROGRAM_POINTS_ACCOUNT = 'program:points:issued';
const RECENT_POSTINGS_KEPT = 10;

export function fanAccount(fanId: string): string {
  return `fan:${fanId}`;
}

/**
 * Records a signed points movement for a fan (positive = award, negative = reversal) and
 * returns the posting, or null for zero.
 */
export function postPoints(
  world: World,
  fan: FanState,
  points: number,
  rule: string,
  eventId: string,
  ts: number,
  out: Posting[],
): Posting | null {
  if (points === 0) return null;
  if (!Number.isSafeInteger(points)) throw new Error(`invariant: points must be a safe integer, got ${points}`);
  const account = fanAccount(fan.id);
  const posting: Posting = {
    seq: ++world.postingSeq,
    eventId,
    ts,
    asset: 'points',
    source: points > 0 ? PROGRAM_POINTS_ACCOUNT : account,
    target: points > 0 ? account : PROGRAM_POINTS_ACCOUNT,
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
  readonly assets: { asset: string; sum: number }[];
  readonly mismatchedFans: { fan: string; ledger: number; state: number }[];
}

/** Sums postings per asset and per account; checks the sum is zero and fan balances agree. */
export function verifyLedger(postings: Iterable<Pick<Posting, 'asset' | 'source' | 'target' | 'amount'>>, fans: Iterable<FanState>): LedgerCheck {
  const assetSums = new Map<string, number>();
  const balances = new Map<string, number>();
  for (const posting of postings) {
    const source = `${posting.asset}|${posting.source}`;
    const target = `${posting.asset}|${posting.target}`;
    balances.set(source, (balances.get(source) ?? 0) - posting.amount);
    balances.set(target, (balances.get(target) ?? 0) + posting.amount);
    assetSums.set(posting.asset, 0);
  }
  for (const [key, value] of balances) {
    const asset = key.slice(0, key.indexOf('|'));
    assetSums.set(asset, (assetSums.get(asset) ?? 0) + value);
  }
  const mismatchedFans: LedgerCheck['mismatchedFans'] = [];
  for (const fan of fans) {
    const ledger = balances.get(`points|${fanAccount(fan.id)}`) ?? 0;
    if (ledger !== fan.pointsBalance) mismatchedFans.push({ fan: fan.id, ledger, state: fan.pointsBalance });
  }
  const assets = [...assetSums].map(([asset, sum]) => ({ asset, sum }));
  return { ok: assets.every((entry) => entry.sum === 0) && mismatchedFans.length === 0, assets, mismatchedFans };
}
