/**
 * The event contract (PRODUCT §2): one table of types and their props, one validator over it.
 * The table is data so that the CSV reader, the docs and later the HTTP schema read the same source.
 */
export const CHANNELS = ['wechat', 'weibo', 'xiaohongshu', 'douyin', 'qq', 'bilibili', 'live', 'shop', 'other'] as const;
export type Channel = (typeof CHANNELS)[number];

export type PropKind =
  | 'id'
  | 'string'
  | 'amount'
  | 'score0to10'
  | 'score1to5'
  | 'integer'
  | 'level'
  | 'contentKind'
  | 'profileValue'
  | 'positiveInteger'
  | 'reviewDecision';

export interface PropSpec {
  readonly kind: PropKind;
  readonly required: boolean;
}

const req = (kind: PropKind): PropSpec => ({ kind, required: true });
const opt = (kind: PropKind): PropSpec => ({ kind, required: false });

export const EVENT_TYPES = {
  follow: { referrer: opt('id'), referralCode: opt('id') },
  unfollow: {},
  view: { contentId: opt('id'), category: opt('string') },
  like: { contentId: opt('id'), category: opt('string') },
  collect: { contentId: opt('id'), category: opt('string') },
  comment: { contentId: opt('id'), category: opt('string') },
  share: { contentId: opt('id'), category: opt('string') },
  checkin: {},
  message: {},
  purchase: { orderId: req('id'), amount: req('amount'), currency: opt('string'), series: opt('string') },
  refund: { orderId: req('id'), amount: req('amount') },
  content_submit: { contentId: req('id'), kind: req('contentKind') },
  content_select: { contentId: req('id') },
  post: { contentId: req('id'), category: req('string') },
  group_join: { groupId: req('id') },
  group_leave: { groupId: req('id') },
  group_message: { groupId: req('id') },
  gift: { amount: req('amount'), streamId: req('id') },
  nps: { score: req('score0to10') },
  profile: {
    age: opt('profileValue'),
    gender: opt('profileValue'),
    region: opt('profileValue'),
    occupation: opt('profileValue'),
    income: opt('profileValue'),
    family: opt('profileValue'),
    reach: opt('profileValue'),
  },
  test_feedback: { productId: req('id'), score: req('score1to5') },
  vote: { pollId: req('id'), option: req('string') },
  op_recognize: {},
  op_lock_level: { level: req('level') },
  op_grant_badge: { badge: req('id') },
  op_revoke_badge: { badge: req('id') },
  op_adjust_points: { points: req('integer') },
  op_set_role: { groupId: req('id'), role: req('string') },
  // Written by fanflow itself when it decides (redemption, payout run, fraud review); replay
  // re-applies the recorded decision and never decides again.
  redeem: { requestId: req('id'), item: req('id'), points: req('positiveInteger') },
  op_payout: { payoutId: req('id'), amount: req('amount') },
  op_review_referral: { decision: req('reviewDecision') },
} as const satisfies Record<string, Record<string, PropSpec>>;

export type EventType = keyof typeof EVENT_TYPES;
export const EVENT_TYPE_NAMES = Object.keys(EVENT_TYPES) as EventType[];

export const INTERACTION_TYPES: ReadonlySet<string> = new Set(['like', 'collect', 'comment', 'share']);
export const ACTIVITY_TYPES: ReadonlySet<string> = new Set([
  'view', 'like', 'collect', 'comment', 'share', 'checkin', 'message', 'purchase', 'content_submit',
  'group_join', 'group_message', 'gift', 'nps', 'profile', 'test_feedback', 'vote',
]);
export const CONTENT_KINDS = ['purchase_share', 'experience', 'note', 'question'] as const;
export const REVIEW_DECISIONS = ['release', 'void'] as const;

/** A validated event. `ts` is epoch milliseconds (fractions keep sub-millisecond order). */
export interface FanEvent {
  readonly id: string;
  readonly type: EventType;
  readonly fan: string | null;
  readonly ts: number;
  readonly channel: Channel | null;
  readonly props: Readonly<Record<string, unknown>>;
  /** Minor units of props.amount for purchase, refund and gift. */
  readonly amountMinor: number;
}

export interface EventIssue {
  readonly field: string;
  readonly reason: string;
}

export type ValidationResult =
  | { readonly ok: true; readonly event: FanEvent }
  | { readonly ok: false; readonly issues: EventIssue[] };

const RFC3339 =
  /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|([+-])(\d{2}):(\d{2}))$/;
const DAYS_IN_MONTH = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

function twoDigits(text: string, at: number): number {
  const high = text.charCodeAt(at) - 48;
  const low = text.charCodeAt(at + 1) - 48;
  return high >= 0 && high <= 9 && low >= 0 && low <= 9 ? high * 10 + low : -1;
}

/** The common shape, `YYYY-MM-DDTHH:MM:SS±HH:MM` or `…Z`, without a regex; null for anything else. */
function parseCommonTimestamp(text: string): number | null {
  const length = text.length;
  if ((length !== 25 && length !== 20) || text.charCodeAt(4) !== 45 || text.charCodeAt(7) !== 45 || text.charCodeAt(10) !== 84 || text.charCodeAt(13) !== 58 || text.charCodeAt(16) !== 58) return null;
  const century = twoDigits(text, 0);
  const yy = twoDigits(text, 2);
  const month = twoDigits(text, 5);
  const day = twoDigits(text, 8);
  const hour = twoDigits(text, 11);
  const minute = twoDigits(text, 14);
  const second = twoDigits(text, 17);
  if (century < 0 || yy < 0 || month < 1 || month > 12 || day < 1 || hour < 0 || hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 59) return null;
  const year = century * 100 + yy;
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (day > DAYS_IN_MONTH[month - 1] || (month === 2 && day === 29 && !leap)) return null;
  let offsetMinutes = 0;
  if (length === 20) {
    if (text.charCodeAt(19) !== 90) return null;
  } else {
    const sign = text.charCodeAt(19);
    const offsetHours = twoDigits(text, 20);
    const offsetMins = twoDigits(text, 23);
    if ((sign !== 43 && sign !== 45) || text.charCodeAt(22) !== 58 || offsetHours < 0 || offsetHours > 23 || offsetMins < 0 || offsetMins > 59) return null;
    offsetMinutes = (sign === 45 ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  return Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000;
}

/** Parses an RFC 3339 timestamp with seconds and an offset, or epoch milliseconds. */
export function parseTimestamp(value: unknown): number | string {
  if (typeof value === 'number') {
    return Number.isSafeInteger(value) ? value : 'epoch milliseconds must be an integer';
  }
  if (typeof value !== 'string') return 'must be an RFC 3339 string or integer epoch milliseconds';
  const common = parseCommonTimestamp(value);
  if (common !== null) return common;
  const m = RFC3339.exec(value);
  if (!m) return 'must be RFC 3339 with seconds and an offset, e.g. 2026-10-01T12:00:00+08:00';
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  const hour = Number(m[4]);
  const minute = Number(m[5]);
  const second = Number(m[6]);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  if (month < 1 || month > 12) return 'month out of range';
  if (day < 1 || day > DAYS_IN_MONTH[month - 1] || (month === 2 && day === 29 && !leap)) return 'day out of range';
  if (hour > 23 || minute > 59 || second > 59) return 'time of day out of range';
  let offsetMinutes = 0;
  if (m[9] !== undefined) {
    const offsetHours = Number(m[10]);
    const offsetMins = Number(m[11]);
    if (offsetHours > 23 || offsetMins > 59) return 'offset out of range';
    offsetMinutes = (m[9] === '-' ? -1 : 1) * (offsetHours * 60 + offsetMins);
  }
  const fraction = m[7] ? Number(`0${m[7]}`) * 1000 : 0;
  return Date.UTC(year, month - 1, day, hour, minute, second) - offsetMinutes * 60_000 + fraction;
}

const DECIMAL_STRING = /^\d+(\.\d{1,2})?$/;

/** Converts a decimal amount (number or string, ≥ 0, ≤ 2 decimals) to integer minor units. */
export function parseAmountMinor(value: unknown): number | string {
  if (typeof value === 'string') {
    if (!DECIMAL_STRING.test(value)) return 'must be a decimal number ≥ 0 with at most 2 decimals';
    const [whole, fraction = ''] = value.split('.');
    const minor = Number(whole) * 100 + Number(fraction.padEnd(2, '0'));
    return Number.isSafeInteger(minor) ? minor : 'amount too large';
  }
  if (typeof value !== 'number' || !Number.isFinite(value)) return 'must be a decimal number';
  if (value < 0) return 'must not be negative';
  const scaled = value * 100;
  const minor = Math.round(scaled);
  if (Math.abs(scaled - minor) > 1e-6 * Math.max(1, Math.abs(scaled))) return 'at most 2 decimals allowed';
  return Number.isSafeInteger(minor) ? minor : 'amount too large';
}

function checkProp(kind: PropKind, value: unknown): string | null {
  switch (kind) {
    case 'id':
      return typeof value === 'string' && value.length > 0 ? null : 'must be a non-empty string';
    case 'string':
      return typeof value === 'string' ? null : 'must be a string';
    case 'amount': {
      const parsed = parseAmountMinor(value);
      return typeof parsed === 'string' ? parsed : null;
    }
    case 'score0to10':
      return Number.isInteger(value) && (value as number) >= 0 && (value as number) <= 10 ? null : 'must be an integer 0–10';
    case 'score1to5':
      return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 5 ? null : 'must be an integer 1–5';
    case 'integer':
      return Number.isSafeInteger(value) ? null : 'must be an integer';
    case 'positiveInteger':
      return Number.isSafeInteger(value) && (value as number) > 0 ? null : 'must be an integer above 0';
    case 'reviewDecision':
      return (REVIEW_DECISIONS as readonly unknown[]).includes(value) ? null : `must be one of ${REVIEW_DECISIONS.join(', ')}`;
    case 'level':
      return value === null || (Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 5)
        ? null
        : 'must be an integer 1–5 or null';
    case 'contentKind':
      return (CONTENT_KINDS as readonly unknown[]).includes(value) ? null : `must be one of ${CONTENT_KINDS.join(', ')}`;
    case 'profileValue':
      return value === null || typeof value === 'string' || (typeof value === 'number' && Number.isFinite(value))
        ? null
        : 'must be a string, a number or null';
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Validates one decoded JSON value against the event contract, reporting every issue with its field. */
export function validateEvent(raw: unknown): ValidationResult {
  if (!isPlainObject(raw)) return { ok: false, issues: [{ field: '(line)', reason: 'must be a JSON object' }] };
  const issues: EventIssue[] = [];
  const { id, type, fan, ts, channel, props } = raw;
  if (typeof id !== 'string' || id.length === 0) issues.push({ field: 'id', reason: id === undefined ? 'required' : 'must be a non-empty string' });
  const spec = typeof type === 'string' ? (EVENT_TYPES as Record<string, Record<string, PropSpec>>)[type] : undefined;
  if (type === undefined) issues.push({ field: 'type', reason: 'required' });
  else if (!spec || !Object.prototype.hasOwnProperty.call(EVENT_TYPES, type as string)) issues.push({ field: 'type', reason: `unknown type ${JSON.stringify(type)}` });
  let tsMs = 0;
  if (ts === undefined) issues.push({ field: 'ts', reason: 'required' });
  else {
    const parsed = parseTimestamp(ts);
    if (typeof parsed === 'string') issues.push({ field: 'ts', reason: parsed });
    else tsMs = parsed;
  }
  if (type === 'post') {
    if (fan !== undefined && fan !== null && (typeof fan !== 'string' || fan.length === 0)) issues.push({ field: 'fan', reason: 'must be a non-empty string when given' });
  } else if (fan === undefined) issues.push({ field: 'fan', reason: 'required' });
  else if (typeof fan !== 'string' || fan.length === 0) issues.push({ field: 'fan', reason: 'must be a non-empty string' });
  if (channel !== undefined && channel !== null && !(CHANNELS as readonly unknown[]).includes(channel)) {
    issues.push({ field: 'channel', reason: `must be one of ${CHANNELS.join(', ')}` });
  }
  let propsObject: Record<string, unknown> = {};
  if (props !== undefined && props !== null) {
    if (!isPlainObject(props)) issues.push({ field: 'props', reason: 'must be an object' });
    else propsObject = props;
  }
  if (spec) {
    for (const name in spec) {
      const propSpec = spec[name];
      const value = propsObject[name];
      if (value === undefined) {
        if (propSpec.required) issues.push({ field: `props.${name}`, reason: 'required' });
        continue;
      }
      const problem = checkProp(propSpec.kind, value);
      if (problem) issues.push({ field: `props.${name}`, reason: problem });
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  const amount = propsObject.amount;
  const amountMinor = spec && 'amount' in spec ? (parseAmountMinor(amount) as number) : 0;
  return {
    ok: true,
    event: {
      id: id as string,
      type: type as EventType,
      fan: typeof fan === 'string' ? fan : null,
      ts: tsMs,
      channel: (channel ?? null) as Channel | null,
      props: propsObject,
      amountMinor,
    },
  };
}

/**
 * JSON with object keys sorted and numbers printed by value: the payload compared for idempotency.
 * @example canonicalJson({b: 1.0, a: [2]}) === '{"a":[2],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  const keys = Object.keys(value).sort();
  let out = '{';
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    const item = (value as Record<string, unknown>)[key];
    if (item === undefined) continue;
    if (out.length > 1) out += ',';
    out += `${JSON.stringify(key)}:${canonicalJson(item)}`;
  }
  return `${out}}`;
}

/** Compares strings by Unicode code points (UTF-16 `<` differs for astral characters). */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x === y) continue;
    const xSurrogate = x >= 0xd800 && x <= 0xdfff;
    const ySurrogate = y >= 0xd800 && y <= 0xdfff;
    if (xSurrogate === ySurrogate) return x - y;
    // A surrogate encodes a code point above U+FFFF, above every non-surrogate unit.
    return xSurrogate ? 1 : -1;
  }
  return a.length - b.length;
}

/** The log order: `ts`, then `id` by code points. */
export function compareEvents(a: { ts: number; id: string }, b: { ts: number; id: string }): number {
  return a.ts === b.ts ? compareCodePoints(a.id, b.id) : a.ts - b.ts;
}
