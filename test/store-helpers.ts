import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { importFile } from '../src/app/import.js';
import { fingerprintWorld } from '../src/app/serialize.js';
import { catchUp, loadStoredWorld, openWorkspace, type Workspace } from '../src/app/workspace.js';
import { openSqliteStore } from '../src/store/sqlite-store.js';

export function tempDir(prefix = 'fanflow-test-'): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

export async function withStore<T>(dbPath: string, run: (workspace: Workspace) => T | Promise<T>, workspaceName?: string): Promise<T> {
  const store = await openSqliteStore(dbPath, { workspace: workspaceName });
  try {
    return await run(await openWorkspace(store, null));
  } finally {
    await store.close();
  }
}

export function writeNdjson(path: string, events: unknown[]): string {
  writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return path;
}

export function importInto(dbPath: string, ...files: string[]) {
  return withStore(dbPath, async (workspace) => {
    const summaries = [];
    for (const file of files) summaries.push(await importFile(workspace, file, { rejectsPath: `${file}.rejects.ndjson` }));
    return summaries;
  });
}

/** Everything derived that a workspace holds, as comparable text. */
export async function dumpWorkspace(workspace: Workspace): Promise<{ world: string[]; postings: string[]; events: number }> {
  await catchUp(workspace);
  const loaded = await loadStoredWorld(workspace.store);
  if (!loaded) return { world: [], postings: [], events: 0 };
  const postings: string[] = [];
  for await (const batch of workspace.store.readPostings()) for (const p of batch) postings.push(`${p.seq}|${p.eventId}|${p.source}|${p.target}|${p.amount}|${p.rule}`);
  return { world: fingerprintWorld(loaded.world), postings, events: await workspace.store.countEvents() };
}

/** Everything derived that a store holds, as comparable text. */
export function dumpState(dbPath: string, workspaceName?: string): Promise<{ world: string[]; postings: string[]; events: number }> {
  return withStore(dbPath, dumpWorkspace, workspaceName);
}
