/**
 * Simulated nodes for the rollout benchmark: in one process, one bundle agent per address —
 * the real bundle activities (store, hash check, deploy rename, health check) on the node's
 * own task queue `cg-node-<address>`, and the real bundle HTTP routes on `<address>:<port>` so
 * that nodes fetch the artifact from each other as real agents do. Only what a rollout uses is
 * there (no middleware, no cluster.json work).
 *
 * `node --import tsx bench/sim-agents.ts <config.json>`; prints `sim agents ready` when every
 * worker and server is up, stops on SIGTERM.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { DefaultLogger, NativeConnection, Runtime, Worker } from '@temporalio/worker';
import { createAgentApp, startAgentServer } from '../src/agent/server.js';
import { createBundleActivities } from '../activities/bundle-activities.js';
import { activityInterceptors } from '../activities/interceptor.js';
import { setupAgentBundles } from '../src/bundles/agent.js';
import { appConfigSchema } from '../src/config/app-config.js';
import { ClusterStore } from '../src/config/cluster-store.js';
import { NodeLayout } from '../src/config/layout.js';
import { nodeTaskQueue } from '../src/contracts/addresses.js';
import { createLogger } from '../src/logger.js';
import { onShutdownSignal } from '../src/process.js';

export interface SimAgentsConfig {
  temporalAddress: string;
  namespace: string;
  addresses: string[];
  /** Each node's root is `<rootDir>/<address>`. */
  rootDir: string;
  port: number;
  token: string;
  /** Activity pollers per node worker (the SDK's default is 5 per worker). */
  pollers: number;
}

async function main(): Promise<void> {
  const file = process.argv[2];
  if (!file) throw new Error('usage: bench/sim-agents.ts <config.json>');
  const cfg = JSON.parse(await readFile(file, 'utf8')) as SimAgentsConfig;
  Runtime.install({ logger: new DefaultLogger('WARN') });
  const logger = createLogger('sim-agent', 'warn');
  // One connection for every simulated node: they are one process, as one machine's would be.
  const connection = await NativeConnection.connect({ address: cfg.temporalAddress });
  const stops: (() => Promise<void>)[] = [];
  const runs: Promise<void>[] = [];
  await Promise.all(
    cfg.addresses.map(async (address) => {
      const root = path.join(cfg.rootDir, address);
      const config = appConfigSchema.parse({
        clusterId: 'bench',
        node: { address, root },
        agent: { port: cfg.port, token: cfg.token },
        events: { enabled: false },
        bundles: { healthChecks: { noop: { command: ['true'], timeoutMs: 10_000 } } },
      });
      const layout = new NodeLayout(root);
      const clusterStore = new ClusterStore({ file: layout.clusterFile });
      const bundles = setupAgentBundles({ config, layout, clusterStore, token: cfg.token, logger });
      const worker = await Worker.create({
        connection,
        namespace: cfg.namespace,
        taskQueue: nodeTaskQueue(address),
        activities: createBundleActivities(bundles.activityDeps),
        interceptors: { activity: activityInterceptors(address) },
        maxConcurrentActivityTaskExecutions: 8,
        maxConcurrentActivityTaskPolls: cfg.pollers,
      });
      const app = createAgentApp({
        address,
        layout,
        token: cfg.token,
        logger,
        agentVersion: 'bench',
        maxBodyBytes: 64 * 1024 * 1024,
        routes: [bundles.routes],
      });
      const http = await startAgentServer(app, address, cfg.port);
      runs.push(worker.run());
      stops.push(async () => {
        if (worker.getState() === 'RUNNING') worker.shutdown();
        await http.close();
      });
    }),
  );
  onShutdownSignal(async () => {
    await Promise.all(stops.map((s) => s()));
  });
  process.stderr.write(`sim agents ready (${cfg.addresses.length} nodes)\n`);
  await Promise.all(runs);
  await connection.close();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
