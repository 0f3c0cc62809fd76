/**
 * Levels (PRODUCT §3.1): promotion cascade, Lv5 eligibility, midnight demotion with grace, locks.
 */
import { DAY_MS } from './calendar.js';
import { evaluateCondition, type Condition, type Verdict } from './conditions.js';
import { factsOf, fanPredicate, oldestCounted } from './facts.js';
import type { Program } from './program.js';
import type { FanState } from './state.js';

export const TOP_LEVEL = 5;
export const DEMOTABLE_FROM_LEVEL = 4;

export interface LevelChange {
  readonly from: number;
  readonly to: number;
  readonly kind: 'promotion' | 'demotion' | 'lock' | 'unlock';
}

export function entryVerdict(fan: FanState, level: number, program: Program, at: number): Verdict {
  const entry = program.levels[level - 1]?.entry;
  if (!entry) return { ok: true, reasons: ['the fan exists'], missing: [], shortfall: 0 };
  return evaluateCondition(entry, factsOf(fan, at));
}

/** The next level's entry condition without the recognition part: "eligible" for Lv5. */
function withoutRecognition(cond: Condition): Condition | null {
  if ('fact' in cond && cond.fact === 'recognized') return null;
  if ('all' in cond) {
    const rest = cond.all.map(withoutRecognition).filter((child): child is Condition => child !== null);
    return rest.length === 0 ? null : { all: rest };
  }
  return cond;
}

const restOfTopEntry = new WeakMap<Condition, Condition | null>();

/** True for a Lv4 fan who meets every Lv5 condition except brand recognition. */
export function isEligibleForTop(fan: FanState, program: Program, at: number): boolean {
  if (fan.level !== TOP_LEVEL - 1 || fan.recognized) return false;
  const entry = program.levels[TOP_LEVEL - 1].entry;
  if (!entry) return false;
  let rest = restOfTopEntry.get(entry);
  if (rest === undefined) {
    rest = withoutRecognition(entry);
    restOfTopEntry.set(entry, rest);
  }
  return rest === null || fanPredicate(rest)(fan, at);
}

/** Climbs one level at a time while each next entry condition holds; returns the change or null. */
export function promote(fan: FanState, program: Program, at: number): LevelChange | null {
  if (fan.lockedLevel !== null) return null;
  const from = fan.level;
  while (fan.level < TOP_LEVEL) {
    const entry = program.levels[fan.level].entry;
    if (entry && !fanPredicate(entry)(fan, at)) break;
    fan.level++;
  }
  if (fan.level === from) return null;
  fan.lastPromotionTs = at;
  return { from, to: fan.level, kind: 'promotion' };
}

/**
 * The midnight check at instant `boundary` (before events stamped at it): a Lv4/Lv5 fan failing
 * its level's maintenance condition drops one level, unless promoted within the grace period.
 */
export function demoteAtMidnight(fan: FanState, program: Program, boundary: number): LevelChange | null {
  if (fan.lockedLevel !== null || fan.level < DEMOTABLE_FROM_LEVEL || boundary <= fan.firstTs) return null;
  if (fan.lastPromotionTs !== null && boundary - fan.lastPromotionTs < program.demotion.graceDays * DAY_MS) return null;
  const maintain = program.levels[fan.level - 1].maintain;
  if (!maintain || fanPredicate(maintain)(fan, boundary)) return null;
  const from = fan.level;
  fan.level--;
  return { from, to: fan.level, kind: 'demotion' };
}

/**
 * After a midnight at `boundary` that did not demote `fan`: the first instant at which a later
 * midnight could, if nothing but time changes the fan's facts. Counts over a window change with
 * time only when an entry leaves it, so this is the end of the grace period, or the moment the
 * oldest entry counted by a windowed fact of the level's maintenance condition leaves its
 * window; Infinity when time alone cannot change the answer. An event that changes the fan's
 * facts makes the answer void (the caller forgets it).
 */
export function maintenanceSteadyUntil(fan: FanState, program: Program, boundary: number): number {
  if (fan.lockedLevel !== null || fan.level < DEMOTABLE_FROM_LEVEL || boundary <= fan.firstTs) return boundary;
  const graceMs = program.demotion.graceDays * DAY_MS;
  if (fan.lastPromotionTs !== null && boundary - fan.lastPromotionTs < graceMs) return fan.lastPromotionTs + graceMs;
  const maintain = program.levels[fan.level - 1].maintain;
  return maintain ? windowExit(maintain, fan, boundary) : Number.POSITIVE_INFINITY;
}

/** The first instant after `at` at which an entry counted by a windowed fact of `cond` leaves its window. */
function windowExit(cond: Condition, fan: FanState, at: number): number {
  if ('all' in cond) return Math.min(...cond.all.map((part) => windowExit(part, fan, at)));
  if ('any' in cond) return Math.min(...cond.any.map((part) => windowExit(part, fan, at)));
  if ('not' in cond) return windowExit(cond.not, fan, at);
  if ('profile' in cond || cond.fact === 'recognized' || cond.windowDays === undefined) return Number.POSITIVE_INFINITY;
  // An entry at ts is counted while at − window < ts ≤ at: it leaves at ts + window.
  return oldestCounted(fan, cond.fact, at, cond.windowDays) + cond.windowDays * DAY_MS;
}

/** The reasons a fan holds its level, and what the next level still needs, at `at`. */
export function explainLevel(fan: FanState, program: Program, at: number): {
  reasons: string[];
  next: { level: number; name: string; missing: string[]; met: string[] } | null;
} {
  const reasons: string[] = [];
  if (fan.lockedLevel !== null) reasons.push(`locked at Lv${fan.lockedLevel} by an operator (op_lock_level)`);
  else if (fan.level === 1) reasons.push('Lv1: the fan exists');
  else {
    const verdict = entryVerdict(fan, fan.level, program, at);
    const maintain = program.levels[fan.level - 1].maintain;
    const keeps = fan.level < DEMOTABLE_FROM_LEVEL ? ' (this level is kept without activity)' : '';
    reasons.push(`Lv${fan.level} held since its promotion${keeps}; its entry rule at this instant: ${verdict.reasons.join(', ')}`);
    if (maintain) {
      const kept = evaluateCondition(maintain, factsOf(fan, at));
      reasons.push(`maintenance ${kept.ok ? 'met' : 'NOT met (demotion at a coming midnight unless active)'}: ${kept.reasons.join(', ')}`);
    }
  }
  if (fan.level >= TOP_LEVEL) return { reasons, next: null };
  const nextLevel = fan.level + 1;
  const verdict = entryVerdict(fan, nextLevel, program, at);
  return {
    reasons,
    next: { level: nextLevel, name: program.levels[nextLevel - 1].name, missing: verdict.missing, met: verdict.reasons },
  };
}
