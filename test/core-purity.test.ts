import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const CORE = new URL('../src/core/', import.meta.url);
const FORBIDDEN: [RegExp, string][] = [
  [/from ['"]node:/, 'node: import'],
  [/require\(/, 'require()'],
  [/Date\.now\(/, 'Date.now()'],
  [/new Date\(\)/, 'new Date() without an instant'],
  [/Math\.random\(/, 'Math.random()'],
  [/\bprocess\./, 'process'],
  [/from ['"]\.\.\//, 'import from outside the core'],
];

describe('the core stays pure (STYLE.md)', () => {
  const files = readdirSync(CORE).filter((name) => name.endsWith('.ts'));
  it('has source files to check', () => expect(files.length).toBeGreaterThan(5));
  it.each(files)('%s uses no I/O, clock, randomness or outer layer', (name) => {
    const text = readFileSync(new URL(name, CORE), 'utf8');
    for (const [pattern, what] of FORBIDDEN) expect(pattern.test(text), `${name} uses ${what}`).toBe(false);
  });
});
