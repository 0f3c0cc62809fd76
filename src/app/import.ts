/**
 * Import of NDJSON or CSV event files: parse, validate, append durably to the log (idempotent by
 * id + canonical payload), then bring the derived state up to date.
 */
import { closeSync, openSync, readFileSync, readSync, statSync, writeFileSync } from 'node:fs';
import { parse as parseCsv } from 'csv-parse/sync';
import { EVENT_TYPES, validateEvent, type FanEvent, type PropSpec } from '../core/events.js';
import type { LogEntry, RejectRecord } from '../store/store.js';
import { createAppender, wantsWorker } from './appender.js';
import { PhaseTimer } from './phase-timer.js';
import { catchUp, isCurrent, silentProgress, startStreamingApply, type Progress, type Workspace } from './workspace.js';

export interface ImportSummary {
  accepted: number;
  duplicates: number;
  conflicts: number;
  rejected: number;
  rejectsFile: string | null;
  /** Whether the state had to be rebuilt from the log (an event arrived before the last applied). */
  rebuilt: boolean;
  lines: number;
}

export interface RejectLine {
  line: number;
  field: string;
  reason: string;
  issues: { field: string; reason: string }[];
  raw: string;
}

const CHUNK_EVENTS = 20_000;
const READ_BYTES = 4 << 20;
const RAW_KEPT = 2000;

/** The lines of a file with their numbers, read in large blocks; `onBytes` hears the progress. */
function* readLines(path: string, onBytes: (bytes: number) => void): Generator<{ text: string; line: number }> {
  const fd = openSync(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(READ_BYTES);
    let carry = '';
    let line = 0;
    let bytes = 0;
    const decoder = new TextDecoder('utf-8');
    for (;;) {
      const read = readSync(fd, buffer, 0, READ_BYTES, null);
      if (read === 0) break;
      bytes += read;
      const text = carry + decoder.decode(buffer.subarray(0, read), { stream: true });
      let start = 0;
      for (let index = text.indexOf('\n'); index !== -1; index = text.indexOf('\n', start)) {
        yield { text: text.slice(start, index), line: ++line };
        start = index + 1;
      }
      carry = text.slice(start);
      onBytes(bytes);
    }
    carry += decoder.decode();
    if (carry.length > 0) yield { text: carry, line: ++line };
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

export { samePayload } from './same-payload.js';

/**
 * Imports one file. Every accepted event is committed before the summary is returned; the
 * derived state is then updated (incrementally, or by a rebuild for late arrivals).
 */
export interface ImportOptions {
  progress?: Progress;
  rejectsPath?: string | null;
  /** Append on a worker thread (default: for files of WORKER_MIN_BYTES or more; FANFLOW_APPEND_WORKER=0|1 overrides). */
  appendOnWorker?: boolean;
  /** Events per appended chunk (one durable transaction each). */
  chunkEvents?: number;
}

export async function importFile(workspace: Workspace, path: string, options: ImportOptions = {}): Promise<ImportSummary> {
  const progress = options.progress ?? silentProgress;
  const { store } = workspace;
  const phases = new PhaseTimer();
  // Settles events a crashed run appended but did not apply.
  if (!(await isCurrent(workspace))) await catchUp(workspace, progress);
  phases.lap('settle');
  const summary: ImportSummary = { accepted: 0, duplicates: 0, conflicts: 0, rejected: 0, rejectsFile: null, rebuilt: false, lines: 0 };
  const rejects: RejectLine[] = [];
  const applier = await startStreamingApply(workspace);
  const totalBytes = statSync(path).size;
  const appender = createAppender(store, options.appendOnWorker ?? wantsWorker(store, totalBytes));
  const chunkEvents = options.chunkEvents ?? CHUNK_EVENTS;
  let entries: LogEntry[] = [];
  let events: FanEvent[] = [];
  // Chunks sent to the appender whose statuses have not been received, oldest first.
  const inFlight: FanEvent[][] = [];
  const settleOldest = async () => {
    const chunk = inFlight.shift() as FanEvent[];
    const statuses = await appender.receive();
    const accepted: FanEvent[] = [];
    for (let i = 0; i < statuses.length; i++) {
      if (statuses[i] === 'accepted') {
        summary.accepted++;
        accepted.push(chunk[i]);
      } else if (statuses[i] === 'duplicate') summary.duplicates++;
      else summary.conflicts++;
    }
    applier.offer(accepted);
  };
  // Sends the chunk, then applies the previous one while the appender works on this one.
  const flush = async () => {
    if (entries.length === 0) return;
    appender.send(entries);
    inFlight.push(events);
    entries = [];
    events = [];
    if (inFlight.length > 1) await settleOldest();
  };
  /** True when the chunk is full and should be flushed. */
  const handle = (value: unknown, raw: string, line: number): boolean => {
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
  progress.start(totalBytes, 'import');
  try {
    if (path.toLowerCase().endsWith('.csv')) {
      const text = readFileSync(path, 'utf8');
      const records = parseCsv(text, { columns: true, info: true, skip_empty_lines: true, relax_column_count: true }) as { record: Record<string, string>; info: { lines: number } }[];
      for (const { record, info } of records) {
        summary.lines++;
        const object = csvRecordToObject(record);
        if (handle(object, JSON.stringify(object), info.lines)) await flush();
      }
      progress.update(totalBytes);
    } else {
      for (const { text, line } of readLines(path, (bytes) => progress.update(bytes))) {
        summary.lines = line;
        if (text.trim() === '') continue;
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch (error) {
          rejects.push({ line, field: '(line)', reason: `invalid JSON: ${(error as Error).message}`, issues: [], raw: text.slice(0, RAW_KEPT) });
          continue;
        }
        if (handle(value, text, line)) await flush();
      }
    }
    await flush();
    while (inFlight.length > 0) await settleOldest();
  } finally {
    await appender.close();
  }
  progress.stop();
  phases.lap('parse+append');
  summary.rejected = rejects.length;
  if (rejects.length > 0) {
    await store.recordRejects(rejects.map((r): RejectRecord => ({ source: path, line: r.line, field: r.field, reason: r.reason, raw: r.raw })));
    const rejectsPath = options.rejectsPath ?? `${path}.rejects.ndjson`;
    writeFileSync(rejectsPath, rejects.map((r) => JSON.stringify(r)).join('\n') + '\n');
    summary.rejectsFile = rejectsPath;
  }
  summary.rebuilt = (await applier.finish(progress))?.rebuilt ?? false;
  phases.lap('save');
  phases.report('import');
  return summary;
}
