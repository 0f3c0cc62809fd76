import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { evaluateCondition, type Condition, type FactSource } from '../src/core/conditions.js';
import { conditionSchema } from '../src/core/program.js';

type Row = [string, Condition, Record<string, number | boolean | string>, boolean];
const rows = JSON.parse(readFileSync(new URL('./golden/conditions.json', import.meta.url), 'utf8')) as Row[];

function factsFrom(table: Record<string, number | boolean | string>): FactSource {
  return {
    count: (fact, windowDays) => Number(table[`${fact}:${windowDays ?? 'ever'}`] ?? 0),
    recognized: () => table.recognized === true,
    profile: (name) => (table[`profile:${name}`] as string | number | undefined) ?? null,
  };
}

describe('condition evaluator (golden cases)', () => {
  it.each(rows)('%s', (_name, condition, facts, expected) => {
    expect(conditionSchema.safeParse(condition).success).toBe(true);
    const verdict = evaluateCondition(condition, factsFrom(facts));
    expect(verdict.ok).toBe(expected);
    expect(verdict.reasons.length).toBeGreaterThan(0);
    if (expected) expect(verdict.shortfall).toBe(0);
    else expect(verdict.missing.length).toBeGreaterThan(0);
  });

  it('explains figures and what is missing', () => {
    const verdict = evaluateCondition({ fact: 'interactions', windowDays: 90, gte: 10 }, factsFrom({ 'interactions:90': 7 }));
    expect(verdict.reasons).toEqual(['interactions in 90 d = 7 (needs ≥ 10)']);
    expect(verdict.missing).toEqual(['3 more interactions in 90 d']);
    expect(verdict.shortfall).toBe(3);
  });
});
