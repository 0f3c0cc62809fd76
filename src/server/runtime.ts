/**
 * One workspace inside the server: ingest (validate, append durably, answer per event), keep the
 * derived state caught up with the log (the world stays in memory between requests), and answer
 * reads from it. Every method runs to completion on the event loop, so the requests of one
 * process never interleave inside it; other processes on the same store are noticed through the
 * log position and the stored state's position (see workspace.ts).
 */
import { validateEvent, type FanEvent } from '../core/events.js';
import { parseProgram, type ProgramIssue } from '../core/program.js';
import type { FanView } from '../core/fan-view.js';
import type { MonthlyReport } from '../core/report.js';
import type { AppendStatus, FanOrderQuery, LogEntry, Store } from '../store/store.js';
import { samePayload } from '../app/same-payload.js';
import { clockOf, noteStateChange, queryFan, queryFanPage, queryFanPageSorted, queryReport, type FanFilter, type FanOrder } from '../app/queries.js';
import { activate, catchUp, currentMeta, engineVersionOf, metaIfCurrent, openWorkspace, type StateMeta, type Workspace } from '../app/workspace.js';
import { ENGINE_VERSION } from '../core/state.js';
import { NotFoundError } from '../app/errors.js';
import { queryMovement, queryReferralTree, queryTimeline, queryTrend, type Movement, type TimelineItem, type TrendPoint } from '../app/dashboard.js';
import type { ReadWorker } from './read-client.js';
import type { StateWorker } from './state-client.js';
import { compileProgramText, programVersionOf } from '../app/program-source.js';
import { campaignReport, complianceReport, fissionAnalytics, leaderboard, ledgerAudit, ledgerVerify, listPayouts, redeem, referralShow, resolveReview, reviewQueue, runPayout, type RedemptionRequest } from '../app/fission.js';

export interface IngestResult {
  id: string | null;
  status: AppendStatus | 'rejected';
  reason?: string;
  issues?: { field: string; reason: string }[];
}

export interface ProgramCheck {
  ok: boolean;
  version: string | null;
  issues: ProgramIssue[];
}

/** How long state may lag the log while ingest is busy; reads always catch up first. */
const SYNC_DELAY_MS = 200;
const WORKER_SYNC_DELAY_MS = 100;
/** The most events one group commit takes (a single request may bring more: it goes alone). */
const GROUP_EVENTS = 10_000;

export class WorkspaceRuntime {
  private syncTimer: NodeJS.Timeout | null = null;
  private lastSyncMs = 0;
  // Reads and the background pass share one catch-up at a time.
  private syncing: Promise<StateMeta | null> | null = null;

  private constructor(
    private readonly store: Store,
    private workspace: Workspace,
    private readonly stateWorker: StateWorker | null,
    private readonly readWorker: ReadWorker | null,
  ) {}

  /**
   * With a state worker the engine runs there and this thread only reads the stored state;
   * without one, this runtime keeps the world in memory and catches up itself.
   */
  static async open(store: Store, stateWorker: StateWorker | null = null, readWorker: ReadWorker | null = null): Promise<WorkspaceRuntime> {
    return new WorkspaceRuntime(store, await WorkspaceRuntime.openWorkspace(store, stateWorker), stateWorker, readWorker);
  }

  private static async openWorkspace(store: Store, stateWorker: StateWorker | null): Promise<Workspace> {
    const workspace = await openWorkspace(store, null);
    const keepWorld = stateWorker === null;
    workspace.keepWorld = keepWorld;
    // With the world kept here a report computes the provisional snapshot from it; with a worker,
    // the worker stores it apart from its own writes (this thread's rare writes store it).
    if (keepWorld) workspace.provisionalWrites = 'on-demand';
    if (stateWorker) workspace.askProvisional = () => stateWorker.provisional(store.workspace);
    if (!(await store.activeProgram())) await activate(store, { program: workspace.program, yaml: workspace.yaml }, new Date().toISOString());
    return workspace;
  }

  get name(): string {
    return this.store.workspace;
  }

  /**
   * Validates each event, appends the valid ones in one durable transaction, and answers in
   * request order. Rejected events are recorded with the source given.
   */
  async ingest(values: readonly unknown[], source: string): Promise<IngestResult[]> {
    return (await this.ingestSources([{ values, source }]))[0];
  }

  private async ingestSources(requests: { values: readonly unknown[]; source: string }[]): Promise<IngestResult[][]> {
    const answers: IngestResult[][] = requests.map((request) => new Array(request.values.length));
    const entries: LogEntry[] = [];
    const positions: [number, number][] = [];
    const rejects: { source: string; line: number; field: string; reason: string; raw: string }[] = [];
    requests.forEach(({ values, source }, request) => {
      values.forEach((value, index) => {
        const checked = validateEvent(value);
        if (!checked.ok) {
          const id = typeof (value as { id?: unknown } | null)?.id === 'string' ? (value as { id: string }).id : null;
          const first = checked.issues[0];
          answers[request][index] = { id, status: 'rejected', reason: `${first.field}: ${first.reason}`, issues: checked.issues };
          rejects.push({ source, line: index + 1, field: first.field, reason: first.reason, raw: JSON.stringify(value).slice(0, 2000) });
          return;
        }
        const event: FanEvent = checked.event;
        entries.push({ id: event.id, ts: event.ts, body: JSON.stringify(value), source, line: index + 1, fan: event.fan });
        positions.push([request, index]);
      });
    });
    if (entries.length > 0) {
      const statuses = await this.store.append(entries, samePayload);
      statuses.forEach((status, i) => {
        const [request, index] = positions[i];
        answers[request][index] = { id: entries[i].id, status };
      });
      this.scheduleSync();
    }
    if (rejects.length > 0) await this.store.recordRejects(rejects);
    return answers;
  }

  private group: { values: readonly unknown[]; source: string; done: (results: IngestResult[]) => void; fail: (error: unknown) => void }[] = [];
  private flushing = false;

  /**
   * Group commit: ingest requests are validated and appended together in one durable transaction
   * (one fsync), then each gets its own results, the same as running them one after another in
   * arrival order. One group is appended at a time: the requests that arrive in the same turn of
   * the event loop, or while the previous group is being appended, form the next one (up to
   * GROUP_EVENTS events). Appends of one workspace are serialised by the store in any case (the
   * log's counter); a request that started its own transaction meanwhile paid its own commit only
   * to wait for the lock.
   */
  ingestGrouped(values: readonly unknown[], source: string): Promise<IngestResult[]> {
    return new Promise((done, fail) => {
      if (this.group.length === 0 && !this.flushing) setImmediate(() => void this.flushGroups());
      this.group.push({ values, source, done, fail });
    });
  }

  private async flushGroups(): Promise<void> {
    if (this.flushing) return;
    this.flushing = true;
    try {
      while (this.group.length > 0) {
        let count = 0;
        let taken = 0;
        while (taken < this.group.length && (taken === 0 || count + this.group[taken].values.length <= GROUP_EVENTS)) count += this.group[taken++].values.length;
        const group = this.group.splice(0, taken);
        try {
          const all = await this.ingestSources(group.map((request) => ({ values: request.values, source: request.source })));
          group.forEach((request, index) => request.done(all[index]));
        } catch (error) {
          for (const request of group) request.fail(error);
        }
      }
    } finally {
      this.flushing = false;
    }
  }

  private scheduleSync(): void {
    if (this.syncTimer) return;
    // While ingest is busy, about a third of the time at most goes to catching up in the background.
    this.syncTimer = setTimeout(() => {
      this.syncTimer = null;
      // Reads catch up themselves and report a failure; a background pass retries later.
      this.sync().catch(() => this.scheduleSync());
      // On the worker a pass does not hold this thread: the next may follow at once.
    }, this.stateWorker ? WORKER_SYNC_DELAY_MS : Math.max(SYNC_DELAY_MS, 2 * this.lastSyncMs));
    this.syncTimer.unref();
  }

  /** Brings the derived state up to the end of the log (and to the store's active program). */
  /** Catches up, and gives the meta of the state it left current. */
  sync(): Promise<StateMeta | null> {
    this.syncing ??= this.syncOnce().finally(() => {
      this.syncing = null;
    });
    return this.syncing;
  }

  private async syncOnce(): Promise<StateMeta | null> {
    // One read for the program, the state's position and the log's.
    const position = await this.store.readPosition();
    const active = position.activeProgramVersion;
    if (active !== null && active !== this.workspace.program.version) this.workspace = await WorkspaceRuntime.openWorkspace(this.store, this.stateWorker);
    const meta = metaIfCurrent(this.workspace, position.meta, position.maxSeq);
    if (meta) return meta;
    if (this.stateWorker) return this.syncByWorker();
    const started = performance.now();
    // Slices of 2,000 events, so that requests are served while the engine catches up.
    noteStateChange(this.workspace, (await catchUp(this.workspace, undefined, { yieldEvery: 2000 })).change);
    this.lastSyncMs = performance.now() - started;
    return null;
  }

  /**
   * Asks the worker to catch up, then returns the stored meta if it covers the log as it was
   * when asked (events appended since belong to later reads; null if the state is of another
   * program or engine, which the caller's own check then handles).
   */
  private async syncByWorker(): Promise<StateMeta | null> {
    const target = await this.store.maxSeq();
    const started = performance.now();
    noteStateChange(this.workspace, await (this.stateWorker as StateWorker).sync(this.name));
    this.lastSyncMs = performance.now() - started;
    const meta = await this.store.loadStateMeta();
    return meta && meta.appliedSeq >= target && meta.programVersion === this.workspace.program.version && engineVersionOf(meta.world) === ENGINE_VERSION ? meta : null;
  }

  /** A stored event by id (its body as sent), or null. */
  async event(id: string): Promise<Record<string, unknown> | null> {
    const body = await this.store.readEvent(id);
    return body === null ? null : (JSON.parse(body) as Record<string, unknown>);
  }

  async fan(id: string, asOf: number): Promise<FanView> {
    const meta = await this.sync();
    return queryFan(this.workspace, id, asOf, meta ?? undefined);
  }

  /**
   * The JSON of `fan(id, asOf)`. With a read worker, a read of the current state is built there;
   * this thread only catches the state up and hands over its position.
   */
  async fanJson(id: string, asOf: number): Promise<string> {
    // A pass of this thread's own leaves no meta: the state it left current is read.
    const meta = (await this.sync()) ?? (this.readWorker ? await currentMeta(this.workspace) : null);
    const clock = clockOf(meta);
    if (this.readWorker && meta && asOf >= clock) {
      const json = await this.readWorker.fan(this.name, id, asOf, { appliedSeq: meta.appliedSeq, programVersion: meta.programVersion, clock });
      if (json !== null) return json;
    }
    return JSON.stringify(await queryFan(this.workspace, id, asOf, meta ?? undefined));
  }

  async fans(filter: FanFilter, asOf: number, cursor: number, limit: number): Promise<{ items: FanView[]; next: number | null }> {
    const meta = await this.sync();
    return queryFanPage(this.workspace, filter, asOf, cursor, limit, meta ?? undefined);
  }

  async fansSorted(filter: FanFilter, asOf: number, order: FanOrder, after: FanOrderQuery['after'], limit: number): Promise<{ items: FanView[]; next: FanOrderQuery['after'] }> {
    const meta = await this.sync();
    return queryFanPageSorted(this.workspace, filter, asOf, order, after, limit, meta ?? undefined);
  }

  async report(month: string, asOf: number): Promise<MonthlyReport> {
    const meta = await this.sync();
    return queryReport(this.workspace, month, asOf, meta ?? undefined);
  }

  /** The month's report with the indicator trend of the months up to it (the dashboard's overview). */
  async overview(month: string, asOf: number, months: number): Promise<{ report: MonthlyReport; trend: TrendPoint[] }> {
    const meta = await this.sync();
    const report = await queryReport(this.workspace, month, asOf, meta ?? undefined);
    return { report, trend: await queryTrend(this.workspace, month, months, asOf, meta, report) };
  }

  async movement(month: string, asOf: number): Promise<Movement> {
    return queryMovement(this.workspace, month, asOf, await this.sync());
  }

  async timeline(fan: string, limit: number, beforeSeq: number | undefined): Promise<{ items: TimelineItem[]; nextBefore: number | null }> {
    await this.sync();
    if (!(await this.store.loadFan(fan))) throw new NotFoundError(`unknown fan ${JSON.stringify(fan)}`);
    return queryTimeline(this.workspace, fan, limit, beforeSeq);
  }

  async referralTree(fan: string): Promise<Awaited<ReturnType<typeof queryReferralTree>>> {
    await this.sync();
    if (!(await this.store.loadFan(fan))) throw new NotFoundError(`unknown fan ${JSON.stringify(fan)}`);
    return queryReferralTree(this.workspace, fan);
  }

  monthOf(asOf: number): string {
    const { calendar } = this.workspace.engine;
    return calendar.previousMonthKey(calendar.monthKey(asOf));
  }

  async program(): Promise<{ version: string; yaml: string; activatedAt: string | null }> {
    await this.sync();
    const active = await this.store.activeProgram();
    return { version: this.workspace.program.version, yaml: this.workspace.yaml, activatedAt: active?.activatedAt ?? null };
  }

  async programHistory(): Promise<{ version: string; activatedAt: string }[]> {
    return (await this.store.programHistory()).map(({ version, activatedAt }) => ({ version, activatedAt }));
  }

  checkProgram(yaml: string): ProgramCheck {
    const parsed = parseProgram(yaml);
    if (!parsed.ok) return { ok: false, version: null, issues: [...parsed.issues] };
    return { ok: true, version: programVersionOf(parsed.spec), issues: [] };
  }

  /** Makes a program active and rebuilds the state under it from the whole log. */
  async activateProgram(yaml: string): Promise<{ version: string; changed: boolean }> {
    const loaded = compileProgramText(yaml, 'program');
    await this.sync();
    const changed = loaded.program.version !== this.workspace.program.version;
    await activate(this.store, loaded, new Date().toISOString());
    this.workspace = await WorkspaceRuntime.openWorkspace(this.store, this.stateWorker);
    noteStateChange(this.workspace, this.stateWorker ? await this.stateWorker.sync(this.name) : (await catchUp(this.workspace)).change);
    return { version: loaded.program.version, changed };
  }

  // Referral and ledger (PRODUCT §5): the same use cases as the CLI, on this runtime's state.
  private readonly syncFn = () => this.sync();

  referral(id: string, asOf: number) {
    return referralShow(this.workspace, id, asOf, this.syncFn);
  }

  redeem(request: RedemptionRequest, now: number) {
    return redeem(this.workspace, request, now, this.syncFn);
  }

  leaderboard(month: string | null, limit: number) {
    return leaderboard(this.workspace, month, limit, this.syncFn);
  }

  campaigns(asOf: number) {
    return campaignReport(this.workspace, asOf, this.syncFn);
  }

  analytics() {
    return fissionAnalytics(this.workspace, this.syncFn);
  }

  compliance() {
    return complianceReport(this.workspace, this.syncFn);
  }

  catalog() {
    return this.workspace.program.points.catalog;
  }

  reviews() {
    return reviewQueue(this.workspace, this.syncFn);
  }

  resolveReview(referee: string, decision: 'release' | 'void', now: number, actor: string) {
    return resolveReview(this.workspace, referee, decision, now, actor, this.syncFn);
  }

  async payout(payoutId: string, at: number) {
    await this.sync();
    return runPayout(this.workspace, payoutId, at);
  }

  payouts() {
    return listPayouts(this.workspace, this.syncFn);
  }

  ledgerVerify() {
    return ledgerVerify(this.workspace, this.syncFn);
  }

  ledgerAudit(id: string, asset: string | null) {
    return ledgerAudit(this.workspace, id, asset, this.syncFn);
  }
}
