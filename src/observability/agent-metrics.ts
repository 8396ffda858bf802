import type { AppConfig } from '../config/app-config.js';
import { NodeLayout } from '../config/layout.js';
import { InstalledStateFile } from '../bundles/store.js';
import type { Logger } from '../logger.js';
import { createMiddlewareAdapter } from '../middleware/index.js';
import { scrapedGauge, type Metrics } from './metrics.js';

/**
 * A node's servers and bundles, read at scrape time: whether each middleware server this node
 * runs is up (running and answering its health check), and which bundle versions it runs.
 */
export function registerAgentMetrics(metrics: Metrics, config: AppConfig, logger: Logger): void {
  const layout = new NodeLayout(config.node.root);
  const adapters = config.middleware.enabled.map((mw) =>
    createMiddlewareAdapter(mw, config, { address: config.node.address, layout, logger }),
  );
  scrapedGauge(
    metrics,
    'clusterguard_server_up',
    'Whether a middleware server of this node is running and healthy (1) or not (0)',
    ['middleware'],
    async (set) => {
      await Promise.all(
        adapters.map(async (a) => {
          const status = await a.checkServer().catch(() => ({ running: false, healthy: false }));
          set({ middleware: a.name }, status.running && status.healthy ? 1 : 0);
        }),
      );
    },
    logger,
  );
  const installed = new InstalledStateFile(layout.bundleStateFile);
  scrapedGauge(
    metrics,
    'clusterguard_bundle_info',
    'The bundle versions this node runs (value 1)',
    ['bundle', 'version'],
    async (set) => {
      for (const [bundle, b] of Object.entries((await installed.read()).bundles)) {
        set({ bundle, version: b.version }, 1);
      }
    },
    logger,
  );
}
