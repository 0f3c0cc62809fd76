/**
 * An event file (NDJSON or CSV) read, parsed and validated in chunks: the log entries of the
 * valid lines with their events, and every rejected line with its field and reason.
 */
import { closeSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import { EVENT_TYPES, validateEvent, type FanEvent, type PropSpec } from '../core/events.js';
import type { LogEntry } from '../store/store.js';

export interface RejectLine {
  line: number;
  field: string;
  reason: string;
  issues: { field: string; reason: string }[];
  raw: string;
}

export interface ParsedChunk {
  readonly entries: LogEntry[];
  /** The validated event of each entry. */
  readonly events: FanEvent[];
  /** The lines rejected since the previous chunk. */
  readonly rejects: RejectLine[];
  /** The number of the last line read. */
  readonly lines: number;
  /** Bytes of the file read so far. */
  readonly bytes: number;
}

const READ_BYTES = 4 << 20;
const RAW_KEPT = 2000;

const NEWLINE = 0x0a;
const UTF8_BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/**
 * The lines of a file with their numbers, read in large blocks; `onBytes` hears the progress.
 * Each block is decoded up to its last newline byte (a newline is never part of a longer UTF-8
 * sequence), so no character is cut in two; the bytes after it move to the front of the buffer,
 * which doubles when one line does not fit. Invalid UTF-8 becomes U+FFFD, and a byte order mark
 * at the start of the file is dropped.
 */
function* readLines(path: string, onBytes: (bytes: number) => void): Generator<{ text: string; line: number }> {
  const fd = openSync(path, 'r');
  try {
    let buffer = Buffer.allocUnsafe(READ_BYTES);
    let held = 0;
    let line = 0;
    let bytes = 0;
    // Bytes at the front of the buffer that are no text: the byte order mark, once seen.
    let skip = -1;
    for (;;) {
      if (held === buffer.length) {
        const larger = Buffer.allocUnsafe(buffer.length * 2);
        buffer.copy(larger, 0, 0, held);
        buffer = larger;
      }
      const read = readSync(fd, buffer, held, buffer.length - held, null);
      if (read === 0) break;
      bytes += read;
      onBytes(bytes);
      const end = held + read;
      if (skip === -1 && end >= UTF8_BOM.length) skip = buffer.subarray(0, UTF8_BOM.length).equals(UTF8_BOM) ? UTF8_BOM.length : 0;
      const last = buffer.lastIndexOf(NEWLINE, end - 1);
      if (last === -1 || skip === -1) {
        held = end;
        continue;
      }
      // Splitting one string is faster than slicing it line by line.
      for (const text of buffer.toString('utf8', skip, last).split('\n')) yield { text, line: ++line };
      skip = 0;
      buffer.copy(buffer, 0, last + 1, end);
      held = end - last - 1;
    }
    // What follows the last newline (and, in a file of under three bytes, everything).
    const rest = buffer.toString('utf8', Math.max(skip, 0), held).split('\n');
    if (rest[rest.length - 1] === '') rest.pop();
    for (const text of rest) yield { text, line: ++line };
  } finally {
    closeSync(fd);
  }
}

function numericKind(spec: PropSpec | undefined): boolean {
  return spec !== undefined && ['score0to10', 'score1to5', 'integer', 'positiveInteger', 'level'].includes(spec.kind);
}

/** One CSV record (columns id,type,fan,ts,channel,props and/or props.<name>) as an event object. */
export function csvRecordToObject(record: Record<string, string>): Record<string, unknown> {
  const event: Record<string, unknown> = {};
  let props: unknown = {};
  if (record.props !== undefined && record.props.trim() !== '') {
    try {
      props = JSON.parse(record.props);
    } catch {
      // Kept as text so that validation reports "props must be an object" at this line.
      props = record.props;
    }
  }
  const typeSpec = (EVENT_TYPES as Record<string, Record<string, PropSpec>>)[record.type] ?? {};
  for (const [column, value] of Object.entries(record)) {
    if (value === '' || column === 'props') continue;
    if (column.startsWith('props.')) {
      const name = column.slice(6);
      const spec = typeSpec[name];
      const target = (typeof props === 'object' && props !== null ? props : {}) as Record<string, unknown>;
      props = target;
      if (value === 'null') target[name] = null;
      else target[name] = numericKind(spec) && /^-?\d+$/.test(value) ? Number(value) : value;
    } else if (column === 'ts' && /^-?\d+$/.test(value)) event.ts = Number(value);
    else event[column] = value;
  }
  if (typeof props !== 'object' || props === null || Object.keys(props).length > 0) event.props = props;
  return event;
}

/**
 * The file in chunks of up to `chunkEvents` valid events; the last chunk (possibly without
 * events) carries the last line's number and the remaining rejects.
 */
export function* parseEventFile(path: string, chunkEvents: number): Generator<ParsedChunk> {
  let bytes = 0;
  let lines = 0;
  let entries: LogEntry[] = [];
  let events: FanEvent[] = [];
  let rejects: RejectLine[] = [];
  /** True when the chunk is full. */
  const take = (value: unknown, raw: string, line: number): boolean => {
    const result = validateEvent(value);
    if (!result.ok) {
      rejects.push({ line, field: result.issues[0].field, reason: result.issues[0].reason, issues: result.issues, raw: raw.slice(0, RAW_KEPT) });
      return false;
    }
    const event = result.event;
    entries.push({ id: event.id, ts: event.ts, body: raw, source: path, line, fan: event.fan });
    events.push(event);
    return entries.length >= chunkEvents;
  };
  const chunk = (): ParsedChunk => {
    const full = { entries, events, rejects, lines, bytes };
    entries = [];
    events = [];
    rejects = [];
    return full;
  };
  if (path.toLowerCase().endsWith('.csv')) {
    const text = readFileSync(path, 'utf8');
    bytes = statSync(path).size;
    const records = parseCsv(text, { columns: true, info: true, skip_empty_lines: true, relax_column_count: true }) as { record: Record<string, string>; info: { lines: number } }[];
    for (const { record, info } of records) {
      lines++;
      const value = csvRecordToObject(record);
      if (take(value, JSON.stringify(value), info.lines)) yield chunk();
    }
  } else {
    for (const { text, line } of readLines(path, (read) => (bytes = read))) {
      lines = line;
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch (error) {
        rejects.push({ line, field: '(line)', reason: `invalid JSON: ${(error as Error).message}`, issues: [], raw: text.slice(0, RAW_KEPT) });
        continue;
      }
      if (take(value, text, line)) yield chunk();
    }
  }
  yield chunk();
}
