/**
 * Every fan's loyalty value, sorted, as stored by both adapters: one fan's percentile is a binary
 * search instead of a scan of the community.
 */
export interface LoyaltyRanks {
  readonly total: number;
  /** Fans without activity: they rank below every active fan. */
  readonly unranked: number;
  readonly sorted: Float64Array;
}

/** The stored bytes as doubles (copied: a blob's bytes may not be 8-byte aligned in its buffer). */
export function decodeRanks(total: number, unranked: number, blob: Buffer): LoyaltyRanks {
  return { total, unranked, sorted: new Float64Array(blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.byteLength)) };
}

export function encodeRanks(sortedValues: readonly number[]): Buffer {
  return Buffer.from(Float64Array.from(sortedValues).buffer);
}

/** How many fans have a loyalty value below `value`, of how many. */
export function rankOf(ranks: LoyaltyRanks, value: number): { below: number; total: number } {
  const { sorted } = ranks;
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] < value) low = mid + 1;
    else high = mid;
  }
  return { below: ranks.unranked + low, total: ranks.total };
}
