/**
 * RFC 7807 problem details: every error the API returns is `application/problem+json` with a
 * stable `code` that clients switch on; `detail` is for people; `issues` lists every bad field.
 */
import type { Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';

export interface ProblemIssue {
  /** Where: a JSON path such as `events[3].props.amount`, or a query parameter. */
  field: string;
  reason: string;
}

export const PROBLEM_CODES = {
  BAD_REQUEST: 'The request is malformed or a field is invalid.',
  MALFORMED_JSON: 'The body is not valid JSON.',
  UNAUTHORIZED: 'No valid API key was presented.',
  FORBIDDEN: 'The key lacks the scope this route needs.',
  CSRF_FAILED: 'A state-changing request with a session cookie lacks its CSRF token, or came from another site.',
  NOT_FOUND: 'No such resource in this workspace.',
  CONFLICT: 'The request contradicts one already recorded under the same id.',
  PAYLOAD_TOO_LARGE: 'The body or the batch is larger than allowed.',
  RATE_LIMITED: 'Too many requests for this key; retry after the given seconds.',
  INVALID_PROGRAM: 'The program does not validate.',
  INSUFFICIENT_POINTS: "The fan's points balance is below the item's price.",
  OUT_OF_STOCK: 'Every unit of the item is redeemed.',
  NOT_ELIGIBLE: "The fan's level or the item's per-fan limit does not allow it.",
  INTERNAL: 'An unexpected error; the server logged it.',
  UNAVAILABLE: 'The store is not reachable.',
} as const;

export type ProblemCode = keyof typeof PROBLEM_CODES;

export class ApiProblem extends Error {
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ProblemCode,
    readonly detail?: string,
    readonly issues?: ProblemIssue[],
    readonly headers: Record<string, string> = {},
  ) {
    super(detail ?? PROBLEM_CODES[code]);
  }
}

export function problemBody(problem: ApiProblem, instance: string): Record<string, unknown> {
  return {
    type: `https://fanflow.dev/problems/${problem.code.toLowerCase().replace(/_/g, '-')}`,
    title: PROBLEM_CODES[problem.code],
    status: problem.status,
    code: problem.code,
    ...(problem.detail !== undefined ? { detail: problem.detail } : {}),
    ...(problem.issues !== undefined ? { issues: problem.issues } : {}),
    instance,
  };
}

export function sendProblem(c: Context, problem: ApiProblem): Response {
  for (const [name, value] of Object.entries(problem.headers)) c.header(name, value);
  return c.body(JSON.stringify(problemBody(problem, c.req.path)), problem.status, { 'Content-Type': 'application/problem+json' });
}
