import type { BundleViewActivityDeps } from '../src/bundles/agent.js';
import type { DesiredBundle, NodeBundles } from '../src/contracts/bundle-view.js';
import { ClusterGuardError } from '../src/contracts/errors.js';
import { readDesiredBundles, recordDesiredBundle } from '../src/bundles/desired.js';
import { nodeBundles } from '../src/bundles/view.js';

export type { BundleViewActivityDeps };

/**
 * The node × bundle view and the cluster's desired bundle set (docs/bundles.md). The desired set
 * lives in the cluster's ZooKeeper, reached through the members of this node's cluster.json.
 */
export function createBundleViewActivities(deps: BundleViewActivityDeps) {
  async function connectionString(): Promise<string> {
    if (!deps.zooKeeper) {
      throw new ClusterGuardError(
        'InvalidConfig',
        `${deps.address} runs no ZooKeeper (middleware.enabled), where the cluster's desired ` +
          'bundle set is kept; enable it to record the set and converge joining nodes',
      );
    }
    const file = await deps.clusterStore.load().catch((err: unknown) => {
      throw new ClusterGuardError(
        'InvalidConfig',
        `${deps.address} cannot tell the cluster's ZooKeeper: its cluster.json cannot be read (${(err as Error).message})`,
      );
    });
    return file.cluster.nodes
      .map((n) => `${n.includes(':') ? `[${n}]` : n}:${deps.zooKeeperClientPort}`)
      .join(',');
  }

  return {
    /** This node's bundles: framework listing and recorded installs. */
    async listBundles(): Promise<NodeBundles> {
      return nodeBundles(deps);
    },
    /** Records the version the cluster should run after a rollout that completed. */
    async recordDesiredBundle(entry: DesiredBundle): Promise<void> {
      await recordDesiredBundle(await connectionString(), entry);
      deps.logger.info('desired bundle recorded', {
        symbolicName: entry.symbolicName,
        version: entry.version,
      });
    },
    async readDesiredBundles(): Promise<DesiredBundle[]> {
      return readDesiredBundles(await connectionString());
    },
  };
}

export type BundleViewActivities = ReturnType<typeof createBundleViewActivities>;
