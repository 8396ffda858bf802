import { ClusterGuardError } from '../../contracts/errors.js';
import type {
  AdapterMethods,
  Capabilities,
  ClusterView,
  DataResult,
  MiddlewareAdapter,
  OperationOutcome,
  OperationRequest,
} from './types.js';

function membershipOf(request: OperationRequest): ClusterView {
  if (!request.cluster)
    throw new ClusterGuardError('InvalidInput', `${request.where} needs the cluster membership`);
  return request.cluster;
}

/**
 * Gives an adapter its capabilities: each operation it implements, under the name a runbook
 * step uses, with what the step reports (membership operations end with the server's status).
 */
export function withOperations<A extends AdapterMethods>(adapter: A): A & MiddlewareAdapter {
  const status = async (): Promise<OperationOutcome> => ({ status: await adapter.checkServer() });
  const change = (run: ((cluster: ClusterView) => Promise<void>) | undefined, report: boolean) =>
    run &&
    (async (request: OperationRequest) => {
      await run(membershipOf(request));
      return report ? status() : {};
    });
  const data = (run: (() => Promise<DataResult>) | undefined) =>
    run && (async () => ({ data: await run() }));
  const operations: Capabilities = {
    startServer: async (request) => ({ status: await adapter.startServer(request.cluster) }),
    stopServer: async (request) => {
      await adapter.stopServer({ force: request.force });
      return status();
    },
    checkServer: status,
    createCluster: change(adapter.createCluster, true),
    prepareClusterConfig: change(adapter.prepareClusterConfig, false),
    joinCluster: change(adapter.joinCluster, true),
    rejoinCluster: change(adapter.rejoinCluster, true),
    decommissionCluster:
      adapter.decommissionCluster &&
      (async (request) => {
        await adapter.decommissionCluster?.(membershipOf(request), request.leaving ?? []);
        return {};
      }),
    inspect: adapter.inspect && (async () => ({ inspection: await adapter.inspect?.() })),
    exportData: data(adapter.exportData),
    importData: data(adapter.importData),
    backupData: data(adapter.backupData),
    restoreData: data(adapter.restoreData),
    // The application's own data is not replicated by a middleware of ours.
    checkInSync: async () => ({
      inSync: adapter.checkInSync
        ? await adapter.checkInSync()
        : { inSync: true, detail: `${adapter.name}: nothing replicated` },
    }),
  };
  return { ...adapter, operations };
}
