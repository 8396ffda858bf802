import { ApplicationFailure } from '@temporalio/common';
import { ClusterGuardError, nonRetryableErrorTypes } from '../src/contracts/errors.js';

/**
 * A ClusterGuardError becomes an ApplicationFailure of the same type; permanent types are
 * non-retryable, so the server does not retry what retrying cannot fix. Anything else is
 * rethrown as it is and retried by the activity's policy.
 */
export function toApplicationFailure(err: unknown, where: string): unknown {
  if (err instanceof ClusterGuardError) {
    const message = `${where}: ${err.message}`;
    return nonRetryableErrorTypes.includes(err.type)
      ? ApplicationFailure.nonRetryable(message, err.type)
      : ApplicationFailure.retryable(message, err.type);
  }
  return err;
}
