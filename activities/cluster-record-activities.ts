import { ApplicationFailure } from '@temporalio/common';
import { nodeListSchema } from '../src/contracts/addresses.js';
import { unknownClusterMessage, type ClusterRegistry } from '../src/config/cluster-registry.js';
import type { ErrorType } from '../src/contracts/errors.js';
import { describeZodError } from '../src/contracts/validation.js';
import type { Logger } from '../src/logger.js';
import { describeActivity } from './interceptor.js';

export interface RecordClusterInput {
  clusterId: string;
  /** The members, the master first. */
  nodes: string[];
  /** `<workflow id>/<run id>` of the runbook that read or made this membership. */
  recordedBy: string;
  /** ISO-8601, from the workflow. */
  recordedAt: string;
}

/**
 * Runs on the orchestrator's task queue: the cluster record that lets a runbook be started
 * with the cluster's name only (docs/design.md, "The cluster record").
 */
export function createClusterRecordActivities(deps: { registry: ClusterRegistry; logger: Logger }) {
  return {
    /** The master and members last recorded for `clusterId`; `UnknownCluster` when none. */
    async lookupCluster(input: {
      clusterId: string;
    }): Promise<{ master: string; nodes: string[] }> {
      describeActivity(`lookupCluster ${input.clusterId}`);
      const record = await deps.registry.get(input.clusterId);
      if (!record) {
        const type: ErrorType = 'UnknownCluster';
        throw ApplicationFailure.nonRetryable(
          unknownClusterMessage(input.clusterId, deps.registry.file),
          type,
        );
      }
      return { master: record.nodes[0] ?? '', nodes: record.nodes };
    },

    /** Records the members of `clusterId` (master first); unchanged ones are not written. */
    async recordCluster(input: RecordClusterInput): Promise<{ changed: boolean }> {
      describeActivity(`recordCluster ${input.clusterId}`);
      const nodes = nodeListSchema.safeParse(input.nodes);
      if (!nodes.success) {
        const type: ErrorType = 'InvalidInput';
        throw ApplicationFailure.nonRetryable(
          `cluster ${input.clusterId} not recorded: nodes: ${describeZodError(nodes.error)}`,
          type,
        );
      }
      const changed = await deps.registry.record(input.clusterId, {
        nodes: nodes.data,
        recordedBy: input.recordedBy,
        recordedAt: input.recordedAt,
      });
      if (changed)
        deps.logger.info('cluster recorded', { clusterId: input.clusterId, nodes: nodes.data });
      return { changed };
    },
  };
}

export type ClusterRecordActivities = ReturnType<typeof createClusterRecordActivities>;
