/**
 * Local day, ISO week and month arithmetic in the program's time zone.
 * The engine never reads the clock: every function takes an instant (epoch ms).
 *
 * @example
 * const cal = createCalendar('Asia/Shanghai');
 * cal.dayIndex(Date.parse('2026-10-01T00:00:00+08:00')); // local day number since 1970-01-01
 */
export const HOUR_MS = 3_600_000;
export const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

export type TimeSlot =
  | 'weekdayMorning'
  | 'weekdayAfternoon'
  | 'weekdayEvening'
  | 'weekdayNight'
  | 'weekendDay'
  | 'weekendNight';

export const TIME_SLOTS: readonly TimeSlot[] = [
  'weekdayMorning',
  'weekdayAfternoon',
  'weekdayEvening',
  'weekdayNight',
  'weekendDay',
  'weekendNight',
];

export interface Calendar {
  readonly timeZone: string;
  offsetMs(instantMs: number): number;
  dayIndex(instantMs: number): number;
  weekIndex(instantMs: number): number;
  monthKey(instantMs: number): string;
  startOfDay(dayIndex: number): number;
  startOfMonth(monthKey: string): number;
  nextMonthKey(monthKey: string): string;
  previousMonthKey(monthKey: string): string;
  timeSlot(instantMs: number): number;
  formatLocal(instantMs: number): string;
  /**
   * Every offset block this calendar knows, by block number, after looking up those of [from, to]
   * when given: what a later calendar of the zone can be given instead of asking ICU again.
   */
  knownOffsets(from?: number, to?: number): [number, OffsetBlock][];
  /** How many blocks this calendar looked up in ICU (not given when it was made). */
  computedOffsets(): number;
}

/** Days since 1970-01-01 of a proleptic Gregorian civil date. */
export function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yearOfEra = y - era * 400;
  const monthShifted = month > 2 ? month - 3 : month + 9;
  const dayOfYear = Math.floor((153 * monthShifted + 2) / 5) + day - 1;
  const dayOfEra = yearOfEra * 365 + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100) + dayOfYear;
  return era * 146_097 + dayOfEra - 719_468;
}

/** Civil date of a day count since 1970-01-01. */
export function civilFromDays(days: number): { year: number; month: number; day: number } {
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const dayOfEra = z - era * 146_097;
  const yearOfEra = Math.floor(
    (dayOfEra - Math.floor(dayOfEra / 1460) + Math.floor(dayOfEra / 36_524) - Math.floor(dayOfEra / 146_096)) / 365,
  );
  const dayOfYear = dayOfEra - (365 * yearOfEra + Math.floor(yearOfEra / 4) - Math.floor(yearOfEra / 100));
  const monthShifted = Math.floor((5 * dayOfYear + 2) / 153);
  const day = dayOfYear - Math.floor((153 * monthShifted + 2) / 5) + 1;
  const month = monthShifted < 10 ? monthShifted + 3 : monthShifted - 9;
  return { year: yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day };
}

export function isValidTimeZone(timeZone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone });
    return true;
  } catch {
    return false;
  }
}

const MONTH_KEY = /^(\d{4})-(0[1-9]|1[0-2])$/;

export function parseMonthKey(monthKey: string): { year: number; month: number } | null {
  const match = MONTH_KEY.exec(monthKey);
  return match ? { year: Number(match[1]), month: Number(match[2]) } : null;
}

function pad2(value: number): string {
  return value < 10 ? `0${value}` : String(value);
}

/**
 * A zone's UTC offsets over one block of OFFSET_BLOCK_DAYS UTC days: the offset itself when it holds for
 * the whole block, else the offset at the block's start followed by (instant, offset) pairs, one
 * per change, in order.
 */
export type OffsetBlock = number | number[];

/** Offsets are found and kept by blocks of this many UTC days (block 0 begins at the epoch). */
export const OFFSET_BLOCK_DAYS = 28;
const BLOCK_MS = OFFSET_BLOCK_DAYS * DAY_MS;

/**
 * The offsets of a zone, block by block, looked up in ICU through Intl. A change is found to the
 * second; a zone is assumed to change its offset at most once within one UTC day.
 */
function intlOffsets(timeZone: string): (block: number) => OffsetBlock {
  let formatter: Intl.DateTimeFormat | null = null;
  // The first Intl object of a process costs ~20 ms (V8 lists ICU's locales): made on first use only.
  const offsetAt = (instantMs: number): number => {
    formatter ??= new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    const parts = formatter.formatToParts(new Date(instantMs));
    const get = (type: string) => Number(parts.find((part) => part.type === type)?.value);
    const localAsUtc = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'), get('second'));
    return localAsUtc - Math.floor(instantMs / 1000) * 1000;
  };
  return (block) => {
    const start = block * BLOCK_MS;
    const first = offsetAt(start);
    const changes: number[] = [first];
    let before = first;
    for (let day = 1; day <= OFFSET_BLOCK_DAYS; day++) {
      const at = offsetAt(start + day * DAY_MS);
      if (at === before) continue;
      // The first whole second of the day with the new offset.
      let low = (start + (day - 1) * DAY_MS) / 1000;
      let high = (start + day * DAY_MS) / 1000;
      while (high - low > 1) {
        const middle = Math.floor((low + high) / 2);
        if (offsetAt(middle * 1000) === before) low = middle;
        else high = middle;
      }
      // The end of the block belongs to the next block.
      if (day < OFFSET_BLOCK_DAYS || high * 1000 < start + BLOCK_MS) changes.push(high * 1000, at);
      before = at;
    }
    return changes.length === 1 ? first : changes;
  };
}

/**
 * A calendar for a zone. `known`: offset blocks found earlier (see `knownOffsets`) by the same
 * ICU data; the calendar looks up in ICU only the blocks it is not given.
 */
export function createCalendar(timeZone: string, known: Iterable<[number, OffsetBlock]> = []): Calendar {
  const lookUp = intlOffsets(timeZone);
  const blocks = new Map<number, OffsetBlock>(known);
  let computed = 0;
  const blockOf = (block: number): OffsetBlock => {
    let found = blocks.get(block);
    if (found === undefined) {
      found = lookUp(block);
      blocks.set(block, found);
      computed++;
    }
    return found;
  };
  const offsetMs = (instantMs: number): number => {
    const block = blockOf(Math.floor(instantMs / BLOCK_MS));
    if (typeof block === 'number') return block;
    let offset = block[0];
    for (let index = 1; index < block.length && instantMs >= block[index]; index += 2) offset = block[index + 1];
    return offset;
  };
  const dayIndex = (instantMs: number) => Math.floor((instantMs + offsetMs(instantMs)) / DAY_MS);
  const startOfDay = (day: number): number => {
    const guess = day * DAY_MS - offsetMs(day * DAY_MS);
    const start = day * DAY_MS - offsetMs(guess);
    if (dayIndex(start) === day) return start;
    // The clocks skip this day's midnight (summer time begins at 00:00): the day begins at the
    // change, found to the minute within the next few hours.
    let low = start;
    let high = start + 3 * HOUR_MS;
    while (high - low > MINUTE_MS) {
      const middle = low + Math.floor((high - low) / 2 / MINUTE_MS) * MINUTE_MS;
      if (dayIndex(middle) >= day) high = middle;
      else low = middle;
    }
    return high;
  };
  const monthKeyOfDay = (day: number) => {
    const civil = civilFromDays(day);
    return `${civil.year}-${pad2(civil.month)}`;
  };
  const shiftMonth = (monthKey: string, delta: number): string => {
    const parsed = parseMonthKey(monthKey);
    if (!parsed) throw new Error(`invalid month key ${monthKey}`);
    const index = parsed.year * 12 + parsed.month - 1 + delta;
    return `${Math.floor(index / 12)}-${pad2((index % 12) + 1)}`;
  };
  return {
    timeZone,
    offsetMs,
    knownOffsets: (from, to) => {
      if (from !== undefined && to !== undefined) {
        for (let block = Math.floor(from / BLOCK_MS); block <= Math.floor(to / BLOCK_MS); block++) blockOf(block);
      }
      return [...blocks].sort((a, b) => a[0] - b[0]);
    },
    computedOffsets: () => computed,
    dayIndex,
    // 1970-01-01 was a Thursday, so day index -3 is the Monday that starts ISO week 0.
    weekIndex: (instantMs) => Math.floor((dayIndex(instantMs) + 3) / 7),
    monthKey: (instantMs) => monthKeyOfDay(dayIndex(instantMs)),
    startOfDay,
    startOfMonth: (monthKey) => {
      const parsed = parseMonthKey(monthKey);
      if (!parsed) throw new Error(`invalid month key ${monthKey}`);
      return startOfDay(daysFromCivil(parsed.year, parsed.month, 1));
    },
    nextMonthKey: (monthKey) => shiftMonth(monthKey, 1),
    previousMonthKey: (monthKey) => shiftMonth(monthKey, -1),
    timeSlot: (instantMs) => {
      const local = instantMs + offsetMs(instantMs);
      const day = Math.floor(local / DAY_MS);
      const hour = Math.floor((local - day * DAY_MS) / HOUR_MS);
      const weekday = (((day + 4) % 7) + 7) % 7; // 0 = Sunday
      if (weekday === 0 || weekday === 6) return hour >= 6 && hour < 18 ? 4 : 5;
      if (hour < 6) return 3;
      if (hour < 12) return 0;
      if (hour < 18) return 1;
      return 2;
    },
    formatLocal: (instantMs) => {
      const offset = offsetMs(instantMs);
      const local = instantMs + offset;
      const abs = Math.abs(offset) / 60_000;
      const zone = `${offset < 0 ? '-' : '+'}${pad2(Math.floor(abs / 60))}:${pad2(abs % 60)}`;
      // Written from the civil date (a third of the time of a Date's ISO text); years without four
      // digits keep the ISO form of Date.
      const day = Math.floor(local / DAY_MS);
      const date = civilFromDays(day);
      if (date.year < 1000 || date.year > 9999) return `${new Date(local).toISOString().slice(0, 19)}${zone}`;
      const second = Math.floor((local - day * DAY_MS) / 1000);
      return `${date.year}-${pad2(date.month)}-${pad2(date.day)}T${pad2(Math.floor(second / 3600))}:${pad2(Math.floor(second / 60) % 60)}:${pad2(second % 60)}${zone}`;
    },
  };
}
