/**
 * Where a program comes from: a YAML file, the store's active program, or the built-in default.
 * The version is the program's name and a hash of its validated content.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { canonicalJson } from '../core/events.js';
import { compileProgram, DEFAULT_PROGRAM_YAML, parseProgram, type Program, type ProgramIssue } from '../core/program.js';
import { UsageError } from './errors.js';

export interface LoadedProgram {
  readonly program: Program;
  readonly yaml: string;
}

export function programVersionOf(spec: object & { name: string }): string {
  const hash = createHash('sha256').update(canonicalJson(spec)).digest('hex').slice(0, 12);
  return `${spec.name}@${hash}`;
}

export function formatProgramIssues(file: string, issues: readonly ProgramIssue[]): string {
  return issues.map((issue) => `${file}:${issue.line ?? '?'}: ${issue.path}: ${issue.message}`).join('\n');
}

/** Parses YAML text into a compiled program, or throws a UsageError listing every issue. */
export function compileProgramText(yaml: string, label: string): LoadedProgram {
  const parsed = parseProgram(yaml);
  if (!parsed.ok) throw new UsageError(`invalid program ${label}:\n${formatProgramIssues(label, parsed.issues)}`);
  return { program: compileProgram(parsed.spec, programVersionOf(parsed.spec)), yaml };
}

export function loadProgramFile(path: string): LoadedProgram {
  let yaml: string;
  try {
    yaml = readFileSync(path, 'utf8');
  } catch (error) {
    throw new UsageError(`cannot read program file ${path}: ${(error as Error).message}`);
  }
  return compileProgramText(yaml, path);
}

export function defaultProgram(): LoadedProgram {
  return compileProgramText(DEFAULT_PROGRAM_YAML, '(built-in default)');
}
