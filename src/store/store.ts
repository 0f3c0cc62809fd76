/**
 * The storage port: the event log (the truth), the derived state written back after the engine
 * runs, and the programs. One adapter per dialect; the same contract tests run against each.
 */
import type { Posting } from '../core/state.js';
import type { PostingBlock } from './posting-codec.js';
import type { LoyaltyRanks } from './loyalty-ranks.js';
import type { DerivedEvent } from '../core/engine.js';
import type { RanksOf } from './loyalty-ranks.js';

export interface LogEntry {
  readonly id: string;
  readonly ts: number;
  /** The event object as JSON text; payloads are compared canonically when the texts differ. */
  readonly body: string;
  readonly source: string | null;
  readonly line: number | null;
  /** The event's fan, kept beside the body so that one fan's events are an index range. */
  readonly fan: string | null;
}

export type AppendStatus = 'accepted' | 'duplicate' | 'conflict';

export interface RejectRecord {
  readonly source: string | null;
  readonly line: number | null;
  readonly field: string;
  readonly reason: string;
  readonly raw: string;
}

export interface StoredLogEvent {
  readonly seq: number;
  readonly body: string;
}

/** What webhook subscribers can receive. */
export const WEBHOOK_EVENT_TYPES = [
  'level.changed',
  'layer.changed',
  'lv5.eligible',
  'points.posted',
  'badge.granted',
  'badge.revoked',
  'referral.qualified',
  'referral.held',
  'cash.posted',
  'event.rejected',
  'event.inapplicable',
] as const;
export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

/** A change to tell subscribers about, written to the outbox in the transaction that makes it. */
export interface Notification {
  readonly type: WebhookEventType;
  readonly data: Record<string, unknown>;
}

export interface WebhookSubscription {
  readonly id: string;
  readonly workspace: string;
  readonly url: string;
  /** The HMAC-SHA256 key of the signatures. */
  readonly secret: string;
  readonly types: WebhookEventType[];
  readonly createdAt: string;
}

/** One delivery of one notification to one subscription. */
export interface OutboxItem {
  readonly seq: number;
  readonly workspace: string;
  readonly subscription: string;
  readonly url: string;
  readonly secret: string;
  readonly type: WebhookEventType;
  /** The JSON body sent, fixed when the item was written. */
  readonly payload: string;
  readonly attempts: number;
  readonly createdAt: string;
  readonly lastError: string | null;
}

/** One fan's stored row: its state and the columns queries select by. */
export interface FanRow {
  id: string;
  no: number;
  level: number;
  layer: string;
  loyaltyLog: number | null;
  lastActivity: number | null;
  recency: number;
  /** At the state's clock: a lower bound of the fan's Backbone shortfall at any later instant. */
  backboneGap: number;
  /** At the state's clock: an upper bound of its interactions in the layer window later. */
  interactionsInWindow: number;
  /** The fan's referrer (null when not referred) and its qualified referrals: the referral tree and leaderboards. */
  referrer: string | null;
  referrals: number;
  state: string;
}

/** Everything the engine derived, written back atomically with the log position it covers. */
export interface StateWrite {
  readonly programVersion: string;
  readonly appliedSeq: number;
  readonly rebuild: boolean;
  /** Read once, in order; produced lazily so that a full write never holds every serialised fan at once. */
  readonly fans: Iterable<FanRow>;
  readonly postings: readonly Posting[];
  /** Postings already encoded (written before `postings`); read once, in order. */
  readonly postingBlocks: Iterable<PostingBlock>;
  readonly derived: readonly DerivedEvent[];
  readonly snapshots: { month: string; data: string }[];
  /** The snapshot of the next month start, if no event arrives before it (for reports). */
  readonly provisional: { month: string; data: string } | null;
  readonly world: string;
  /** For the outbox of the subscriptions that want them (see Store.subscribedTypes). */
  readonly notifications?: readonly Notification[];
  /** Every fan's loyalty value, sorted (see loyalty-ranks.ts); absent: the store reads them from the fans it holds. */
  readonly loyalty?: LoyaltyRanks;
  /** The program's time zone's offsets, to be kept for later processes (see Store.zoneOffsets); absent: unchanged. */
  readonly zoneOffsets?: { readonly zone: string; readonly text: string } | null;
}

export interface StoredState {
  readonly programVersion: string;
  readonly appliedSeq: number;
  readonly world: string;
  readonly fans: { id: string; state: string }[];
  readonly snapshots: { month: string; data: string }[];
}

export interface StorePosition {
  activeProgramVersion: string | null;
  meta: { programVersion: string; appliedSeq: number; world: string } | null;
  maxSeq: number;
}

export interface StoredProgram {
  readonly version: string;
  readonly yaml: string;
  /** The validated program as JSON (null for programs stored before it was kept). */
  readonly spec: string | null;
  readonly activatedAt: string;
}

/**
 * A redemption request and its outcome, kept so that the same request id gets the same answer.
 * An accepted one also appended a `redeem` event at log position `seq`.
 */
export interface RedemptionRecord {
  readonly requestId: string;
  readonly fan: string;
  readonly item: string;
  readonly points: number;
  readonly seq: number | null;
  /** The answer given, as JSON. */
  readonly outcome: string;
  readonly createdAt: string;
}

/** The workspace that commands use when none is named. */
export const DEFAULT_WORKSPACE = 'default';

export type KeyScope = 'ingest' | 'read' | 'admin';
export const KEY_SCOPES: readonly KeyScope[] = ['ingest', 'read', 'admin'];

/** An API key as stored: its public id, the hash of its secret, never the secret. */
export interface StoredKey {
  readonly id: string;
  readonly workspace: string;
  readonly hash: string;
  readonly scopes: KeyScope[];
  readonly label: string | null;
  readonly createdAt: string;
  readonly revokedAt: string | null;
}

export const FAN_ORDERS = ['level', 'loyalty'] as const;
export interface FanOrderQuery {
  sort: (typeof FAN_ORDERS)[number];
  descending: boolean;
  after: { value: number | null; no: number } | null;
  limit: number;
}

export const USER_ROLES = ['owner', 'admin', 'analyst'] as const;
export type UserRole = (typeof USER_ROLES)[number];

/** A dashboard operator: one workspace, one role; the password only as its scrypt hash. */
export interface StoredUser {
  readonly id: string;
  readonly workspace: string;
  readonly email: string;
  readonly passwordHash: string;
  readonly role: UserRole;
  readonly createdAt: string;
  readonly disabledAt: string | null;
}

/** A signed-in browser: found by the SHA-256 of its cookie token; carries its CSRF token. */
export interface StoredSession {
  readonly hash: string;
  readonly userId: string;
  readonly csrf: string;
  readonly createdAt: string;
  /** Epoch ms. */
  readonly expiresAt: number;
}

/** What a deployment knows besides the workspaces' data: the workspaces, their keys and operators. */
export interface Catalog {
  listWorkspaces(): Promise<{ name: string; createdAt: string }[]>;
  /** Stores a key (creating its workspace if new). */
  createKey(key: { id: string; workspace: string; hash: string; scopes: KeyScope[]; label: string | null; createdAt: string }): Promise<void>;
  findKey(id: string): Promise<StoredKey | null>;
  listKeys(workspace?: string): Promise<StoredKey[]>;
  /** False when no such key, or already revoked. */
  revokeKey(id: string, at: string): Promise<boolean>;
  /** Stores an operator (creating the workspace if new); the email must be new to the deployment. */
  createUser(user: StoredUser): Promise<void>;
  findUserByEmail(email: string): Promise<StoredUser | null>;
  findUser(id: string): Promise<StoredUser | null>;
  listUsers(workspace?: string): Promise<StoredUser[]>;
  /** False when no such user; the user's sessions end. */
  setPassword(email: string, passwordHash: string): Promise<boolean>;
  /** False when no such user or already disabled; the user's sessions end. */
  disableUser(email: string, at: string): Promise<boolean>;
  createSession(session: StoredSession): Promise<void>;
  /** The session with this hash, with its user, when neither has ended (expired sessions are deleted). */
  findSession(hash: string, now: number): Promise<{ session: StoredSession; user: StoredUser } | null>;
  deleteSession(hash: string): Promise<void>;
  addWebhook(subscription: WebhookSubscription): Promise<void>;
  listWebhooks(workspace: string): Promise<WebhookSubscription[]>;
  /** False when the workspace has no such subscription. Its pending deliveries are dropped. */
  removeWebhook(workspace: string, id: string): Promise<boolean>;
  /**
   * Up to `limit` deliveries due at `now` (pending, next attempt reached, not claimed by another
   * dispatcher), claimed for `leaseMs`: a dispatcher that dies releases them when the lease ends.
   */
  claimDeliveries(now: number, limit: number, leaseMs: number): Promise<OutboxItem[]>;
  /** Records an attempt: delivered, or failed with the next attempt's time (null: dead letter). */
  finishDelivery(seq: number, outcome: { deliveredAt: string } | { error: string; nextAttemptAt: number | null }): Promise<void>;
  deadLetters(workspace: string): Promise<OutboxItem[]>;
  /** Makes a dead letter due again; false when the workspace has no such dead letter. */
  retryDelivery(workspace: string, seq: number, now: number): Promise<boolean>;
}

/** A database: the catalog, and a store per workspace. One adapter per dialect. */
export interface Database extends Catalog {
  readonly kind: 'sqlite' | 'postgres';
  /**
   * SQLite: leaves copying the write-ahead log back into the file to another connection that
   * writes (a server's state worker). This connection's commits no longer run SQLite's automatic
   * checkpoint, which, whenever a commit of a few events crossed the log's 1,000 pages, wrote the
   * state worker's pages back and synced the file on the request loop (tens of milliseconds).
   */
  leaveCheckpoints?(): void;
  /** The store of one workspace, created if new. */
  workspace(name: string): Promise<Store>;
  close(): Promise<void>;
}

/** Rows streamed in batches (a few thousand at a time), so that loops over millions stay cheap. */
export type Batches<T> = AsyncIterable<readonly T[]>;

/**
 * One workspace's storage. Every method is asynchronous; the SQLite adapter answers at once, the
 * PostgreSQL adapter over the network. Inside `exclusive`, use the store passed to the callback.
 */
export interface Store {
  readonly kind: 'sqlite' | 'postgres';
  /** The database file, for a second connection on another thread (null when in memory or not SQLite). */
  readonly path: string | null;
  /** The workspace this store reads and writes; no call sees another's rows. */
  readonly workspace: string;
  /**
   * Appends entries to the log durably; one status per entry, in order. An id already stored
   * with the same body, or a body that `samePayload` finds equal, is a duplicate; otherwise a conflict.
   * Seqs are dense and in commit order within the workspace.
   */
  append(entries: readonly LogEntry[], samePayload: (storedBody: string, entry: LogEntry) => boolean): Promise<AppendStatus[]>;
  /** Records rejected input, and queues `event.rejected` for the subscriptions that want it. */
  recordRejects(rejects: readonly RejectRecord[]): Promise<void>;
  /** The webhook event types some subscription of this workspace wants. */
  subscribedTypes(): Promise<ReadonlySet<WebhookEventType>>;
  /**
   * Runs `run` as the workspace's one state writer, in one transaction: writers of derived state
   * queue behind each other (appends may go on meanwhile). `run` uses the store it is given.
   */
  exclusive<T>(run: (store: Store) => Promise<T>): Promise<T>;
  /**
   * Runs `read` over the stored state as of one moment: the store it is given sees no write made
   * after its first read (a read transaction of its own), whatever other connections write
   * meanwhile, while this store's other callers go on. Only for reads.
   */
  readConsistently<T>(read: (store: Store) => Promise<T>): Promise<T>;
  maxSeq(): Promise<number>;
  /** Log entries with seq > afterSeq, in seq order. */
  readAfter(afterSeq: number): Batches<StoredLogEvent>;
  /** The whole log (ts ≤ until when given) in (ts, id) order, streamed. */
  readOrdered(until?: number): Batches<StoredLogEvent>;
  countEvents(): Promise<number>;
  /** The stored body of one event, by id. */
  readEvent(id: string): Promise<string | null>;
  /**
   * One fan's events that the stored state covers (up to its appliedSeq), newest first by log
   * position, up to `limit`, before `beforeSeq` when given.
   */
  readFanEvents(fan: string, limit: number, beforeSeq?: number): Promise<{ seq: number; body: string }[]>;
  /** One fan's stored derived changes (levels, badges, referrals), newest first, up to `limit`, before `beforeTs` when given. */
  readFanDerived(fan: string, limit: number, beforeTs?: number): Promise<{ type: string; ts: number; eventId: string | null; data: string }[]>;
  loadState(): Promise<StoredState | null>;
  /** The state's position and program without loading any fan. */
  loadStateMeta(): Promise<{ programVersion: string; appliedSeq: number; world: string } | null>;
  /** The stored provisional snapshot (see StateWrite.provisional). */
  loadProvisional(): Promise<{ month: string; data: string } | null>;
  /**
   * The offsets of a time zone a state write kept (StateWrite.zoneOffsets), as written; null if
   * none. Derived from the time-zone data, not from the log: a cache a process may ignore.
   */
  zoneOffsets(zone: string): Promise<string | null>;
  /**
   * One stored fan, with the log position of the stored state it was read from (`appliedSeq`,
   * null before any state), in one snapshot: a caller holding the state's meta from an earlier
   * read can tell whether the state was rewritten in between.
   */
  loadFan(id: string): Promise<{ state: string; programVersion: string; appliedSeq: number | null } | null>;
  /** Every stored fan state, in fan-number order. */
  iterateFans(): Batches<{ id: string; state: string }>;
  /** How many fans the stored state holds. */
  countFans(): Promise<number>;
  /** Up to `limit` stored fans with a number above `afterNo`, by number. */
  pageFans(query: { afterNo: number; limit: number }): Promise<{ no: number; state: string }[]>;
  /**
   * Up to `limit` stored fans ordered by a stored column (fan number breaks ties, in the same
   * direction), after the position `after`; fans without a value come last in both directions.
   */
  pageFansBy(query: FanOrderQuery): Promise<{ no: number; state: string; value: number | null }[]>;
  readSnapshots(): Promise<{ month: string; data: string }[]>;
  /**
   * States of fans whose stored layer is one of `layers` with activity after `activeAfter`, or at
   * `level`. In batches: a reader that parses each batch before the next keeps few states alive
   * at once (read whole, 5,500 states of 4 kB parsed a quarter slower, in garbage collection).
   */
  findFanStates(query: { layers: string[]; activeAfter: number; level: number }): Batches<string>;
  /** Fans of a stored layer active after the instant, by Backbone gap then interactions (most first). */
  iterateByBackboneGap(layer: string, activeAfter: number): Batches<{ state: string; backboneGap: number; interactionsInWindow: number }>;
  /** States of followers with no activity after the instant (or stored Observation), most recently followed first. */
  findInactiveRecent(activeAtOrBefore: number, limit: number): Promise<string[]>;
  saveState(write: StateWrite): Promise<void>;
  /**
   * Replaces the stored provisional snapshot (StateWrite.provisional) alone: for a writer that
   * leaves it out of its state writes and stores it later for the state then stored (the caller
   * checks that position under `exclusive`).
   */
  saveProvisional(provisional: { month: string; data: string } | null): Promise<void>;
  /**
   * How many fans have a loyalty value below `value` (fans without activity included), of how
   * many. `of`: the stored state the caller reads (from readPosition); ranks already read for it
   * are used without asking the store again.
   */
  loyaltyRank(value: number, of?: RanksOf): Promise<{ below: number; total: number }>;
  readPostings(): Batches<Posting>;
  activeProgram(): Promise<StoredProgram | null>;
  /** The active program's version only (cheap: checked before every read of a server). */
  activeProgramVersion(): Promise<string | null>;
  /** What a server checks before every read, in one read: activeProgramVersion, loadStateMeta and maxSeq. */
  readPosition(): Promise<StorePosition>;
  /** Every program activated in this workspace, the active one first. */
  programHistory(): Promise<StoredProgram[]>;
  /** Every referral link: the referred fan and its referrer. */
  referralEdges(): Promise<{ fan: string; referrer: string }[]>;
  /** States of fans with at least one qualified referral, the most first (`limit`: at most that many). */
  referrerStates(limit?: number): Promise<string[]>;
  findRedemption(requestId: string): Promise<RedemptionRecord | null>;
  /** Records a decided request (call inside `exclusive`, with the append of its event). */
  saveRedemption(record: RedemptionRecord): Promise<void>;
  /** Accepted redemptions at log positions after `seq`: spent, but not yet in a state at `seq`. */
  redemptionsAfter(seq: number): Promise<{ fan: string; item: string; points: number }[]>;
  activateProgram(version: string, yaml: string, spec: string, at: string): Promise<void>;
  /** Closes the connection when this store owns it (opened alone); otherwise nothing. */
  close(): Promise<void>;
}
