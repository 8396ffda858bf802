import path from 'node:path';
import { bundleRoutes } from '../agent/bundle-routes.js';
import type { AgentRoutes } from '../agent/server.js';
import type { ClientTls } from '../agent/tls.js';
import type { AppConfig } from '../config/app-config.js';
import type { ClusterStore } from '../config/cluster-store.js';
import type { NodeLayout } from '../config/layout.js';
import type { BundleMeta } from '../contracts/bundles.js';
import type { Logger } from '../logger.js';
import { createEventPublisher, type EventPublisher } from '../events/publisher.js';
import {
  felixOf,
  frameworkDeployer,
  resumeFramework,
  type FrameworkContext,
  type FrameworkDeployer,
} from './framework.js';
import { bundleAvailableEvent, legacyAnnouncer } from './legacy-announcement.js';
import { BundleStore, InstalledStateFile } from './store.js';
import { nodeBundles } from './view.js';
import type { FelixListing } from '../middleware/felix/client.js';

export type HealthCheckConfig = AppConfig['bundles']['healthChecks'][string];

/** What the bundle activities of one node work with (built here from the agent's config). */
export interface BundleActivityDeps {
  /** This node. */
  address: string;
  store: BundleStore;
  state: InstalledStateFile;
  /** The folder the OSGi runtime watches; `<symbolicName>.jar` per bundle. */
  deployFolder: string;
  /**
   * Set when the node runs Apache Felix (`middleware.enabled` has `felix`): bundles are installed
   * in the running framework and verified there instead of being put in the deploy folder.
   */
  framework?: (context: FrameworkContext) => FrameworkDeployer;
  installCommand?: string[];
  healthChecks: Record<string, HealthCheckConfig>;
  /** The cluster token, for other agents' `GET /v1/bundles/<sha256>`. */
  token: string;
  /** Every agent of a cluster listens on the same port. */
  agentPort: number;
  /** Set when the agents serve HTTPS (`agent.tls`): trust and client certificate. */
  agentTls?: ClientTls;
  logger: Logger;
}

/** What `createBundleViewActivities` (activities/bundle-view-activities.ts) needs. */
export interface BundleViewActivityDeps {
  address: string;
  state: InstalledStateFile;
  /** With Felix: the framework's own listing. */
  listFramework?: () => Promise<FelixListing>;
  clusterStore: ClusterStore;
  zooKeeperClientPort: number;
  /** `zookeeper` is in `middleware.enabled`: the desired set has somewhere to live. */
  zooKeeper: boolean;
  logger: Logger;
}

export interface AgentBundles {
  /** For `createBundleActivities` (activities/bundle-activities.ts), which the worker registers. */
  activityDeps: BundleActivityDeps;
  /** For `createBundleViewActivities`, which the worker registers too. */
  viewActivityDeps: BundleViewActivityDeps;
  routes: AgentRoutes;
  /** Publishes what it can of pending announcements; the rest stays spooled. */
  close(): Promise<void>;
}

/**
 * Everything a node agent needs for bundles: the store and installed state under the node's
 * root, what the activities need, the HTTP routes, and the `bundle.available` announcement, which the
 * agent publishes itself (from its own spool) because an upload involves no workflow.
 */
export function setupAgentBundles(deps: {
  config: AppConfig;
  layout: NodeLayout;
  clusterStore: ClusterStore;
  token: string;
  /** Set when the agents serve HTTPS: how this one fetches from its peers. */
  agentTls?: ClientTls;
  logger: Logger;
}): AgentBundles {
  const { config, layout, logger } = deps;
  const address = config.node.address;
  const store = new BundleStore(layout.bundleStoreFolder);
  const state = new InstalledStateFile(layout.bundleStateFile);
  const deployFolder = path.resolve(config.bundles.deployFolder ?? layout.bundleDeployFolder);

  const brokers = async () => {
    if (config.events.brokers?.length) return config.events.brokers;
    const file = await deps.clusterStore.load();
    return file.cluster.nodes.map((n) => `${n}:${config.events.kafkaPort}`);
  };
  const legacy = legacyAnnouncer({ config, spoolFolder: layout.bundlesFolder, brokers, logger });
  let publisher: EventPublisher | undefined;
  const announce = async (meta: BundleMeta) => {
    if (!config.events.enabled) return;
    publisher ??= createEventPublisher({
      brokers,
      spoolFile: path.join(layout.bundlesFolder, 'events-spool.jsonl'),
      logger,
      clientId: `clusterguard-agent-${address}`,
    });
    await publisher.enqueue(
      bundleAvailableEvent(config, 'bundle.available', meta, {
        node: address,
        symbolicName: meta.symbolicName,
        version: meta.version,
        sha256: meta.sha256,
        bytes: meta.bytes,
      }),
    );
    await legacy?.announce(meta);
  };

  const felix = config.middleware.enabled.includes('felix');
  if (felix) void resumeFramework(config, layout, logger);
  // Asks the framework; never starts it just to answer.
  const listFramework = felix ? () => felixOf(config, layout, logger).management.list() : undefined;
  const view = { address, state, ...(listFramework ? { listFramework } : {}) };

  return {
    viewActivityDeps: {
      ...view,
      clusterStore: deps.clusterStore,
      zooKeeperClientPort: config.middleware.zookeeper.clientPort,
      zooKeeper: config.middleware.enabled.includes('zookeeper'),
      logger,
    },
    activityDeps: {
      address,
      store,
      state,
      deployFolder,
      ...(config.middleware.enabled.includes('felix')
        ? {
            framework: (context) =>
              frameworkDeployer(
                felixOf(config, layout, logger, context),
                address,
                logger,
                context.signal,
              ),
          }
        : {}),
      ...(config.bundles.installCommand ? { installCommand: config.bundles.installCommand } : {}),
      healthChecks: config.bundles.healthChecks,
      token: deps.token,
      agentPort: config.agent.port,
      ...(deps.agentTls ? { agentTls: deps.agentTls } : {}),
      logger,
    },
    routes: bundleRoutes({
      store,
      state,
      maxUploadBytes: config.bundles.maxUploadBytes,
      logger,
      onStored: announce,
      ...(listFramework ? { framework: async () => (await nodeBundles(view)).framework } : {}),
      cluster: async () => ({
        clusterId: config.clusterId,
        members: (await deps.clusterStore.load()).cluster.nodes,
      }),
    }),
    async close() {
      if (legacy) {
        await legacy.publisher.flush(3000).catch(() => undefined);
        await legacy.publisher.close();
      }
      if (!publisher) return;
      await publisher.flush(3000).catch(() => undefined);
      await publisher.close();
    },
  };
}
