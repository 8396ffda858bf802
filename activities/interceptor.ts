import { AsyncLocalStorage } from 'node:async_hooks';
import { Context } from '@temporalio/activity';
import { ApplicationFailure } from '@temporalio/common';
import type {
  ActivityExecuteInput,
  ActivityInboundCallsInterceptor,
  ActivityInterceptorsFactory,
  Next,
} from '@temporalio/worker';
import { ClusterGuardError, nonRetryableErrorTypes } from '../src/contracts/errors.js';

/** What one running activity told the interceptor: its failure prefix, its heartbeat timer. */
interface Scope {
  where?: string;
  timer?: ReturnType<typeof setInterval>;
}

const scopes = new AsyncLocalStorage<Scope>();

function currentScope(what: string): Scope {
  const scope = scopes.getStore();
  // Without the interceptor nothing would convert the failure or stop the timer.
  if (!scope) throw new Error(`${what} needs the activity interceptor (activityInterceptors)`);
  return scope;
}

/**
 * Names what the running activity does, on which node: a ClusterGuardError it throws reaches
 * the workflow as "<where>: <message>", so an operator sees what failed where.
 */
export function describeActivity(where: string): void {
  currentScope('describeActivity').where = where;
}

/**
 * Heartbeats `details()` every `everyMs` until the activity ends, however it ends: for steps
 * that wait on processes, disks or peers longer than their heartbeat timeout. Heartbeats also
 * carry a cancellation back, so the returned signal fires when the workflow cancels the step.
 */
export function keepHeartbeating(details: () => unknown, everyMs = 2000): AbortSignal {
  const scope = currentScope('keepHeartbeating');
  const ctx = Context.current();
  if (scope.timer) clearInterval(scope.timer);
  scope.timer = setInterval(() => ctx.heartbeat(details()), everyMs);
  return ctx.cancellationSignal;
}

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

class ClusterGuardInbound implements ActivityInboundCallsInterceptor {
  constructor(private readonly node: string | undefined) {}

  async execute(
    input: ActivityExecuteInput,
    next: Next<ActivityInboundCallsInterceptor, 'execute'>,
  ): Promise<unknown> {
    const scope: Scope = {};
    try {
      return await scopes.run(scope, () => next(input));
    } catch (err) {
      const type = Context.current().info.activityType;
      throw toApplicationFailure(
        err,
        scope.where ?? (this.node ? `${type} on node ${this.node}` : type),
      );
    } finally {
      if (scope.timer) clearInterval(scope.timer);
    }
  }
}

/**
 * The interceptor of every clusterguard worker (node agents, orchestrator) and of tests that
 * run activities directly: failure conversion and periodic heartbeats live here, once.
 * `node`: the agent's address, for failures of activities that did not describe themselves.
 */
export function activityInterceptors(node?: string): ActivityInterceptorsFactory[] {
  const inbound = new ClusterGuardInbound(node);
  return [() => ({ inbound })];
}
