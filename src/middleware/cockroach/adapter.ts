import {
  runningPid,
  waitInSync,
  withOperations,
  type AdapterDeps,
  type ClusterView,
  type ClusteredAdapter,
} from '../kit/index.js';
import { createCockroachData } from './data.js';
import { createCockroachDecommission } from './decommission.js';
import { createCockroachMembership } from './membership.js';
import type { CockroachOptions } from './options.js';
import type { CockroachNodeStatus } from './parse.js';
import { createCockroachServer } from './server.js';

/** The old guard service's MiddlewareService for CockroachDB, plus what runbooks need beyond it. */
export interface CockroachAdapter extends ClusteredAdapter {
  readonly name: 'cockroach';
  /** `cockroach node status --format=json [--decommission]`, asked of this node. */
  nodeStatus(options?: {
    decommission?: boolean;
    timeoutMs?: number;
  }): Promise<CockroachNodeStatus[]>;
  /**
   * The master's part of createCluster: the CA (created once, then reused) and, for every member,
   * `ca.crt`, `node.crt/key` and `client.root.crt/key` in `cluster-config/<address>/cockroach/certs`.
   */
  generateClusterConfig(cluster: ClusterView): Promise<void>;
  /** Installs `cluster-config/<self>/cockroach/certs` as this node's certificates. */
  applyClusterConfig(cluster: ClusterView): Promise<void>;
  /** Creates the configured databases and users and sets their passwords; idempotent. */
  provisionDatabases(): Promise<void>;
}

export function createCockroachAdapter(deps: AdapterDeps<CockroachOptions>): CockroachAdapter {
  const node = createCockroachServer(deps);
  const membership = createCockroachMembership(node);
  const {
    address,
    opts,
    nodeStatus,
    readMembership,
    writeMembership,
    launch,
    stopServer,
    checkServer,
  } = node;
  const {
    createCluster,
    generateClusterConfig,
    applyClusterConfig,
    joinCluster,
    rejoinCluster,
    provision,
    rangesInSync,
  } = membership;
  const { decommissionCluster } = createCockroachDecommission(node);
  const { backupInto, restoreFrom } = createCockroachData(node, membership);

  return withOperations<Omit<CockroachAdapter, 'operations'>>({
    name: 'cockroach',
    startServer: async (cluster?: ClusterView) => {
      if (cluster) await writeMembership(cluster.nodes);
      const nodes = cluster?.nodes ?? (await readMembership()) ?? [address];
      return launch('startServer', nodes, { kind: 'live' });
    },
    stopServer,
    checkServer,
    processRunning: async () => (await runningPid(node.processSpec([address]))) !== undefined,
    createCluster,
    // Certificates for every member, signed by the CA the master keeps; the server is untouched.
    prepareClusterConfig: generateClusterConfig,
    async inspect() {
      const rows = await nodeStatus({ decommission: true });
      return {
        liveMembers: rows
          .filter((r) => r.isLive && (r.membership ?? 'active') === 'active' && r.host)
          .map((r) => r.host ?? ''),
      };
    },
    joinCluster,
    rejoinCluster,
    decommissionCluster,
    checkInSync: () =>
      waitInSync(rangesInSync, {
        timeoutMs: opts('checkInSync').timeoutMs,
        signal: deps.signal,
        onProgress: (detail) => deps.onProgress?.(detail),
      }),
    backupData: () => backupInto('backup'),
    restoreData: () => restoreFrom('restore'),
    exportData: () => backupInto('export'),
    importData: () => restoreFrom('import'),
    nodeStatus,
    generateClusterConfig,
    applyClusterConfig,
    provisionDatabases: () => provision('all'),
  });
}
