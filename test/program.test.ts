import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { DEFAULT_PROGRAM_YAML, PROGRAM_SCHEMA_DIGEST, parseProgram, parseStoredSpec, programSchema, storedSpecJson } from '../src/core/program.js';

describe('program file (PRODUCT §1.3)', () => {
  it('the embedded default equals the YAML file in the repository', () => {
    expect(DEFAULT_PROGRAM_YAML).toBe(readFileSync(new URL('../src/core/default-program.yaml', import.meta.url), 'utf8'));
  });

  it('the default program validates and carries the seed numbers', () => {
    const parsed = parseProgram(DEFAULT_PROGRAM_YAML);
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect(parsed.spec.timezone).toBe('Asia/Shanghai');
    expect(parsed.spec.levels.map((l) => l.pointsMultiplier)).toEqual([1, 1.2, 1.5, 2, 3]);
    expect(parsed.spec.levels.map((l) => l.benefits.discountPercent)).toEqual([5, 10, 15, 20, 25]);
    expect(parsed.spec.points.catalog.map((item) => [item.id, item.points])).toEqual([
      ['coupon-5', 50], ['coupon-20', 200], ['product-50', 500], ['product-100', 1000], ['tester-seat', 2000], ['offline-gathering', 5000],
    ]);
  });

  it('reports a wrong value at its line and path', () => {
    const broken = DEFAULT_PROGRAM_YAML.replace('pointsMultiplier: 1.2', 'pointsMultiplier: lots');
    const parsed = parseProgram(broken);
    expect(parsed.ok).toBe(false);
    if (parsed.ok) return;
    const line = broken.split('\n').findIndex((text) => text.includes('pointsMultiplier: lots')) + 1;
    expect(parsed.issues[0]).toMatchObject({ path: 'levels[1].pointsMultiplier', line });
  });

  it('reports unknown keys, bad time zones and YAML syntax errors with lines', () => {
    const typo = parseProgram(DEFAULT_PROGRAM_YAML.replace('graceDays: 30', 'graceDayz: 30'));
    expect(typo.ok).toBe(false);
    if (!typo.ok) {
      expect(typo.issues.map((issue) => issue.path)).toContain('demotion.graceDays');
      expect(typo.issues.some((issue) => issue.message.includes('graceDayz') && issue.line !== null)).toBe(true);
    }
    const zone = parseProgram(DEFAULT_PROGRAM_YAML.replace('timezone: Asia/Shanghai', 'timezone: Mars/Olympus'));
    expect(zone.ok).toBe(false);
    if (!zone.ok) expect(zone.issues[0]).toMatchObject({ path: 'timezone', line: 5 });
    const syntax = parseProgram('name: x\nlevels: [\n');
    expect(syntax.ok).toBe(false);
    if (!syntax.ok) expect(syntax.issues[0].line).not.toBeNull();
  });

  it('the stored-spec digest follows the schema: a changed type, bound or default changes it', () => {
    const digestOf = (schema: z.ZodType) => createHash('sha256').update(JSON.stringify(z.toJSONSchema(schema, { unrepresentable: 'any', io: 'output' }))).digest('hex').slice(0, 16);
    // After a change to programSchema, set PROGRAM_SCHEMA_DIGEST to the value this prints: specs
    // stored before are then parsed again on reading, and get the new defaults.
    expect(digestOf(programSchema), 'PROGRAM_SCHEMA_DIGEST in src/core/program.ts').toBe(PROGRAM_SCHEMA_DIGEST);
    const changedDefault = programSchema.safeExtend({ currency: z.string().min(1).default('EUR') });
    expect(digestOf(changedDefault)).not.toBe(PROGRAM_SCHEMA_DIGEST);
  });

  it('a stored spec comes back as validated; one stored under another schema is parsed again for its defaults', () => {
    const parsed = parseProgram(DEFAULT_PROGRAM_YAML);
    if (!parsed.ok) throw new Error('the default program does not validate');
    expect(parseStoredSpec(storedSpecJson(parsed.spec))).toEqual(parsed.spec);
    // Stored by an older schema that had no referral section (or before specs were marked).
    const { referral: _referral, ...older } = parsed.spec;
    expect(parseStoredSpec(JSON.stringify(older)).referral).toEqual(parsed.spec.referral);
    expect(parseStoredSpec(JSON.stringify({ ...older, $schema: 'another' })).referral).toEqual(parsed.spec.referral);
    expect(() => parseStoredSpec(JSON.stringify({ ...parsed.spec, timezone: 'Mars/Olympus' }))).toThrow();
  });
});
