import { createEngine, type EngineOptions, type EngineOutput } from '../src/core/engine.js';
import { validateEvent, type FanEvent } from '../src/core/events.js';
import { compileProgram, DEFAULT_PROGRAM_YAML, parseProgram, type Program, type ProgramSpec } from '../src/core/program.js';
import { createWorld, type FanState, type World } from '../src/core/state.js';

export function defaultProgram(): Program {
  const parsed = parseProgram(DEFAULT_PROGRAM_YAML);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return compileProgram(parsed.spec, 'default@test');
}

export function programWith(edit: (yaml: string) => string): Program {
  const parsed = parseProgram(edit(DEFAULT_PROGRAM_YAML));
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  return compileProgram(parsed.spec, 'custom@test');
}

/** The default program with its validated spec changed in place by `edit` (conditions as plain objects). */
export function programFromSpec(edit: (spec: ProgramSpec & { levels: { entry?: unknown; maintain?: unknown }[] }) => void): Program {
  const parsed = parseProgram(DEFAULT_PROGRAM_YAML);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.issues));
  const spec = structuredClone(parsed.spec);
  edit(spec);
  return compileProgram(spec, 'spec@test');
}

export const DAY = 86_400_000;
export const HOUR = 3_600_000;
/** 2026-10-05 10:00 in Asia/Shanghai, a Monday. */
export const T0 = Date.parse('2026-10-05T10:00:00+08:00');

let counter = 0;
export function event(type: string, fan: string | null, ts: number, props?: Record<string, unknown>, id?: string): FanEvent {
  const raw: Record<string, unknown> = { id: id ?? `t-${String(++counter).padStart(8, '0')}`, type, ts };
  if (fan !== null) raw.fan = fan;
  if (props) raw.props = props;
  const result = validateEvent(raw);
  if (!result.ok) throw new Error(`bad test event: ${JSON.stringify(result.issues)}`);
  return result.event;
}

/** A small driver: applies events in order to a fresh world under a program. */
export function run(program: Program = defaultProgram(), options: EngineOptions = {}) {
  const engine = createEngine(program, undefined, options);
  const world: World = createWorld(program.version);
  const out: EngineOutput = engine.newOutput();
  return {
    engine,
    world,
    out,
    program,
    apply(...events: FanEvent[]) {
      for (const e of events) engine.apply(world, e, out);
      return this;
    },
    advance(to: number) {
      engine.advanceClock(world, to, out);
      return this;
    },
    fan(id: string): FanState {
      const fan = world.fans.get(id);
      if (!fan) throw new Error(`no fan ${id}`);
      return fan;
    },
    points(id: string, rule?: string): number {
      return out.postings
        .filter((p) => p.fan === id && (rule === undefined || p.rule === rule))
        .reduce((sum, p) => sum + (p.target === `fan:${id}` ? p.amount : -p.amount), 0);
    },
  };
}

/** n interactions of a type by a fan, one every `stepMs` from `from`. */
export function interactions(fan: string, n: number, from: number, stepMs = HOUR, type = 'like'): FanEvent[] {
  return Array.from({ length: n }, (_, i) => event(type, fan, from + i * stepMs, { contentId: `p${i}`, category: 'guide' }));
}
