/**
 * Import of NDJSON or CSV event files: parse, validate, append durably to the log (idempotent by
 * id + canonical payload), then bring the derived state up to date.
 */
import { statSync, writeFileSync } from 'node:fs';
import type { RejectRecord } from '../store/store.js';
import { appendFile, wantsWorker } from './appended-chunks.js';
import type { RejectLine } from './event-file.js';
import { PhaseTimer } from './phase-timer.js';
import { startStateWriter } from './state-writer.js';
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

export type { RejectLine } from './event-file.js';
export { csvRecordToObject } from './event-file.js';
export { samePayload } from './same-payload.js';

const CHUNK_EVENTS = 20_000;

/**
 * Imports one file. Every accepted event is committed before the summary is returned; the
 * derived state is then updated (incrementally, or by a rebuild for late arrivals).
 */
export interface ImportOptions {
  progress?: Progress;
  rejectsPath?: string | null;
  /** Read and append on a worker thread (default: a SQLite file and an event file of WORKER_MIN_BYTES or more; FANFLOW_APPEND_WORKER=0|1 overrides the default). */
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
  const onWorker = wantsWorker(store, totalBytes, options.appendOnWorker);
  progress.start(totalBytes, 'import');
  // Started now, so that it is ready when the state is: it writes the state through its own
  // connection while this thread serialises the fans.
  const writer = onWorker ? startStateWriter(store.path as string, store.workspace) : null;
  try {
    // Each chunk is applied once its append committed, while the next is read and appended.
    for await (const chunk of appendFile(store, path, options.chunkEvents ?? CHUNK_EVENTS, onWorker)) {
      summary.accepted += chunk.accepted.length;
      summary.duplicates += chunk.duplicates;
      summary.conflicts += chunk.conflicts;
      summary.lines = chunk.lines;
      for (const reject of chunk.rejects) rejects.push(reject);
      progress.update(chunk.bytes);
      applier.offer(chunk.accepted);
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
    summary.rebuilt = (await applier.finish(progress, writer))?.rebuilt ?? false;
  } finally {
    await writer?.close();
  }
  phases.lap('save');
  phases.report('import');
  return summary;
}
