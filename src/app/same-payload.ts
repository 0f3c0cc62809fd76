import { canonicalJson } from '../core/events.js';
import type { LogEntry } from '../store/store.js';

/** Same id with a different text: the payloads are compared canonically (keys sorted, numbers by value). */
export function samePayload(storedBody: string, entry: LogEntry): boolean {
  return canonicalJson(JSON.parse(storedBody)) === canonicalJson(JSON.parse(entry.body));
}
