/**
 * The plumbing shared by the threads an import or a rebuild starts (import worker, log reader,
 * state writer): on this side, a worker with its messages received in order and its failure or
 * exit turned into an error; on the worker's side, a credit of messages it may send ahead of
 * being asked again.
 */
import { setFlagsFromString } from 'node:v8';
import { MessageChannel, Worker, type MessagePort } from 'node:worker_threads';

export interface WorkerChannel<M> {
  /** The next message; rejects with the worker's error, or if it failed or stopped. */
  next(): Promise<Exclude<M, { error: string }>>;
  post(message: unknown): void;
  /** Ends the worker. */
  close(): Promise<void>;
}

/**
 * The executable asks V8 for a large young generation (bin/fanflow.js), for the thread that runs
 * the engine. V8 reads that flag again for every thread started later, and then ignores the
 * thread's own limits: each of these threads, which keep little alive, would grow a young
 * generation of about 270 MB, and an import runs three at once. Setting the flag back to V8's
 * default here leaves the main thread's heap as it was made and gives these threads V8's default
 * young generation (about 32 MB). On the benchmark import it lowered the peak RSS by about 100 MB
 * and did not change the time.
 */
function defaultYoungGenerationForWorkers(): void {
  setFlagsFromString('--max-semi-space-size=0');
}

/**
 * Starts `file` with `setup` and a port of its own (`workerData.port`); `ports` are handed over
 * too. A message `{ error }` from the worker, or its failure or exit, rejects `next` with a text
 * that names the worker (`name`).
 */
export function startWorker<M>(file: string, name: string, setup: Record<string, unknown>, ports: MessagePort[] = []): WorkerChannel<M> {
  defaultYoungGenerationForWorkers();
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(file, { workerData: { ...setup, port: port2 }, transferList: [port2, ...ports] });
  const arrived: (M | { error: string })[] = [];
  let wake: (() => void) | null = null;
  const receive = (message: M | { error: string }) => {
    arrived.push(message);
    wake?.();
    wake = null;
  };
  port1.on('message', receive);
  worker.on('error', (error) => receive({ error: `${name} failed: ${error.message}` }));
  worker.on('exit', (code) => receive({ error: `the ${name} stopped (exit code ${code})` }));
  return {
    async next() {
      if (arrived.length === 0) await new Promise<void>((resolve) => (wake = resolve));
      const message = arrived.shift() as M | { error: string };
      if (typeof message === 'object' && message !== null && 'error' in message && typeof message.error === 'string') throw new Error(message.error);
      return message as Exclude<M, { error: string }>;
    },
    post: (message) => port1.postMessage(message),
    async close() {
      port1.close();
      await worker.terminate();
    },
  };
}

/**
 * On a worker: waits, before each message it sends, until fewer than `ahead` of those sent are
 * unanswered; each message received on `port` answers one.
 */
export function sendCredit(port: MessagePort, ahead: number): { take(): Promise<void> } {
  let credit = ahead;
  let wake: (() => void) | null = null;
  port.on('message', () => {
    credit++;
    wake?.();
    wake = null;
  });
  return {
    async take() {
      while (credit === 0) await new Promise<void>((resolve) => (wake = resolve));
      credit--;
    },
  };
}
