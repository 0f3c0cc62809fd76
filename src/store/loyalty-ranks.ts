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

/** The order of a typed array's sort, where −0 comes before +0. */
function sortsFirst(x: number, y: number): boolean {
  return x < y || (x === y && !(Object.is(x, 0) && Object.is(y, -0)));
}

/**
 * The ranks of a community kept in memory between state writes (a server's world): brought up to
 * date from the fans a write rewrote, in one merge over the sorted values, instead of reading and
 * sorting every fan's value for each write of a thousand events.
 */
export class HeldRanks {
  /** Per fan number, the value it is ranked with (NaN: none, it has no activity). */
  private byNo: Float64Array;
  /** Every ranked value in order; replaced, never changed, so that a returned view stays valid. */
  private sorted: Float64Array;

  private constructor(byNo: Float64Array, sorted: Float64Array) {
    this.byNo = byNo;
    this.sorted = sorted;
  }

  /** The ranks of every fan, held for later updates. */
  static of(fans: Iterable<{ no: number; loyaltyLog: number }>, total: number): HeldRanks {
    const held = new HeldRanks(new Float64Array(Math.max(1024, total)).fill(Number.NaN), new Float64Array(0));
    held.update(fans);
    return held;
  }

  /** Takes the current values of `fans` (the ones changed since the last call, and any others). */
  update(fans: Iterable<{ no: number; loyaltyLog: number }>): void {
    const removed: number[] = [];
    const added: number[] = [];
    for (const fan of fans) {
      if (fan.no >= this.byNo.length) {
        const grown = new Float64Array(Math.max(fan.no + 1, this.byNo.length * 2)).fill(Number.NaN);
        grown.set(this.byNo);
        this.byNo = grown;
      }
      const before = this.byNo[fan.no];
      const after = Number.isFinite(fan.loyaltyLog) ? fan.loyaltyLog : Number.NaN;
      if (Object.is(before, after)) continue;
      if (!Number.isNaN(before)) removed.push(before);
      if (!Number.isNaN(after)) added.push(after);
      this.byNo[fan.no] = after;
    }
    if (removed.length === 0 && added.length === 0) return;
    const out = Float64Array.from(removed).sort();
    const into = Float64Array.from(added).sort();
    const old = this.sorted;
    const next = new Float64Array(old.length - out.length + into.length);
    // Values leave in order (each one is in `old`, exactly); new ones are merged in.
    let i = 0;
    let r = 0;
    let a = 0;
    let n = 0;
    while (i < old.length || a < into.length) {
      if (i < old.length && r < out.length && Object.is(old[i], out[r])) {
        i++;
        r++;
      } else if (a < into.length && (i >= old.length || sortsFirst(into[a], old[i]))) next[n++] = into[a++];
      else next[n++] = old[i++];
    }
    if (r !== out.length || n !== next.length) throw new Error('invariant: a ranked loyalty value to replace was not among the held ones');
    this.sorted = next;
  }

  /** The ranks of a community of `total` fans (the ones never ranked have no activity). */
  ranks(total: number): LoyaltyRanks {
    return { total, unranked: total - this.sorted.length, sorted: this.sorted };
  }
}
