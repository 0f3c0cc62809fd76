/** Bad usage or bad input: the CLI prints the message (no stack) and exits with code 2. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** A fan id that the store does not know. */
export class NotFoundError extends UsageError {}
