/**
 * `fanflow replay`: rebuild all state from the log, compare it with the incremental state, check
 * the ledger, and store the rebuild.
 */
import { verifyLedger } from '../core/ledger.js';
import { fingerprintWorld } from './serialize.js';
import { loadStoredWorld, rebuildWorld, saveRebuild, type Progress, type Workspace } from './workspace.js';

export interface ReplayResult {
  events: number;
  fans: number;
  seconds: number;
  eventsPerSecond: number;
  compared: boolean;
  verified: boolean;
  differences: number;
  ledgerOk: boolean;
  programVersion: string;
}

/** Rebuilds from the log, compares with the stored incremental state, then stores the rebuild. */
export function runReplay(workspace: Workspace, progress: Progress): ReplayResult {
  const stored = loadStoredWorld(workspace);
  const started = process.hrtime.bigint();
  const rebuilt = rebuildWorld(workspace, progress);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const events = workspace.store.countEvents();
  const compared = stored !== null && stored.world.programVersion === workspace.program.version && stored.appliedSeq === workspace.store.maxSeq();
  let differences = 0;
  if (compared) {
    const before = fingerprintWorld(stored.world);
    const after = fingerprintWorld(rebuilt.world);
    const length = Math.max(before.length, after.length);
    for (let i = 0; i < length; i++) if (before[i] !== after[i]) differences++;
    const postingsBefore = [...workspace.store.readPostings()].map((p) => `${p.seq}|${p.eventId}|${p.source}|${p.target}|${p.amount}|${p.rule}`);
    const postingsAfter = rebuilt.out.postings.map((p) => `${p.seq}|${p.eventId}|${p.source}|${p.target}|${p.amount}|${p.rule}`);
    for (let i = 0; i < Math.max(postingsBefore.length, postingsAfter.length); i++) if (postingsBefore[i] !== postingsAfter[i]) differences++;
  }
  const ledger = verifyLedger(rebuilt.out.postings, rebuilt.world.fans.values());
  // The replay becomes the stored state (this is also how a changed program reaches history).
  saveRebuild(workspace, rebuilt.world, rebuilt.out);
  return {
    events,
    fans: rebuilt.world.fans.size,
    seconds,
    eventsPerSecond: events / Math.max(seconds, 1e-9),
    compared,
    verified: compared && differences === 0,
    differences,
    ledgerOk: ledger.ok,
    programVersion: workspace.program.version,
  };
}
