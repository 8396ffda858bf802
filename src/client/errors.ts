import {
  NamespaceNotFoundError,
  QueryNotRegisteredError,
  ScheduleNotFoundError,
  WorkflowExecutionAlreadyStartedError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';
import { ClusterGuardError, type ErrorType } from '../contracts/errors.js';

/**
 * One error type per way a client call fails. clusterguard's own refusals are
 * `ClusterGuardError`s whose `type` tells them apart (and a subclass per type a caller is likely
 * to catch); the rest are the SDK's, re-exported so a service needs no second import.
 */
export {
  ClusterBusyError,
  ClusterGuardError,
  InvalidConfigError,
  InvalidInputError,
  errorTypes,
  type ErrorType,
} from '../contracts/errors.js';
export {
  NamespaceNotFoundError,
  QueryNotRegisteredError,
  ScheduleNotFoundError,
  WorkflowFailedError,
  WorkflowNotFoundError,
  WorkflowUpdateFailedError,
} from '@temporalio/client';

/** What failed, in the words a CLI or a service's log would use. */
export type FailureKind =
  | ErrorType
  | 'NotFound'
  | 'UpdateRejected'
  | 'Unavailable'
  | 'InvalidArgument'
  | 'FailedPrecondition'
  | 'Error';

function grpcCode(err: unknown): number | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'number') return code;
  }
  return undefined;
}

/** A failure's message: a failed workflow's own cause, not Temporal's wrapper around it. */
export function failureMessage(err: unknown): string {
  return err instanceof WorkflowFailedError
    ? (err.cause?.message ?? err.message)
    : (err as Error).message;
}

/** The kind of a failure thrown by any client function. */
export function failureKind(err: unknown): FailureKind {
  if (err instanceof ClusterGuardError) return err.type;
  if (
    err instanceof WorkflowNotFoundError ||
    err instanceof ScheduleNotFoundError ||
    err instanceof NamespaceNotFoundError ||
    err instanceof QueryNotRegisteredError
  ) {
    return 'NotFound';
  }
  if (err instanceof WorkflowUpdateFailedError) return 'UpdateRejected';
  if (err instanceof WorkflowExecutionAlreadyStartedError) return 'ClusterBusy';
  // gRPC status codes: UNAVAILABLE, DEADLINE_EXCEEDED; NOT_FOUND; INVALID_ARGUMENT; FAILED_PRECONDITION.
  switch (grpcCode(err)) {
    case 14:
    case 4:
      return 'Unavailable';
    case 5:
      return 'NotFound';
    case 3:
      return 'InvalidArgument';
    case 9:
      return 'FailedPrecondition';
  }
  return 'Error';
}
