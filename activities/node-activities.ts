import os from 'node:os';
import { Context } from '@temporalio/activity';
import type { NodeLayout } from '../src/config/layout.js';
import type { ClusterStore } from '../src/config/cluster-store.js';
import type { MiddlewareBinary, NodePing } from '../src/contracts/ping.js';
import type { Logger } from '../src/logger.js';

export interface NodeActivityDeps {
  address: string;
  layout: NodeLayout;
  clusterStore: ClusterStore;
  agentVersion: string;
  logger: Logger;
  /** Finds the middleware binaries the node has; injected so tests and adapters can vary it. */
  probeMiddleware: (signal: AbortSignal) => Promise<MiddlewareBinary[]>;
}

export interface PingNodeInput {
  holdSeconds: number;
}

/** Activities that run on one node, on its own task queue `cg-node-<address>`. */
export function createNodeActivities(deps: NodeActivityDeps) {
  return {
    async pingNode(input: PingNodeInput): Promise<NodePing> {
      const ctx = Context.current();
      const { attempt } = ctx.info;
      deps.logger.info('activity pingNode started', { node: deps.address, attempt });
      const deadline = Date.now() + input.holdSeconds * 1000;
      for (let left = deadline - Date.now(); left > 0; left = deadline - Date.now()) {
        ctx.heartbeat({ holdingForMs: left });
        // Rejects when the workflow cancels the step, so a held probe never outlives it.
        await ctx.sleep(Math.min(1000, left));
      }
      let clusterFile: NodePing['clusterFile'];
      try {
        const file = await deps.clusterStore.load();
        clusterFile = { nodes: file.cluster.nodes, master: file.cluster.nodes[0] ?? '' };
      } catch (err) {
        clusterFile = { error: (err as Error).message };
      }
      const middleware = await deps.probeMiddleware(ctx.cancellationSignal);
      deps.logger.info('activity pingNode completed', { node: deps.address, attempt });
      return {
        address: deps.address,
        root: deps.layout.root,
        hostname: os.hostname(),
        agentVersion: deps.agentVersion,
        clusterFile,
        middleware,
        attempt,
      };
    },
  };
}

export type NodeActivities = ReturnType<typeof createNodeActivities>;
