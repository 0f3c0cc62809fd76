/**
 * The dashboard's one client of the server's API: every route it uses is a typed function here,
 * with the types the server itself returns (imported from its sources, so the two cannot drift).
 * The session cookie authenticates; state-changing requests carry the session's CSRF token.
 */
import type { FanView } from '../../src/core/fan-view.js';
import type { MonthlyReport } from '../../src/core/report.js';
import type { Movement, TimelineItem, TrendPoint, TreeNode } from '../../src/app/dashboard.js';
import type { ProgramChange } from '../../src/app/program-diff.js';
import type { ComplianceReport, FissionAnalytics, LeaderboardEntry, ReferralView, ReviewItem } from '../../src/app/fission.js';

export type { FanView, MonthlyReport, Movement, TimelineItem, TrendPoint, TreeNode, ProgramChange, ComplianceReport, FissionAnalytics, LeaderboardEntry, ReferralView, ReviewItem };

export interface Session {
  user: { email: string; workspace: string; role: 'owner' | 'admin' | 'analyst' };
  csrf: string;
  scopes: string[];
}

export interface ProgramIssue {
  path: string;
  message: string;
  line?: number | null;
}

/** A problem+json answer, or a network failure (status 0). */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly issues: { field: string; reason: string }[] = [],
  ) {
    super(message);
  }
}

let csrf: string | null = null;

type Query = Record<string, string | number | undefined | string[]>;

function withQuery(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) {
    if (value === undefined || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text === '' ? path : `${path}?${text}`;
}

async function request<T>(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (method !== 'GET' && csrf) headers['X-CSRF-Token'] = csrf;
  let response: Response;
  try {
    response = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), credentials: 'same-origin' });
  } catch (error) {
    throw new ApiError(0, 'NETWORK', (error as Error).message);
  }
  if (response.status === 401 && !path.startsWith('/auth/')) {
    window.location.assign(`/login?next=${encodeURIComponent(window.location.pathname + window.location.search)}`);
  }
  if (response.status === 204) return undefined as T;
  const text = await response.text();
  const data = text === '' ? null : (JSON.parse(text) as unknown);
  if (!response.ok) {
    const problem = (data ?? {}) as { code?: string; detail?: string; title?: string; issues?: { field: string; reason: string }[] };
    throw new ApiError(response.status, problem.code ?? 'HTTP_' + response.status, problem.detail ?? problem.title ?? response.statusText, problem.issues ?? []);
  }
  return data as T;
}

export interface FanQuery {
  layer?: string;
  level?: number;
  tag?: string[];
  sort?: 'level' | '-level' | 'loyalty' | '-loyalty';
  cursor?: string;
  limit?: number;
}

export type ActionRequest =
  | { action: 'recognize'; note?: string; requestId?: string }
  | { action: 'lock_level'; level: number; note?: string; requestId?: string }
  | { action: 'unlock_level'; note?: string; requestId?: string }
  | { action: 'grant_badge' | 'revoke_badge'; badge: string; note?: string; requestId?: string }
  | { action: 'adjust_points'; points: number; note?: string; requestId?: string };

export const api = {
  async session(): Promise<Session> {
    const session = await request<Session>('GET', '/auth/session');
    csrf = session.csrf;
    return session;
  },
  logout: () => request<void>('POST', '/auth/logout'),
  overview: (month?: string) => request<{ report: MonthlyReport; trend: TrendPoint[] }>('GET', withQuery('/v1/overview', { month, months: 12 })),
  report: (month: string) => request<MonthlyReport>('GET', `/v1/reports/${encodeURIComponent(month)}`),
  fans: (query: FanQuery) => request<{ items: FanView[]; nextCursor: string | null }>('GET', withQuery('/v1/fans', { ...query })),
  fansExportUrl: (query: FanQuery) => withQuery('/v1/fans/export', { format: 'csv', layer: query.layer, level: query.level, tag: query.tag }),
  fan: (id: string) => request<FanView>('GET', `/v1/fans/${encodeURIComponent(id)}`),
  timeline: (id: string, before?: number) => request<{ items: TimelineItem[]; nextBefore: number | null }>('GET', withQuery(`/v1/fans/${encodeURIComponent(id)}/timeline`, { limit: 50, before })),
  act: (id: string, action: ActionRequest) => request<{ status: string; fan: FanView }>('POST', `/v1/fans/${encodeURIComponent(id)}/actions`, action),
  referral: (id: string) => request<ReferralView>('GET', `/v1/referrals/${encodeURIComponent(id)}`),
  movement: (month?: string) => request<Movement>('GET', withQuery('/v1/movement', { month })),
  leaderboard: () => request<{ period: string; entries: LeaderboardEntry[] }>('GET', '/v1/referral-leaderboard'),
  analytics: () => request<FissionAnalytics>('GET', '/v1/referral-analytics'),
  compliance: () => request<ComplianceReport>('GET', '/v1/referral-compliance'),
  tree: (fan: string) => request<{ root: string; people: number; levels: number; truncated: boolean; tree: TreeNode }>('GET', `/v1/referral-trees/${encodeURIComponent(fan)}`),
  reviews: () => request<ReviewItem[]>('GET', '/v1/referral-reviews'),
  resolveReview: (referee: string, decision: 'release' | 'void') => request<unknown>('POST', `/v1/referral-reviews/${encodeURIComponent(referee)}`, { decision }),
  program: () => request<{ version: string; yaml: string; activatedAt: string | null }>('GET', '/v1/program'),
  programHistory: () => request<{ items: { version: string; activatedAt: string }[] }>('GET', '/v1/program/history'),
  programDiff: (yaml: string) => request<{ ok: boolean; version: string | null; issues: ProgramIssue[]; changes: ProgramChange[] }>('POST', '/v1/program/diff', { yaml }),
  activateProgram: (yaml: string) => request<{ version: string; changed: boolean }>('POST', '/v1/program/activate', { yaml }),
};
