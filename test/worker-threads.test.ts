import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

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
