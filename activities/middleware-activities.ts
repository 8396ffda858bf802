import { Context } from '@temporalio/activity';
import type { AppConfig } from '../src/config/app-config.js';
import type { NodeLayout } from '../src/config/layout.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import type { Logger } from '../src/logger.js';
import { createMiddlewareAdapter, type ComponentName } from '../src/middleware/index.js';
import type {
  ClusterView,
  DataResult,
  InSyncReport,
  MiddlewareAdapter,
  MiddlewareInspection,
  MiddlewareOperation,
  ServerStatus,
} from '../src/middleware/types.js';
import { toApplicationFailure } from './failures.js';

export interface MiddlewareActivityDeps {
  address: string;
  layout: NodeLayout;
  config: AppConfig;
  logger: Logger;
}

export interface MiddlewareOperationInput {
  component: ComponentName;
  operation: MiddlewareOperation | 'inspect';
  /** The membership the operation works towards (start, create, join, rejoin, decommission). */
  cluster?: ClusterView;
  /** decommissionCluster: the members that leave. */
  leaving?: string[];
  /** stopServer: skip the graceful stop. */
  force?: boolean;
}

export interface MiddlewareOperationResult {
  component: ComponentName;
  operation: MiddlewareOperation | 'inspect';
  node: string;
  status?: ServerStatus;
  data?: DataResult;
  inspection?: MiddlewareInspection;
  inSync?: InSyncReport;
}

/** How often a long middleware operation heartbeats even when the adapter reports nothing. */
const heartbeatEveryMs = 2000;

/** Activities that run the seed's MiddlewareService (001 §7) on this node. */
export function createMiddlewareActivities(deps: MiddlewareActivityDeps) {
  return {
    /** The middleware this node runs (`middleware.enabled` in its config): a runbook's default. */
    enabledMiddleware(): Promise<string[]> {
      return Promise.resolve([...deps.config.middleware.enabled]);
    },

    async middlewareOperation(input: MiddlewareOperationInput): Promise<MiddlewareOperationResult> {
      const ctx = Context.current();
      const where = `${input.operation} of ${input.component} on node ${deps.address}`;
      if (
        input.component !== 'controller' &&
        !deps.config.middleware.enabled.includes(input.component)
      ) {
        throw toApplicationFailure(
          new ClusterGuardError(
            'InvalidInput',
            `${input.component} is not enabled on this node (middleware.enabled in its config)`,
          ),
          where,
        );
      }
      let lastDetail: string = input.operation;
      const beat = setInterval(() => ctx.heartbeat({ detail: lastDetail }), heartbeatEveryMs);
      try {
        const adapter: MiddlewareAdapter = createMiddlewareAdapter(input.component, deps.config, {
          address: deps.address,
          layout: deps.layout,
          logger: deps.logger,
          signal: ctx.cancellationSignal,
          onProgress: (detail) => {
            lastDetail = detail;
            ctx.heartbeat({ detail });
          },
        });
        deps.logger.info('middleware operation started', {
          component: input.component,
          operation: input.operation,
          attempt: ctx.info.attempt,
        });
        const result = await run(adapter, input, where);
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
        throw toApplicationFailure(err, where);
      } finally {
        clearInterval(beat);
      }
    },
  };
}

async function run(
  adapter: MiddlewareAdapter,
  input: MiddlewareOperationInput,
  where: string,
): Promise<{
  status?: ServerStatus;
  data?: DataResult;
  inspection?: MiddlewareInspection;
  inSync?: InSyncReport;
}> {
  const needCluster = (): ClusterView => {
    if (!input.cluster)
      throw new ClusterGuardError('InvalidInput', `${where} needs the cluster membership`);
    return input.cluster;
  };
  const unsupported = () =>
    new ClusterGuardError('InvalidInput', `${input.component} does not support ${input.operation}`);
  switch (input.operation) {
    case 'startServer':
      return { status: await adapter.startServer(input.cluster) };
    case 'stopServer':
      await adapter.stopServer({ force: input.force });
      return { status: await adapter.checkServer() };
    case 'checkServer':
      return { status: await adapter.checkServer() };
    case 'createCluster':
      if (!adapter.createCluster) throw unsupported();
      await adapter.createCluster(needCluster());
      return { status: await adapter.checkServer() };
    case 'prepareClusterConfig':
      if (!adapter.prepareClusterConfig) throw unsupported();
      await adapter.prepareClusterConfig(needCluster());
      return {};
    case 'inspect':
      if (!adapter.inspect) throw unsupported();
      return { inspection: await adapter.inspect() };
    case 'joinCluster':
      if (!adapter.joinCluster) throw unsupported();
      await adapter.joinCluster(needCluster());
      return { status: await adapter.checkServer() };
    case 'rejoinCluster':
      if (!adapter.rejoinCluster) throw unsupported();
      await adapter.rejoinCluster(needCluster());
      return { status: await adapter.checkServer() };
    case 'decommissionCluster':
      if (!adapter.decommissionCluster) throw unsupported();
      await adapter.decommissionCluster(needCluster(), input.leaving ?? []);
      return {};
    case 'exportData':
      if (!adapter.exportData) throw unsupported();
      return { data: await adapter.exportData() };
    case 'importData':
      if (!adapter.importData) throw unsupported();
      return { data: await adapter.importData() };
    case 'backupData':
      if (!adapter.backupData) throw unsupported();
      return { data: await adapter.backupData() };
    case 'restoreData':
      if (!adapter.restoreData) throw unsupported();
      return { data: await adapter.restoreData() };
    case 'checkInSync':
      // The application's own data is not replicated by a middleware of ours.
      if (!adapter.checkInSync)
        return { inSync: { inSync: true, detail: `${input.component}: nothing replicated` } };
      return { inSync: await adapter.checkInSync() };
  }
}

export type MiddlewareActivities = ReturnType<typeof createMiddlewareActivities>;
