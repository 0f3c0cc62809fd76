/**
 * `fanflow replay`: rebuild all state from the log, compare it with the incremental state, check
 * the ledger, and store the rebuild.
 */
import { verifyLedger } from '../core/ledger.js';
import { serializeFan, serializeWorldMeta } from './serialize.js';
import { ENGINE_VERSION } from '../core/state.js';
import { engineVersionOf, rebuildWorld, saveRebuild, type Progress, type Workspace } from './workspace.js';

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
export async function runReplay(workspace: Workspace, progress: Progress): Promise<ReplayResult> {
  const { store, program } = workspace;
  const meta = await store.loadStateMeta();
  const started = process.hrtime.bigint();
  const rebuilt = await rebuildWorld(workspace, progress);
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  const events = await store.countEvents();
  const compared = meta !== null && meta.programVersion === program.version && meta.appliedSeq === rebuilt.appliedSeq && engineVersionOf(meta.world) === ENGINE_VERSION;
  // Compared record by record as text, streaming the stored side, so memory holds one world.
  let differences = 0;
  if (compared) {
    if (meta.world !== serializeWorldMeta(rebuilt.world)) differences++;
    const fans = [...rebuilt.world.fans.values()];
    let index = 0;
    for await (const rows of store.iterateFans()) {
      for (const row of rows) {
        const fan = fans[index++];
        if (!fan || fan.id !== row.id || serializeFan(fan) !== row.state) differences++;
      }
    }
    differences += Math.abs(fans.length - index);
    const snapshots = await store.readSnapshots();
    const months = Object.keys(rebuilt.world.snapshots).sort();
    if (snapshots.length !== months.length) differences++;
    snapshots.forEach((row, i) => {
      if (row.month !== months[i] || row.data !== JSON.stringify(rebuilt.world.snapshots[row.month])) differences++;
    });
    let seq = 0;
    for await (const postings of store.readPostings()) {
      for (const stored of postings) {
        const fresh = rebuilt.out.postings[seq++];
        if (!fresh || fresh.seq !== stored.seq || fresh.eventId !== stored.eventId || fresh.source !== stored.source || fresh.target !== stored.target || fresh.amount !== stored.amount || fresh.rule !== stored.rule) differences++;
      }
    }
    differences += Math.abs(rebuilt.out.postings.length - seq);
  }
  const ledger = verifyLedger(rebuilt.out.postings, rebuilt.world.fans.values());
  // The replay becomes the stored state (this is also how a changed program reaches history).
  await saveRebuild(workspace, rebuilt.world, rebuilt.out, rebuilt.appliedSeq);
  return {
    events,
    fans: rebuilt.world.fans.size,
    seconds,
    eventsPerSecond: events / Math.max(seconds, 1e-9),
    compared,
    verified: compared && differences === 0,
    differences,
    ledgerOk: ledger.ok,
    programVersion: program.version,
  };
}
