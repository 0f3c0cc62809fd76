/**
 * One evaluator for every rule condition of a program (levels, layers, portraits).
 * A condition is data; evaluating it returns the verdict and the figures that produced it.
 */
export type CountFact = 'interactions' | 'shares' | 'purchases' | 'qualifiedReferrals' | 'selectedContents' | 'activity';
export const COUNT_FACTS: readonly CountFact[] = ['interactions', 'shares', 'purchases', 'qualifiedReferrals', 'selectedContents', 'activity'];

export type Condition =
  | { readonly all: readonly Condition[] }
  | { readonly any: readonly Condition[] }
  | { readonly not: Condition }
  | { readonly fact: CountFact; readonly windowDays?: number; readonly gte?: number; readonly lte?: number; readonly eq?: number }
  | { readonly fact: 'recognized'; readonly eq: boolean }
  | {
      readonly profile: string;
      readonly gte?: number;
      readonly lte?: number;
      readonly eq?: string | number;
      readonly in?: readonly (string | number)[];
    };

/** What a condition can ask about a fan at an instant. */
export interface FactSource {
  count(fact: CountFact, windowDays: number | null): number;
  recognized(): boolean;
  profile(name: string): string | number | null;
}

export interface Verdict {
  readonly ok: boolean;
  /** Human-readable figures, e.g. "interactions in 90 d = 14 ≥ 10". */
  readonly reasons: string[];
  /** For a failed condition: what is missing, e.g. "2 more interactions in 90 d". */
  readonly missing: string[];
  /** How far from passing: the sum of missing counts (for `any`, its smallest branch); 0 when ok. */
  readonly shortfall: number;
}

function describeFact(fact: string, windowDays: number | undefined): string {
  return windowDays === undefined ? `${fact} ever` : `${fact} in ${windowDays} d`;
}

function evaluateCount(
  cond: { fact: CountFact; windowDays?: number; gte?: number; lte?: number; eq?: number },
  facts: FactSource,
): Verdict {
  const value = facts.count(cond.fact, cond.windowDays ?? null);
  const label = describeFact(cond.fact, cond.windowDays);
  const parts: string[] = [];
  const missing: string[] = [];
  let shortfall = 0;
  if (cond.gte !== undefined) {
    parts.push(`≥ ${cond.gte}`);
    if (value < cond.gte) {
      shortfall += cond.gte - value;
      missing.push(`${cond.gte - value} more ${label}`);
    }
  }
  if (cond.lte !== undefined) {
    parts.push(`≤ ${cond.lte}`);
    if (value > cond.lte) {
      shortfall += value - cond.lte;
      missing.push(`${value - cond.lte} fewer ${label}`);
    }
  }
  if (cond.eq !== undefined) {
    parts.push(`= ${cond.eq}`);
    if (value !== cond.eq) {
      shortfall += Math.abs(value - cond.eq);
      missing.push(`${label} = ${cond.eq}`);
    }
  }
  const ok = shortfall === 0;
  const verb = ok ? '' : ' (needs ';
  const reason = ok ? `${label} = ${value} ${parts.join(', ')}` : `${label} = ${value}${verb}${parts.join(', ')})`;
  return { ok, reasons: [reason], missing, shortfall };
}

function evaluateProfile(
  cond: { profile: string; gte?: number; lte?: number; eq?: string | number; in?: readonly (string | number)[] },
  facts: FactSource,
): Verdict {
  const value = facts.profile(cond.profile);
  let ok = value !== null;
  const numeric = typeof value === 'number' ? value : typeof value === 'string' && value.trim() !== '' ? Number(value) : NaN;
  if (ok && cond.gte !== undefined) ok = numeric >= cond.gte;
  if (ok && cond.lte !== undefined) ok = numeric <= cond.lte;
  if (ok && cond.eq !== undefined) ok = value === cond.eq || String(value) === String(cond.eq);
  if (ok && cond.in !== undefined) ok = cond.in.some((item) => String(item) === String(value));
  const reason = `${cond.profile} = ${value === null ? 'unknown' : String(value)}`;
  return { ok, reasons: [reason], missing: ok ? [] : [`${cond.profile} does not match`], shortfall: ok ? 0 : 1 };
}

/**
 * Evaluates a condition against a fan's facts.
 * @example
 * evaluateCondition({ fact: 'interactions', windowDays: 7, gte: 3 }, facts)
 * // → { ok: true, reasons: ['interactions in 7 d = 4 ≥ 3'], missing: [] }
 */
export function evaluateCondition(cond: Condition, facts: FactSource): Verdict {
  if ('all' in cond) {
    const results = cond.all.map((child) => evaluateCondition(child, facts));
    return {
      ok: results.every((result) => result.ok),
      reasons: results.flatMap((result) => result.reasons),
      missing: results.flatMap((result) => result.missing),
      shortfall: results.reduce((sum, result) => sum + result.shortfall, 0),
    };
  }
  if ('any' in cond) {
    const results = cond.any.map((child) => evaluateCondition(child, facts));
    const passing = results.filter((result) => result.ok);
    if (passing.length > 0) return { ok: true, reasons: passing[0].reasons, missing: [], shortfall: 0 };
    return {
      ok: false,
      reasons: [`none of: ${results.map((result) => result.reasons.join(' and ')).join(' | ')}`],
      missing: [`one of: ${results.map((result) => result.missing.join(' and ')).join(' | ')}`],
      shortfall: Math.min(...results.map((result) => result.shortfall)),
    };
  }
  if ('not' in cond) {
    const inner = evaluateCondition(cond.not, facts);
    return {
      ok: !inner.ok,
      reasons: inner.reasons.map((reason) => `not (${reason})`),
      missing: inner.ok ? ['the opposite'] : [],
      shortfall: inner.ok ? 1 : 0,
    };
  }
  if ('profile' in cond) return evaluateProfile(cond, facts);
  if (cond.fact === 'recognized') {
    const value = facts.recognized();
    const ok = value === cond.eq;
    return {
      ok,
      reasons: [value ? 'brand recognition given' : 'no brand recognition yet'],
      missing: ok ? [] : [cond.eq ? 'brand recognition (op_recognize)' : 'no brand recognition'],
      shortfall: ok ? 0 : 1,
    };
  }
  return evaluateCount(cond, facts);
}

/** Every count window a condition reads, to know how much history a fan must keep. */
export function collectWindows(cond: Condition, into: Set<number> = new Set()): Set<number> {
  if ('all' in cond) cond.all.forEach((child) => collectWindows(child, into));
  else if ('any' in cond) cond.any.forEach((child) => collectWindows(child, into));
  else if ('not' in cond) collectWindows(cond.not, into);
  else if ('fact' in cond && cond.fact !== 'recognized' && cond.windowDays !== undefined) into.add(cond.windowDays);
  return into;
}
