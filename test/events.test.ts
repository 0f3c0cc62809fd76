import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson, compareCodePoints, compareEvents, parseAmountMinor, parseTimestamp, validateEvent } from '../src/core/events.js';

const ok = (raw: unknown) => {
  const result = validateEvent(raw);
  if (!result.ok) throw new Error(JSON.stringify(result.issues));
  return result.event;
};
const issues = (raw: unknown) => {
  const result = validateEvent(raw);
  if (result.ok) throw new Error('expected a rejection');
  return result.issues;
};

describe('event contract (PRODUCT §2)', () => {
  it('accepts the documented example', () => {
    const event = ok({ id: 'e-1001', type: 'like', fan: 'u42', ts: '2026-10-01T12:00:00+08:00', channel: 'xiaohongshu', props: { contentId: 'p9', category: 'guide' } });
    expect(event.ts).toBe(Date.parse('2026-10-01T04:00:00Z'));
  });

  it('timestamps: RFC 3339 with seconds and offset, fractions, Z, or integer epoch ms', () => {
    expect(parseTimestamp('2026-10-01T12:00:00.5+08:00')).toBe(Date.parse('2026-10-01T04:00:00.500Z'));
    expect(parseTimestamp('2026-10-01T04:00:00Z')).toBe(Date.parse('2026-10-01T04:00:00Z'));
    expect(parseTimestamp(1_759_291_200_000)).toBe(1_759_291_200_000);
    for (const bad of ['2026-10-01', '2026-10-01T12:00+08:00', '2026-10-01T12:00:00', '2026-02-30T00:00:00Z', '2026-10-01T24:00:00Z', 1.5, '1759291200000', null]) {
      expect(typeof parseTimestamp(bad)).toBe('string');
    }
  });

  it('timestamps in any offset parse to the instant Date.parse gives (fast path and regex path agree)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 4_102_444_800 }), fc.integer({ min: -14 * 60, max: 14 * 60 }), fc.boolean(), (seconds, offsetMinutes, fraction) => {
        const local = new Date(seconds * 1000 + offsetMinutes * 60_000).toISOString().slice(0, 19);
        const sign = offsetMinutes < 0 ? '-' : '+';
        const abs = Math.abs(offsetMinutes);
        const offset = offsetMinutes === 0 && fraction ? 'Z' : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
        const text = `${local}${fraction ? '.250' : ''}${offset}`;
        expect(parseTimestamp(text)).toBe(Date.parse(text));
        expect(parseTimestamp(text.replace('T', 't'))).toBe(Date.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it('amounts: decimal ≥ 0 with at most 2 decimals, exact in minor units', () => {
    expect(parseAmountMinor(19.99)).toBe(1999);
    expect(parseAmountMinor(0.1)).toBe(10);
    expect(parseAmountMinor('12.5')).toBe(1250);
    expect(typeof parseAmountMinor(1.999)).toBe('string');
    expect(typeof parseAmountMinor(-1)).toBe('string');
    expect(typeof parseAmountMinor('1e3')).toBe('string');
  });

  it('reports every issue with its field', () => {
    expect(issues({ type: 'purchase', fan: '', ts: 'yesterday', props: { amount: -5 } }).map((i) => i.field)).toEqual(['id', 'ts', 'fan', 'props.orderId', 'props.amount']);
    expect(issues({ id: 'x', type: 'dance', fan: 'a', ts: 0 })[0]).toEqual({ field: 'type', reason: 'unknown type "dance"' });
    expect(issues({ id: 'x', type: 'nps', fan: 'a', ts: 0, props: { score: 11 } })[0].field).toBe('props.score');
    expect(issues({ id: 'x', type: 'like', fan: 'a', ts: 0, channel: 'fax' })[0].field).toBe('channel');
    expect(issues({ id: 'x', type: 'like', fan: 'a', ts: 0, props: [] })[0].field).toBe('props');
    expect(issues([1, 2])[0].field).toBe('(line)');
    expect(issues({ id: 'x', type: 'content_submit', fan: 'a', ts: 0, props: { contentId: 'c', kind: 'poem' } })[0].field).toBe('props.kind');
  });

  it('post needs no fan; other types do', () => {
    expect(ok({ id: 'p', type: 'post', ts: 0, props: { contentId: 'c', category: 'guide' } }).fan).toBeNull();
    expect(issues({ id: 'p', type: 'like', ts: 0 })[0]).toEqual({ field: 'fan', reason: 'required' });
  });

  it('canonical payloads sort keys and print numbers by value', () => {
    expect(canonicalJson({ b: 1.0, a: { d: [1, { z: 2, y: 1 }], c: 'x' } })).toBe('{"a":{"c":"x","d":[1,{"y":1,"z":2}]},"b":1}');
    expect(canonicalJson(JSON.parse('{"amount": 10.50}'))).toBe(canonicalJson({ amount: 10.5 }));
  });

  it('orders by ts, then id by Unicode code points', () => {
    expect(compareCodePoints('e-10', 'e-9')).toBeLessThan(0);
    // U+FF5E is below U+1F600, although its UTF-16 unit is above the surrogate.
    expect(compareCodePoints('\uff5e', '\u{1f600}')).toBeLessThan(0);
    expect(compareEvents({ ts: 1, id: 'b' }, { ts: 1, id: 'a' })).toBeGreaterThan(0);
    expect(compareEvents({ ts: 0, id: 'z' }, { ts: 1, id: 'a' })).toBeLessThan(0);
  });
});
