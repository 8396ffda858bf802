import { z } from 'zod';
import { nodeListSchema } from './addresses.js';
import { lazySchema } from './validation.js';

export const clusterIdSchema = z
  .string()
  .regex(
    /^[a-z0-9][a-z0-9-]{0,62}$/,
    'expected a cluster id of lower-case letters, digits and dashes (at most 63)',
  );

export const pingClusterInputSchema = lazySchema(() =>
  z
    .object({
      clusterId: clusterIdSchema,
      /** Nodes to ask; the first is the master (it does not matter for a ping). */
      nodes: nodeListSchema,
      /**
       * Keep each node's probe busy this long while it heartbeats: to watch a runbook in the
       * Web UI, or to rehearse an agent failure mid-step. 0 answers at once.
       */
      holdSeconds: z.number().int().min(0).max(3600).default(0),
      /**
       * How long a node's agent may leave its task unclaimed before the node is reported as
       * unreachable in `progress`. The runbook goes on waiting either way.
       */
      agentTimeoutSeconds: z.number().int().min(1).max(3600).default(15),
    })
    .strict(),
);

export type PingClusterInput = z.input<typeof pingClusterInputSchema>;
export type PingClusterParams = z.output<typeof pingClusterInputSchema>;

export interface MiddlewareBinary {
  name: string;
  found: boolean;
  version?: string;
  path?: string;
}

export interface NodePing {
  address: string;
  /** The node's data root (docs/design.md). */
  root: string;
  hostname: string;
  agentVersion: string;
  /** `cluster.json` as this node sees it, or why it cannot be read. */
  clusterFile: { nodes: string[]; master: string } | { error: string };
  middleware: MiddlewareBinary[];
  /** Server-side attempt number of the activity that answered. */
  attempt: number;
}

export interface PingClusterResult {
  clusterId: string;
  nodes: (NodePing & { attempts: number })[];
}
