import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createCalendar, daysFromCivil } from '../src/core/calendar.js';

/** The local date of an instant in a zone, straight from Intl, as a day number. */
function referenceDay(timeZone: string, instantMs: number): number {
  const parts = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: 'numeric', day: 'numeric' }).formatToParts(new Date(instantMs));
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  return daysFromCivil(get('year'), get('month'), get('day'));
}

// Zones with summer time, half-hour shifts and changes at midnight.
const ZONES = ['Asia/Shanghai', 'America/New_York', 'Europe/London', 'Australia/Lord_Howe', 'America/Santiago', 'America/Havana', 'Asia/Kolkata'];
const FROM = Date.parse('2024-01-01T00:00:00Z');
const TO = Date.parse('2027-12-31T00:00:00Z');

describe('the calendar', () => {
  it('gives every instant its local day, whatever order the instants come in (fast-check)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.array(fc.integer({ min: FROM, max: TO }), { minLength: 1, maxLength: 200 }), fc.boolean(), (zone, instants, sorted) => {
        const calendar = createCalendar(zone);
        const order = sorted ? [...instants].sort((a, b) => a - b) : instants;
        for (const instant of order) expect(calendar.dayIndex(instant), `${zone} ${new Date(instant).toISOString()}`).toBe(referenceDay(zone, instant));
      }),
      { numRuns: 200 },
    );
  });

  it('gives the local day across every summer-time change, second by second around it, and day starts that map back', () => {
    for (const zone of ZONES) {
      const calendar = createCalendar(zone);
      // Walk each year hour by hour; around an hour whose offset differs from the last, walk by the minute.
      let previous = calendar.offsetMs(FROM);
      for (let hour = FROM; hour < TO; hour += 3_600_000) {
        const offset = calendar.offsetMs(hour);
        if (offset !== previous) {
          for (let t = hour - 2 * 3_600_000; t < hour + 2 * 3_600_000; t += 60_000) expect(calendar.dayIndex(t), `${zone} ${new Date(t).toISOString()}`).toBe(referenceDay(zone, t));
        }
        previous = offset;
        const day = calendar.dayIndex(hour);
        expect(calendar.dayIndex(calendar.startOfDay(day))).toBe(day);
      }
    }
  });
});
