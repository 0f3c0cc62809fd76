import { createServer } from 'node:net';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

export async function waitHealthy(base: string): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`server at ${base} did not become healthy`);
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Posts batches of events until each is acknowledged, taking them in turn from a shared queue and
 * retrying every failure (a refused connection or a 5xx) on the next of `ports`. Returns the ids
 * acknowledged and how many attempts failed.
 */
export async function sendWithRetries(
  batches: readonly { id: string }[][],
  ports: () => readonly number[],
  key: string,
  clients: number,
  onResult: (status: string) => void,
): Promise<{ acknowledged: Set<string>; retries: number }> {
  const acknowledged = new Set<string>();
  let retries = 0;
  let next = 0;
  const client = async (which: number) => {
    for (let index = next++; index < batches.length; index = next++) {
      for (let attempt = 0; ; attempt++) {
        const all = ports();
        const port = all[(which + index + attempt) % all.length];
        try {
          const response = await fetch(`http://127.0.0.1:${port}/v1/events`, { method: 'POST', headers: { Authorization: `Bearer ${key}`, 'Content-Type': 'application/json' }, body: JSON.stringify({ events: batches[index] }) });
          if (response.status === 200) {
            const { results } = (await response.json()) as { results: { id: string; status: string }[] };
            for (const result of results) {
              onResult(result.status);
              acknowledged.add(result.id);
            }
            break;
          }
          if (response.status < 500) throw new Error(`unexpected ${response.status}: ${await response.text()}`);
        } catch (error) {
          if ((error as Error).message.startsWith('unexpected')) throw error;
          // the server is down: retry
        }
        retries++;
        await sleep(25);
      }
    }
  };
  await Promise.all(Array.from({ length: clients }, (_, which) => client(which)));
  return { acknowledged, retries };
}
