/** With FANFLOW_PROFILE=1, prints where a command spent its time, phase by phase, to stderr. */
export class PhaseTimer {
  private last = process.hrtime.bigint();
  private readonly laps: [string, number][] = [];

  lap(name: string): void {
    const now = process.hrtime.bigint();
    this.laps.push([name, Number(now - this.last) / 1e6]);
    this.last = now;
  }

  report(label: string): void {
    if (process.env.FANFLOW_PROFILE !== '1') return;
    process.stderr.write(`${label}: ${this.laps.map(([name, ms]) => `${name} ${ms.toFixed(0)} ms`).join(', ')}\n`);
  }
}
