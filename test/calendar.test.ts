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

/** The offset of an instant in a zone, straight from Intl, to the second. */
const formatters = new Map<string, Intl.DateTimeFormat>();
function referenceOffset(timeZone: string, instantMs: number): number {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', { timeZone, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric' });
    formatters.set(timeZone, formatter);
  }
  const parts = formatter.formatToParts(new Date(instantMs));
  const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
  return Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second')) - Math.floor(instantMs / 1000) * 1000;
}

describe('local times as text', () => {
  /** The ISO text of the local wall time with its offset, through Date. */
  const reference = (offsetMs: number, instantMs: number): string => {
    const abs = Math.abs(offsetMs) / 60_000;
    const pad = (value: number) => (value < 10 ? `0${value}` : String(value));
    return `${new Date(instantMs + offsetMs).toISOString().slice(0, 19)}${offsetMs < 0 ? '-' : '+'}${pad(Math.floor(abs / 60))}:${pad(abs % 60)}`;
  };

  it('writes an instant as its wall time and offset in the zone, in every century (fast-check)', () => {
    const calendars = new Map(ZONES.map((zone) => [zone, createCalendar(zone)]));
    fc.assert(
      fc.property(
        fc.constantFrom(...ZONES),
        fc.oneof(fc.integer({ min: FROM, max: TO }), fc.integer({ min: Date.UTC(400, 0, 1), max: Date.UTC(12000, 0, 1) })),
        (zone, instant) => {
          const calendar = calendars.get(zone)!;
          const text = calendar.formatLocal(instant);
          expect(text).toBe(reference(calendar.offsetMs(instant), instant));
          if (instant >= FROM && instant <= TO) expect(Date.parse(text)).toBe(instant - (instant % 1000));
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('the calendar\'s offsets', () => {
  it('changes offset at the very second the zone does, also where that is not on a UTC hour', () => {
    // Lord Howe moves by half an hour at 02:00 local time, which is half past a UTC hour.
    for (const zone of ZONES) {
      const calendar = createCalendar(zone);
      let previous = referenceOffset(zone, FROM);
      for (let hour = FROM + 3_600_000; hour < TO; hour += 3_600_000) {
        const offset = referenceOffset(zone, hour);
        if (offset !== previous) {
          for (let t = hour - 3_600_000; t <= hour; t += 1000) expect(calendar.offsetMs(t), `${zone} ${new Date(t).toISOString()}`).toBe(referenceOffset(zone, t));
        }
        previous = offset;
      }
    }
  });

  it('gives a calendar made with another\'s known offsets the same answers without looking any up (fast-check)', () => {
    fc.assert(
      fc.property(fc.constantFrom(...ZONES), fc.array(fc.integer({ min: FROM, max: TO }), { minLength: 1, maxLength: 100 }), (zone, instants) => {
        const first = createCalendar(zone);
        const known = first.knownOffsets(FROM, TO);
        expect(first.computedOffsets()).toBe(known.length);
        const second = createCalendar(zone, JSON.parse(JSON.stringify(known)));
        for (const instant of instants) {
          expect(second.offsetMs(instant)).toBe(first.offsetMs(instant));
          expect(second.dayIndex(instant)).toBe(first.dayIndex(instant));
          expect(second.timeSlot(instant)).toBe(first.timeSlot(instant));
        }
        expect(second.computedOffsets()).toBe(0);
        // Outside what it was given, it looks the offsets up itself.
        expect(second.offsetMs(TO + 400 * 86_400_000)).toBe(referenceOffset(zone, TO + 400 * 86_400_000));
        expect(second.computedOffsets()).toBe(1);
      }),
      { numRuns: 30 },
    );
  });
});
