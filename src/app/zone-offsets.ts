/**
 * The program time zone's UTC offsets, kept in the store between processes. Looking them up in
 * ICU makes a process's first Intl object, which costs about 20 ms (V8 lists every ICU locale
 * once per process): more than a whole `fanflow fan` otherwise takes. A state write keeps the
 * offset blocks its engine looked up; a later process of the same ICU time-zone data starts from
 * them, and one of other data ignores them and looks up its own.
 */
import { DAY_MS, OFFSET_BLOCK_DAYS, type Calendar, type OffsetBlock } from '../core/calendar.js';

/** Offsets are kept this far past the state's clock or the present, whichever is later. */
const AHEAD_MS = 2 * 366 * DAY_MS;

interface Kept {
  icu: string;
  tz: string;
  blockDays: number;
  blocks: [number, OffsetBlock][];
}

/** The time-zone data this process reads (null when Node does not say, and nothing is kept). */
function dataVersion(): { icu: string; tz: string } | null {
  const { icu, tz } = process.versions as { icu?: string; tz?: string };
  return icu && tz ? { icu, tz } : null;
}

function isBlock(value: unknown): value is OffsetBlock {
  if (typeof value === 'number') return Number.isFinite(value);
  return Array.isArray(value) && value.length % 2 === 1 && value.every((item) => typeof item === 'number' && Number.isFinite(item));
}

/** The kept blocks, if they were found by the time-zone data this process reads; else none. */
export function decodeZoneOffsets(text: string | null): [number, OffsetBlock][] {
  const version = dataVersion();
  if (text === null || version === null) return [];
  let kept: Partial<Kept>;
  try {
    kept = JSON.parse(text) as Partial<Kept>;
  } catch {
    return [];
  }
  if (kept.icu !== version.icu || kept.tz !== version.tz || kept.blockDays !== OFFSET_BLOCK_DAYS || !Array.isArray(kept.blocks)) return [];
  const blocks = kept.blocks.filter((entry) => Array.isArray(entry) && entry.length === 2 && Number.isInteger(entry[0]) && isBlock(entry[1]));
  return blocks.length === kept.blocks.length ? blocks : [];
}

/**
 * What a state write should keep of the calendar's offsets: every block it knows, from the first
 * up to AHEAD_MS past `clock` or `now` (looked up now where missing); null when that is no more
 * than the `keptBlocks` blocks already kept (blocks only ever add up, and never change).
 */
export function zoneOffsetsToKeep(calendar: Calendar, keptBlocks: number, clock: number, now: number): { zone: string; text: string; blocks: number } | null {
  const version = dataVersion();
  if (version === null) return null;
  const at = Number.isFinite(clock) ? Math.max(clock, now) : now;
  const known = calendar.knownOffsets();
  const from = known.length > 0 ? known[0][0] * OFFSET_BLOCK_DAYS * DAY_MS : at;
  const blocks = calendar.knownOffsets(from, at + AHEAD_MS);
  if (blocks.length === keptBlocks) return null;
  const kept: Kept = { ...version, blockDays: OFFSET_BLOCK_DAYS, blocks };
  return { zone: calendar.timeZone, text: JSON.stringify(kept), blocks: blocks.length };
}
