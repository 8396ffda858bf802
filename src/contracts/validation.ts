import { ApplicationFailure } from '@temporalio/common';
import type { z } from 'zod';
import type { ErrorType } from './errors.js';

/** `nodes.2: expected an IPv4 address …; clusterId: …` — one line per problem. */
export function describeZodError(error: z.ZodError): string {
  return error.issues
    .map((issue) => `${issue.path.length ? issue.path.join('.') : '(input)'}: ${issue.message}`)
    .join('; ');
}

/**
 * Validates a runbook input (or update argument). A bad input is a permanent failure: retrying
 * the same input cannot fix it, so it fails the workflow at once with a message naming each
 * offending field.
 */
export function parseInput<S extends z.ZodType>(
  schema: S,
  raw: unknown,
  what: string,
): z.output<S> {
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const type: ErrorType = 'InvalidInput';
    throw ApplicationFailure.nonRetryable(
      `invalid ${what} input: ${describeZodError(parsed.error)}. Fix the input and start the runbook again.`,
      type,
    );
  }
  return parsed.data;
}
