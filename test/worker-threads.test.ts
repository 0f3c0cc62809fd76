import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { getPriority } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { BIN } from './cli-helpers.js';
import { tempDir } from './store-helpers.js';

const DRIVER = fileURLToPath(new URL('./fixtures/start-young-generation-worker.mjs', import.meta.url));

/** The young generation (MiB) of a worker started through startWorker in a process run with `flags`. */
function workerYoungMb(flags: string[]): number {
  const result = spawnSync(process.execPath, [...flags, DRIVER], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(result.stderr);
  return Number(result.stdout.trim());
}

describe('worker threads', () => {
  it("keep V8's default young generation when the executable asks for a large one", () => {
    // bin/fanflow.js runs with --max-semi-space-size=96: without the reset, such a worker grows
    // a young generation of 128 MiB or more.
    const young = workerYoungMb(['--max-semi-space-size=96']);
    expect(young).toBeGreaterThan(0);
    expect(young).toBeLessThanOrEqual(64);
  });
});

/** The nice value of each of this process's threads (Linux), from /proc/self/task/<tid>/stat. */
function threadNices(): number[] {
  return readdirSync('/proc/self/task').map((tid) => {
    const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
    // Fields after the command name in parentheses: state is field 3, nice field 19.
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19 - 3]);
  });
}

const hasThreadProc = existsSync('/proc/thread-self');
if (!hasThreadProc) console.warn('skipping the state worker priority test: no /proc/thread-self (not Linux)');

describe.skipIf(!hasThreadProc)("the server's state worker", () => {
  it('runs at the lower priority it is given, and the request thread keeps its own', async () => {
    const { startStateWorker } = await import('../src/server/state-client.js');
    const { openSqliteStore } = await import('../src/store/sqlite-store.js');
    const db = join(tempDir(), 'p.db');
    await (await openSqliteStore(db)).close();
    const before = threadNices();
    const own = getPriority();
    const worker = startStateWorker({ kind: 'sqlite', location: db, nice: 7 });
    try {
      // The worker lowers its priority as it starts; a pass is answered once it has.
      await worker.sync('default');
      const after = threadNices();
      expect(after.filter((nice) => nice === Math.min(19, own + 7)).length).toBe(before.filter((nice) => nice === Math.min(19, own + 7)).length + 1);
      expect(getPriority()).toBe(own);
    } finally {
      await worker.close();
    }
  });
});

describe('FANFLOW_STATE_WORKER_NICE', () => {
  it('outside 0–19 is a usage error that names the variable', () => {
    const result = spawnSync(process.execPath, [BIN, '--db', join(tempDir(), 'n.db'), 'serve', '--port', '0'], {
      encoding: 'utf8',
      env: { ...process.env, FANFLOW_LANG: 'en', FANFLOW_STATE_WORKER_NICE: '25' },
      timeout: 20_000,
    });
    expect(result.status).toBe(2);
    expect(result.stderr).toContain('FANFLOW_STATE_WORKER_NICE=25: a whole number from 0 to 19');
  });
});
