/**
 * Every fan's loyalty value, sorted, as stored by both adapters: one fan's percentile is a binary
 * search instead of a scan of the community.
 */
import { countBelow } from '../core/facts.js';

export interface LoyaltyRanks {
  readonly total: number;
  /** Fans without activity: they rank below every active fan. */
  readonly unranked: number;
  readonly sorted: Float64Array;
}

/** The stored state (its log position and program) whose ranks a reader wants. */
export interface RanksOf {
  readonly appliedSeq: number;
  readonly programVersion: string;
}

/** The key both adapters keep decoded ranks under: the state's position and program. */
export function ranksVersion(appliedSeq: number | string, programVersion: string): string {
  return `${appliedSeq}|${programVersion}`;
}

/** The stored bytes as doubles (copied: a blob's bytes may not be 8-byte aligned in its buffer). */
export function decodeRanks(total: number, unranked: number, blob: Buffer): LoyaltyRanks {
  return { total, unranked, sorted: new Float64Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)) };
}

export function encodeRanks(ranks: LoyaltyRanks): Buffer {
  return Buffer.from(ranks.sorted.buffer, ranks.sorted.byteOffset, ranks.sorted.byteLength);
}

/** The ranks of a community from its fans' loyalty values (not finite: no activity). */
export function ranksOf(values: Iterable<number>, total: number): LoyaltyRanks {
  const sorted = new Float64Array(total);
  let ranked = 0;
  for (const value of values) if (Number.isFinite(value)) sorted[ranked++] = value;
  return { total, unranked: total - ranked, sorted: sorted.subarray(0, ranked).sort() };
}

/** How many fans have a loyalty value below `value`, of how many. */
export function rankOf(ranks: LoyaltyRanks, value: number): { below: number; total: number } {
  return { below: ranks.unranked + countBelow(ranks.sorted, value), total: ranks.total };
}
