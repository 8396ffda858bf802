import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import { requestReconcile } from '../src/client/guardian.js';
import { standaloneAddress, type ClusterFile } from '../src/contracts/cluster-file.js';
import { guardianWorkflowId } from '../src/contracts/guardian.js';

/** The old guard service (docs/design.md): a member whose cluster.json says its configuration is not in force yet. */
export function restartedNotReady(file: ClusterFile): boolean {
  const { nodes, clusterConfigReady, nodeConfigReady } = file.cluster;
  return (
    nodes.length > 1 &&
    !nodes.includes(standaloneAddress) &&
    !(clusterConfigReady && nodeConfigReady)
  );
}

export interface ReconcileHookDeps {
  clusterId: string;
  address: string;
  loadClusterFile: () => Promise<ClusterFile>;
  connect: () => Promise<Client>;
  logger: {
    info(message: string, fields?: Record<string, unknown>): void;
    warn(message: string, fields?: Record<string, unknown>): void;
  };
}

/**
 * The node agent's start-up hook (docs/design.md, "a restarted node"): a member that starts on a
 * cluster.json that is not ready asks the guardian to reconcile instead of acting alone. Never
 * throws: a guardian that is not running, or a Temporal that does not answer, is logged only.
 */
export async function askGuardianIfNotReady(
  deps: ReconcileHookDeps,
): Promise<'asked' | 'ready' | 'no-guardian' | 'failed'> {
  let client: Client | undefined;
  try {
    const file = await deps.loadClusterFile();
    if (!restartedNotReady(file)) return 'ready';
    const reason =
      `the agent of ${deps.address} started on a cluster.json that is not ready ` +
      `(clusterConfigReady ${file.cluster.clusterConfigReady}, nodeConfigReady ${file.cluster.nodeConfigReady})`;
    client = await deps.connect();
    try {
      await requestReconcile(client, deps.clusterId, { node: deps.address, reason });
    } catch (err) {
      if (!(err instanceof WorkflowNotFoundError)) throw err;
      deps.logger.warn(
        `${reason}, and no guardian runs as ${guardianWorkflowId(deps.clusterId)}: start one ` +
          '(clusterguard guardian start) or rejoin this node with rejoinNode',
      );
      return 'no-guardian';
    }
    deps.logger.info(`${reason}: asked ${guardianWorkflowId(deps.clusterId)} to reconcile`);
    return 'asked';
  } catch (err) {
    deps.logger.warn('could not ask the guardian to reconcile', {
      error: (err as Error).message,
    });
    return 'failed';
  } finally {
    await client?.connection.close().catch(() => undefined);
  }
}
