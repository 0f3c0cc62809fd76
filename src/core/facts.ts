/**
 * Windowed facts of one fan at an instant: "N days ending at t" holds t − N×24 h < ts ≤ t.
 * History arrays are sorted because the engine applies events in log order.
 */
import { DAY_MS } from './calendar.js';
import { evaluateCondition, type Condition, type CountFact, type FactSource } from './conditions.js';
import type { FanState, Order } from './state.js';

/** Index of the first element greater than `bound` in a sorted array. */
export function firstAfter(sorted: readonly number[], bound: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] > bound) high = mid;
    else low = mid + 1;
  }
  return low;
}

/** How many elements of a sorted array are below `value`. */
export function countBelow(sorted: ArrayLike<number>, value: number): number {
  let low = 0;
  let high = sorted.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sorted[mid] < value) low = mid + 1;
    else high = mid;
  }
  return low;
}

/** Count of entries in (at − windowDays × 24 h, at]; all entries, when windowDays is null. */
export function countInWindow(sorted: readonly number[], at: number, windowDays: number | null): number {
  const end = firstAfter(sorted, at);
  if (windowDays === null) return end;
  return end - firstAfter(sorted, at - windowDays * DAY_MS);
}

/** Drops entries at or before `bound` from parallel sorted arrays. */
export function pruneBefore(sorted: number[], bound: number, ...parallel: unknown[][]): void {
  if (sorted.length === 0 || sorted[0] > bound) return;
  const cut = firstAfter(sorted, bound);
  sorted.splice(0, cut);
  for (const array of parallel) array.splice(0, cut);
}

export function isCounting(order: Order): boolean {
  return order.refundedMinor < order.amountMinor;
}

/**
 * The part of `amount` (points or cash an order paid) that the order's refunds so far take back:
 * floor(amount × refunded / order amount); all of it for an order of amount 0, which has nothing
 * left to keep.
 */
export function refundedShare(amount: number, order: Order): number {
  return order.amountMinor === 0 ? amount : Math.floor((amount * order.refundedMinor) / order.amountMinor);
}

/**
 * Purchases not fully refunded, bought in the window ending at `at`. Orders are in `ts` order (the
 * engine appends them in log order), so the window is found by bisection and the scan stops at `at`.
 */
export function countPurchases(fan: FanState, at: number, windowDays: number | null): number {
  const orders = fan.orders;
  let index = 0;
  if (windowDays !== null) {
    const from = at - windowDays * DAY_MS;
    let high = orders.length;
    while (index < high) {
      const mid = (index + high) >>> 1;
      if (orders[mid].ts > from) high = mid;
      else index = mid + 1;
    }
  }
  let count = 0;
  for (; index < orders.length; index++) {
    const order = orders[index];
    if (order.ts > at) break;
    if (isCounting(order)) count++;
  }
  return count;
}

export function countSelected(fan: FanState, at: number, windowDays: number | null): number {
  if (windowDays === null) return fan.selectedCount;
  const from = at - windowDays * DAY_MS;
  let count = 0;
  for (const key in fan.selected) {
    const ts = fan.selected[key];
    if (ts > from && ts <= at) count++;
  }
  return count;
}

export function countFact(fan: FanState, fact: CountFact, at: number, windowDays: number | null): number {
  switch (fact) {
    case 'interactions':
      return windowDays === null ? fan.interactionsEver : countInWindow(fan.ixTs, at, windowDays);
    case 'shares':
      return countInWindow(fan.shareTs, at, windowDays);
    case 'activity':
      return countInWindow(fan.activityTs, at, windowDays);
    case 'purchases':
      return countPurchases(fan, at, windowDays);
    case 'qualifiedReferrals':
      return countInWindow(fan.qualifiedReferralTs, at, windowDays);
    case 'selectedContents':
      return countSelected(fan, at, windowDays);
  }
}

/** The instant of the earliest entry `countFact` counts in the window ending at `at` (Infinity when none). */
export function oldestCounted(fan: FanState, fact: CountFact, at: number, windowDays: number): number {
  const from = at - windowDays * DAY_MS;
  const oldestOf = (sorted: readonly number[]): number => {
    const first = firstAfter(sorted, from);
    return first < sorted.length && sorted[first] <= at ? sorted[first] : Number.POSITIVE_INFINITY;
  };
  switch (fact) {
    case 'interactions':
      return oldestOf(fan.ixTs);
    case 'shares':
      return oldestOf(fan.shareTs);
    case 'activity':
      return oldestOf(fan.activityTs);
    case 'qualifiedReferrals':
      return oldestOf(fan.qualifiedReferralTs);
    case 'purchases': {
      let oldest = Number.POSITIVE_INFINITY;
      for (const order of fan.orders) if (order.ts > from && order.ts <= at && isCounting(order) && order.ts < oldest) oldest = order.ts;
      return oldest;
    }
    case 'selectedContents': {
      let oldest = Number.POSITIVE_INFINITY;
      for (const key in fan.selected) {
        const ts = fan.selected[key];
        if (ts > from && ts <= at && ts < oldest) oldest = ts;
      }
      return oldest;
    }
  }
}

/** The facts a condition may read about `fan` at instant `at`. */
export function factsOf(fan: FanState, at: number): FactSource {
  return {
    count: (fact, windowDays) => countFact(fan, fact, at, windowDays),
    recognized: () => fan.recognized,
    profile: (name) => fan.profile[name] ?? null,
  };
}

export type FanPredicate = (fan: FanState, at: number) => boolean;

const compiled = new WeakMap<Condition, FanPredicate>();

/**
 * A condition compiled once into a predicate over a fan at an instant: the engine's hot path.
 * Same semantics as evaluateCondition (which explains its verdicts); tests pin both.
 */
export function fanPredicate(cond: Condition): FanPredicate {
  return compiledOnce(compiled, cond, buildPredicate);
}

/** What `build` makes of a condition, made once per condition object. */
function compiledOnce<T>(cache: WeakMap<Condition, T>, cond: Condition, build: (cond: Condition) => T): T {
  let made = cache.get(cond);
  if (made === undefined) {
    made = build(cond);
    cache.set(cond, made);
  }
  return made;
}

export type FanShortfall = (fan: FanState, at: number) => number;

const compiledShortfalls = new WeakMap<Condition, FanShortfall>();

/**
 * How far a fan is from meeting a condition at an instant, compiled once: the `shortfall` of
 * evaluateCondition (0 when met) without its texts, for the state a write stores of every fan it
 * rewrites. Tests pin both to the same numbers.
 */
export function fanShortfall(cond: Condition): FanShortfall {
  return compiledOnce(compiledShortfalls, cond, buildShortfall);
}

function buildShortfall(cond: Condition): FanShortfall {
  if ('all' in cond) {
    const parts = cond.all.map(fanShortfall);
    return (fan, at) => {
      let sum = 0;
      for (const part of parts) sum += part(fan, at);
      return sum;
    };
  }
  if ('any' in cond) {
    const parts = cond.any.map(fanShortfall);
    return (fan, at) => {
      let least = Number.POSITIVE_INFINITY;
      for (const part of parts) {
        least = Math.min(least, part(fan, at));
        if (least === 0) return 0;
      }
      return least;
    };
  }
  if ('not' in cond) {
    const inner = fanPredicate(cond.not);
    return (fan, at) => (inner(fan, at) ? 1 : 0);
  }
  if ('profile' in cond || cond.fact === 'recognized') {
    const met = fanPredicate(cond);
    return (fan, at) => (met(fan, at) ? 0 : 1);
  }
  const { fact, gte, lte, eq } = cond;
  const windowDays = cond.windowDays ?? null;
  return (fan, at) => {
    const value = countFact(fan, fact, at, windowDays);
    let shortfall = 0;
    if (gte !== undefined && value < gte) shortfall += gte - value;
    if (lte !== undefined && value > lte) shortfall += value - lte;
    if (eq !== undefined && value !== eq) shortfall += Math.abs(value - eq);
    return shortfall;
  };
}

function buildPredicate(cond: Condition): FanPredicate {
  if ('all' in cond) {
    const parts = cond.all.map(fanPredicate);
    return (fan, at) => {
      for (const part of parts) if (!part(fan, at)) return false;
      return true;
    };
  }
  if ('any' in cond) {
    const parts = cond.any.map(fanPredicate);
    return (fan, at) => {
      for (const part of parts) if (part(fan, at)) return true;
      return false;
    };
  }
  if ('not' in cond) {
    const inner = fanPredicate(cond.not);
    return (fan, at) => !inner(fan, at);
  }
  if ('profile' in cond) return (fan, at) => evaluateCondition(cond, factsOf(fan, at)).ok;
  if (cond.fact === 'recognized') {
    const expected = cond.eq;
    return (fan) => fan.recognized === expected;
  }
  const { fact, gte, lte, eq } = cond;
  const windowDays = cond.windowDays ?? null;
  return (fan, at) => {
    const value = countFact(fan, fact, at, windowDays);
    return (gte === undefined || value >= gte) && (lte === undefined || value <= lte) && (eq === undefined || value === eq);
  };
}
