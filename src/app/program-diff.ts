/**
 * What activating a candidate program would change: every leaf path whose value differs from the
 * active program's, read from both YAML documents (so the summary speaks in the file's own terms).
 */
import { parse } from 'yaml';

export interface ProgramChange {
  path: string;
  from: unknown;
  to: unknown;
}

const MISSING = undefined;

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function walk(path: string, before: unknown, after: unknown, changes: ProgramChange[]): void {
  if (isPlainObject(before) && isPlainObject(after)) {
    for (const key of new Set([...Object.keys(before), ...Object.keys(after)])) walk(path === '' ? key : `${path}.${key}`, before[key], after[key], changes);
    return;
  }
  if (Array.isArray(before) && Array.isArray(after) && before.length === after.length) {
    before.forEach((item, index) => walk(`${path}[${index}]`, item, after[index], changes));
    return;
  }
  if (JSON.stringify(before) !== JSON.stringify(after)) changes.push({ path, from: before ?? MISSING, to: after ?? MISSING });
}

/** The changes from the active YAML to the candidate, in document order (both must parse). */
export function computeProgramChanges(activeYaml: string, candidateYaml: string): ProgramChange[] {
  const changes: ProgramChange[] = [];
  walk('', parse(activeYaml) as unknown, parse(candidateYaml) as unknown, changes);
  return changes;
}
