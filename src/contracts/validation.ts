import { ApplicationFailure } from '@temporalio/common';
import * as zod from 'zod';
import type { z } from 'zod';
import {
  ClusterGuardError,
  InvalidConfigError,
  InvalidInputError,
  type ErrorType,
} from './errors.js';

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

/**
 * Outside workflows: `value` as `schema` parses it, else a ClusterGuardError of `type` (by
 * default InvalidInput) saying `invalid <what>: ` and each problem, so a typo is reported
 * before anything is sent.
 */
export function checked<S extends z.ZodType>(
  schema: S,
  value: unknown,
  what: string,
  type: ErrorType = 'InvalidInput',
): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const message = `invalid ${what}: ${describeZodError(parsed.error)}`;
    throw type === 'InvalidInput'
      ? new InvalidInputError(message)
      : type === 'InvalidConfig'
        ? new InvalidConfigError(message)
        : new ClusterGuardError(type, message);
  }
  return parsed.data;
}

/**
 * A schema built on its first use and kept: every workflow context loads every contract, and
 * building the schemas of runbooks it never runs was a large share of a first workflow task.
 * Types, parsing and error messages are those of the schema `build` returns.
 */
export function lazySchema<T extends z.ZodType>(build: () => T): z.ZodLazy<T> {
  return zod.lazy(build);
}
