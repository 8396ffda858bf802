import { readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  replaceFolder,
  runningPid,
  waitInSync,
  withOperations,
  writeFiles,
  type AdapterDeps,
  type ClusterView,
  type ClusteredAdapter,
} from '../kit/index.js';
import type { KafkaOptions } from './options.js';
import { kafkaConfigFiles, generateKafkaConfig } from './config.js';
import type { KafkaQuorum } from './quorum.js';
import { createKafkaServer } from './server.js';
import { createKafkaClients } from './clients.js';
import { createKafkaLifecycle } from './lifecycle.js';
import { createKafkaRebalance } from './rebalance.js';
import { createKafkaMembership } from './membership.js';
import { createKafkaDump } from './dump.js';
import { createKafkaLoad } from './load.js';

export interface KafkaAdapter extends ClusteredAdapter {
  readonly name: 'kafka';
  generateConfig(cluster: ClusterView, address: string): Record<string, string>;
  /** The controller quorum as the cluster reports it (one `kafka-metadata-quorum` run). */
  describeQuorum(): Promise<KafkaQuorum>;
}

/** The Kafka adapter of one node: its server, its part in the cluster, the cluster's data. */
export function createKafkaAdapter(deps: AdapterDeps<KafkaOptions>): KafkaAdapter {
  // Each layer builds on the ones before it: files and process, tools and clients, lifecycle,
  // quorum and replicas, then what the operations below need of them.
  const server = createKafkaServer(deps);
  const reach = { ...server, ...createKafkaClients(server) };
  const base = { ...reach, ...createKafkaLifecycle(reach) };
  const cluster = { ...base, ...createKafkaRebalance(base) };
  const k = {
    ...cluster,
    ...createKafkaMembership(cluster),
    ...createKafkaDump(base),
    ...createKafkaLoad(base),
  };
  const {
    options,
    address,
    layout,
    confFolder,
    who,
    spec,
    fail,
    opts,
    progress,
    deadlineFor,
    readManifest,
    controllersOf,
    describeQuorumVia,
    brokersOf,
    withAdmin,
    allTopics,
    status,
    start,
    stop,
    ensureTopics,
    inSyncNow,
    join,
    decommission,
    dump,
    load,
  } = k;

  return withOperations<Omit<KafkaAdapter, 'operations'>>({
    name: 'kafka',
    generateConfig: (cluster, node) => generateKafkaConfig(cluster, node, options),

    startServer: () => start('startServer'),
    stopServer: (o) => stop(o?.force),
    checkServer: () => status(),
    processRunning: async () => (await runningPid(spec)) !== undefined,
    checkInSync: () =>
      waitInSync(inSyncNow, {
        timeoutMs: opts('checkInSync').timeoutMs,
        signal: deps.signal,
        onProgress: progress,
      }),

    async createCluster(cluster) {
      if (cluster.nodes[0] !== address)
        throw fail(
          'InvalidInput',
          `${who} is not the master of [${cluster.nodes.join(', ')}]: createCluster runs on the master (${cluster.nodes[0]}); other members join`,
        );
      for (const node of cluster.nodes)
        await writeFiles(
          layout.clusterConfigFor(node, 'kafka'),
          generateKafkaConfig(cluster, node, options),
        );
      const own = layout.clusterConfigFor(address, 'kafka');
      const current = async (folder: string) =>
        Promise.all(
          Object.values(kafkaConfigFiles).map((f) =>
            readFile(path.join(folder, f), 'utf8').catch(() => undefined),
          ),
        );
      const [next, now] = await Promise.all([current(own), current(confFolder)]);
      // A retried createCluster must not bounce a server that already runs this configuration.
      const unchanged = next.every((text, i) => text !== undefined && text === now[i]);
      if (!(unchanged && (await runningPid(spec)))) {
        await stop();
        await replaceFolder(own, confFolder);
      }
      // The old guard service (docs/design.md): the master keeps its data and starts with the new membership.
      const m = await readManifest();
      await start('createCluster');
      await ensureTopics(m, deadlineFor('createCluster'));
    },
    async prepareClusterConfig(cluster) {
      for (const node of cluster.nodes)
        await writeFiles(
          layout.clusterConfigFor(node, 'kafka'),
          generateKafkaConfig(cluster, node, options),
        );
    },

    async inspect() {
      const m = await readManifest();
      return withAdmin(brokersOf(m.nodes, m), async (admin) => {
        const [cluster, topics] = await Promise.all([admin.describeCluster(), allTopics(admin)]);
        return {
          maxReplicationFactor: Math.max(
            0,
            ...topics.flatMap((t) => t.partitions.map((p) => p.replicas.length)),
          ),
          liveMembers: cluster.brokers.map((b) => b.host),
        };
      });
    },

    joinCluster: () => join('joinCluster'),
    rejoinCluster: () => join('rejoinCluster'),
    decommissionCluster: decommission,

    exportData: () => dump('export'),
    importData: () => load('import', false),
    backupData: () => dump('backup'),
    restoreData: () => load('restore', true),

    async describeQuorum() {
      const m = await readManifest();
      return describeQuorumVia(controllersOf(m.nodes, m));
    },
  });
}
