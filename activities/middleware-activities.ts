import { Context } from '@temporalio/activity';
import type { AppConfig } from '../src/config/app-config.js';
import type { MiddlewareName, NodeLayout } from '../src/config/layout.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { Logger } from '../src/logger.js';
import { createMiddlewareAdapter, type ComponentName } from '../src/middleware/index.js';
import type {
  ClusterView,
  DataResult,
  InSyncReport,
  MiddlewareInspection,
  OperationName,
  ServerStatus,
} from '../src/middleware/kit/index.js';
import type { Supervision } from '../src/agent/supervision.js';
import { describeActivity, keepHeartbeating } from './interceptor.js';

/**
 * Data components that are no server of this node: always there (no `middleware.enabled` entry)
 * and never supervised.
 */
const dataOnly: readonly ComponentName[] = ['controller', 'bundles'];

export interface MiddlewareActivityDeps {
  address: string;
  layout: NodeLayout;
  config: AppConfig;
  logger: Logger;
  /**
   * The agent's record of servers a runbook holds (docs/design.md, "Self-healing node"): every
   * operation runs through it, so the supervisor neither restarts a server a runbook stopped nor
   * races one it is starting.
   */
  supervision?: Supervision;
}

export interface MiddlewareOperationInput {
  component: ComponentName;
  operation: OperationName;
  /** The membership the operation works towards (start, create, join, rejoin, decommission). */
  cluster?: ClusterView;
  /** decommissionCluster: the members that leave. */
  leaving?: string[];
  /** stopServer: skip the graceful stop. */
  force?: boolean;
}

export interface MiddlewareOperationResult {
  component: ComponentName;
  operation: OperationName;
  node: string;
  status?: ServerStatus;
  data?: DataResult;
  inspection?: MiddlewareInspection;
  inSync?: InSyncReport;
}

/** Activities that run the old guard service's MiddlewareService (docs/design.md) on this node. */
export function createMiddlewareActivities(deps: MiddlewareActivityDeps) {
  return {
    /** The middleware this node runs (`middleware.enabled` in its config): a runbook's default. */
    enabledMiddleware(): Promise<string[]> {
      return Promise.resolve([...deps.config.middleware.enabled]);
    },

    /** Runs one operation of one adapter: the adapter's `operations` say what each name does. */
    async middlewareOperation(input: MiddlewareOperationInput): Promise<MiddlewareOperationResult> {
      const ctx = Context.current();
      const where = `${input.operation} of ${input.component} on node ${deps.address}`;
      describeActivity(where);
      if (
        !dataOnly.includes(input.component) &&
        !deps.config.middleware.enabled.includes(input.component as MiddlewareName | 'felix')
      ) {
        throw new ClusterGuardError(
          'InvalidInput',
          `${input.component} is not enabled on this node (middleware.enabled in its config)`,
        );
      }
      let lastDetail: string = input.operation;
      const signal = keepHeartbeating(() => ({ detail: lastDetail }));
      try {
        const adapter = createMiddlewareAdapter(input.component, deps.config, {
          address: deps.address,
          layout: deps.layout,
          logger: deps.logger,
          signal,
          onProgress: (detail) => {
            lastDetail = detail;
            ctx.heartbeat({ detail });
          },
        });
        const operation = Object.hasOwn(adapter.operations, input.operation)
          ? adapter.operations[input.operation]
          : undefined;
        if (!operation) {
          throw new ClusterGuardError(
            'InvalidInput',
            `${input.component} does not support ${input.operation}`,
          );
        }
        deps.logger.info('middleware operation started', {
          component: input.component,
          operation: input.operation,
          attempt: ctx.info.attempt,
        });
        const run = () =>
          operation({ where, cluster: input.cluster, leaving: input.leaving, force: input.force });
        const result =
          deps.supervision && !dataOnly.includes(input.component)
            ? await deps.supervision.runbookOperation(
                input.component,
                input.operation,
                run,
                async () => (await adapter.checkServer()).running,
              )
            : await run();
        deps.logger.info('middleware operation completed', {
          component: input.component,
          operation: input.operation,
        });
        return {
          component: input.component,
          operation: input.operation,
          node: deps.address,
          ...result,
        };
      } catch (err) {
        deps.logger.warn('middleware operation failed', { where, error: (err as Error).message });
        throw err;
      }
    },
  };
}

export type MiddlewareActivities = ReturnType<typeof createMiddlewareActivities>;
