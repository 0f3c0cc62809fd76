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

export function withStore<T>(dbPath: string, run: (workspace: Workspace) => T): T {
  const store = openSqliteStore(dbPath);
  try {
    return run(openWorkspace(store, null));
  } finally {
    store.close();
  }
}

export function writeNdjson(path: string, events: unknown[]): string {
  writeFileSync(path, events.map((e) => JSON.stringify(e)).join('\n') + '\n');
  return path;
}

export function importInto(dbPath: string, ...files: string[]) {
  return withStore(dbPath, (workspace) => files.map((file) => importFile(workspace, file, { rejectsPath: `${file}.rejects.ndjson` })));
}

/** Everything derived that a store holds, as comparable text. */
export function dumpState(dbPath: string): { world: string[]; postings: string[]; events: number } {
  return withStore(dbPath, (workspace) => {
    catchUp(workspace);
    const loaded = loadStoredWorld(workspace);
    if (!loaded) return { world: [], postings: [], events: 0 };
    return {
      world: fingerprintWorld(loaded.world),
      postings: [...workspace.store.readPostings()].map((p) => `${p.seq}|${p.eventId}|${p.source}|${p.target}|${p.amount}|${p.rule}`),
      events: workspace.store.countEvents(),
    };
  });
}
