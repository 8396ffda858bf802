import { readFolderFiles } from './config.js';
import {
  waitInSync,
  withOperations,
  writeFiles,
  type AdapterDeps,
  type MiddlewareAdapter,
} from '../kit/index.js';
import { applyZooKeeperConfig, generateZooKeeperConfig, type ZooKeeperOptions } from './config.js';
import { readDump, writeDump } from './data.js';
import { decommissionCluster, inSyncNow, joinEnsemble } from './ensemble.js';
import { createZooKeeperServer } from './server.js';

/** The ZooKeeper adapter of one node: its server, its part in the ensemble, its data. */
export function createZooKeeperAdapter(deps: AdapterDeps<ZooKeeperOptions>): MiddlewareAdapter {
  const zk = createZooKeeperServer(deps);
  const {
    address,
    layout,
    options,
    opts,
    hasConfig,
    configuredVoters,
    launch,
    checkServer,
    processRunning,
    stopServer,
  } = zk;

  return withOperations({
    name: 'zookeeper',

    generateConfig: (cluster, node) => generateZooKeeperConfig(cluster, node, options),

    async startServer(cluster) {
      // The old guard service (docs/design.md): a single node is set up without asking a master (itself) for its files. An
      // existing configuration is kept: ZooKeeper rewrites it after reconfigurations.
      if (cluster && !(await hasConfig())) {
        await applyZooKeeperConfig(layout, generateZooKeeperConfig(cluster, address, options), {
          wipeData: false,
          clusterUuid: cluster.clusterUuid,
        });
      }
      await launch('startServer', true);
      return checkServer();
    },

    stopServer,
    checkServer,
    processRunning,
    checkInSync: () =>
      waitInSync(() => inSyncNow(zk), {
        timeoutMs: opts('checkInSync').timeoutMs,
        signal: deps.signal,
        onProgress: (detail) => deps.onProgress?.(detail),
      }),

    async prepareClusterConfig(cluster) {
      for (const node of cluster.nodes) {
        await writeFiles(
          layout.clusterConfigFor(node, 'zookeeper'),
          generateZooKeeperConfig(cluster, node, options),
        );
      }
    },

    async createCluster(cluster) {
      for (const node of cluster.nodes) {
        await writeFiles(
          layout.clusterConfigFor(node, 'zookeeper'),
          generateZooKeeperConfig(cluster, node, options),
        );
      }
      // ZooKeeper reads zoo.cfg only at start.
      await stopServer();
      await applyZooKeeperConfig(
        layout,
        await readFolderFiles(layout.clusterConfigFor(address, 'zookeeper')),
        { wipeData: false, clusterUuid: cluster.clusterUuid },
      );
      // The master of a new ensemble cannot have a quorum before a majority has joined: it is
      // started when it answers; a single member must also lead.
      await launch('createCluster', (await configuredVoters()) === 1);
    },

    async joinCluster(cluster) {
      await joinEnsemble(zk, 'joinCluster', cluster);
    },

    async rejoinCluster(cluster) {
      await joinEnsemble(zk, 'rejoinCluster', cluster);
    },

    decommissionCluster: (cluster, leaving) => decommissionCluster(zk, cluster, leaving),

    exportData: () => writeDump(zk, 'export'),
    backupData: () => writeDump(zk, 'backup'),
    // Import merges into what the ensemble holds; restore makes it exactly the backup.
    importData: () => readDump(zk, 'import', false),
    restoreData: () => readDump(zk, 'restore', true),
  });
}
