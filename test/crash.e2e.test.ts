import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BIN, fanflow } from './cli-helpers.js';
import { dumpState, tempDir } from './store-helpers.js';

function importKilledAfter(db: string, files: string[], delayMs: number): Promise<{ killed: boolean; code: number | null }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--db', db, 'import', ...files, '--json'], { stdio: 'ignore' });
    const timer = setTimeout(() => child.kill('SIGKILL'), delayMs);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ killed: signal === 'SIGKILL', code });
    });
  });
}

function importAsync(db: string, files: string[]): Promise<string> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [BIN, '--db', db, 'import', ...files, '--json'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    // The exit code, with what the command said when it failed.
    child.on('close', (code) => resolve(code === 0 ? '0' : `${code}: ${stderr}`));
  });
}

/** Runs `body` with FANFLOW_APPEND_WORKER set (for the commands it spawns), then restores it. */
async function withAppendWorker(mode: string, body: () => Promise<void>): Promise<void> {
  const saved = process.env.FANFLOW_APPEND_WORKER;
  process.env.FANFLOW_APPEND_WORKER = mode;
  try {
    await body();
  } finally {
    if (saved === undefined) delete process.env.FANFLOW_APPEND_WORKER;
    else process.env.FANFLOW_APPEND_WORKER = saved;
  }
}

// Files this small are read in the importing thread; FANFLOW_APPEND_WORKER=1 sends them through
// the import worker (read, validate, append on its own thread) and the state writer, as a large
// file would be.
const MODES = [
  ['read and appended in the importing thread', '0'],
  ['read and appended on the import worker', '1'],
];

describe('crash safety', () => {
  it.each(MODES)('two imports running at once into one database lose nothing and apply nothing twice (%s)', (_mode, worker) => withAppendWorker(worker, runConcurrently));

  async function runConcurrently(): Promise<void> {
    const dir = tempDir('fanflow-concurrent-');
    const files = ['a', 'b', 'c'].map((name, i) => {
      const file = join(dir, `${name}.ndjson`);
      expect(fanflow(['demo', '--fans', String(400 + i * 100), '--months', '3', '--seed', `c${i}`, '--start', '2026-01-01T00:00:00+08:00', '--out', file]).code).toBe(0);
      return file;
    });
    // Different seeds reuse event ids (e-001…); give each file its own ids.
    for (const [i, file] of files.entries()) {
      const { readFileSync, writeFileSync } = await import('node:fs');
      writeFileSync(file, readFileSync(file, 'utf8').replace(/"id":"e-/g, `"id":"f${i}-`).replace(/"fan":"u/g, `"fan":"f${i}u`).replace(/"(referrer|referralCode)":"u/g, `"$1":"f${i}u`));
    }
    const sequential = join(dir, 'sequential.db');
    expect(fanflow(['--db', sequential, 'import', ...files, '--json']).code).toBe(0);
    const concurrent = join(dir, 'concurrent.db');
    const codes = await Promise.all([importAsync(concurrent, [files[0], files[2]]), importAsync(concurrent, [files[1], files[0]]), importAsync(concurrent, [files[2]])]);
    expect(codes).toEqual(['0', '0', '0']);
    expect(await dumpState(concurrent)).toEqual(await dumpState(sequential));
  }

  it.each(MODES)('SIGKILL at any moment of an import, then importing again, gives the state of an uninterrupted run (%s)', (_mode, worker) => withAppendWorker(worker, killAndResume));

  async function killAndResume(): Promise<void> {
    const dir = tempDir('fanflow-crash-');
    const first = join(dir, 'a.ndjson');
    const second = join(dir, 'b.ndjson');
    expect(fanflow(['demo', '--fans', '2500', '--months', '4', '--seed', 'crash', '--start', '2026-01-01T00:00:00+08:00', '--out', first]).code).toBe(0);
    expect(fanflow(['demo', '--fans', '800', '--months', '4', '--seed', 'crash-2', '--start', '2026-01-01T00:00:00+08:00', '--out', second]).code).toBe(0);
    const clean = join(dir, 'clean.db');
    const started = Date.now();
    expect(fanflow(['--db', clean, 'import', first, second, '--json']).code).toBe(0);
    const duration = Date.now() - started;
    const expected = await dumpState(clean);
    expect(expected.events).toBeGreaterThan(20_000);

    let killedMidway = 0;
    // Kill points spread over the whole import, including before the first commit and during state writes.
    const fractions = [0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95];
    for (const [round, fraction] of fractions.entries()) {
      const db = join(dir, `crash-${round}.db`);
      const outcome = await importKilledAfter(db, [first, second], Math.round(duration * fraction));
      if (outcome.killed) killedMidway++;
      // A second interrupted attempt, then a complete one.
      await importKilledAfter(db, [second, first], Math.round(duration * fraction * 0.5));
      const done = fanflow(['--db', db, 'import', first, second, '--json']);
      expect(done.code).toBe(0);
      expect(await dumpState(db)).toEqual(expected);
    }
    console.log(`SIGKILL test: ${killedMidway}/${fractions.length} first attempts killed mid-import (import takes ~${duration} ms)`);
    expect(killedMidway).toBeGreaterThanOrEqual(4);
  }
});
