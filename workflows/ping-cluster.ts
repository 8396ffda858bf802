import { TimeoutType } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  TimeoutFailure,
  proxyActivities,
  setHandler,
  upsertSearchAttributes,
  log,
} from '@temporalio/workflow';
import type { NodeActivities } from '../activities/node-activities.js';
import { nodeTaskQueue } from '../src/contracts/addresses.js';
import { nonRetryableErrorTypes } from '../src/contracts/errors.js';
import {
  type NodePing,
  type PingClusterInput,
  type PingClusterResult,
} from '../src/contracts/ping.js';
import { clusterIdKey, nodesKey, runbookKey } from '../src/contracts/search-attributes.js';
import { progressQuery } from '../src/contracts/messages.js';
import { described } from '../src/contracts/message-descriptions.js';
import { ProgressTracker } from './lib/progress-tracker.js';
import { runbookInput } from './lib/open.js';

/** The failure a step gets when no agent claimed its task in time: the node is not answering. */
function isUnclaimed(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

function causeMessage(err: unknown): string {
  if (err instanceof ActivityFailure && err.cause) return err.cause.message;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Asks every node's agent, in parallel, who it is: address, data root, cluster.json as it sees
 * it, and the middleware binaries it has. A node whose agent is down does not fail the runbook:
 * its step shows "waiting" with the reason until the agent comes back.
 */
export async function pingCluster(rawInput: PingClusterInput): Promise<PingClusterResult> {
  const input = runbookInput('pingCluster', rawInput);
  upsertSearchAttributes([
    { key: clusterIdKey, value: input.clusterId },
    { key: runbookKey, value: 'pingCluster' },
    { key: nodesKey, value: input.nodes },
  ]);

  const tracker = new ProgressTracker(
    'pingCluster',
    input.clusterId,
    input.nodes.map((node) => ({ id: `ping:${node}`, title: 'ping node agent', node })),
  );
  setHandler(progressQuery, () => tracker.snapshot(), described(progressQuery));

  async function pingOne(node: string): Promise<NodePing & { attempts: number }> {
    const stepId = `ping:${node}`;
    const { pingNode } = proxyActivities<NodeActivities>({
      taskQueue: nodeTaskQueue(node),
      // Names the node on the Web UI's timeline, where every step is otherwise just "pingNode".
      summary: `ping ${node}`,
      // A probe is quick; a held one heartbeats every second, so 5 s without one means the
      // agent died and the server retries the probe without waiting for the full timeout.
      startToCloseTimeout: `${input.holdSeconds + 60}s`,
      heartbeatTimeout: '5s',
      // Not a retry budget: it is how soon a silent node is reported as unreachable.
      scheduleToStartTimeout: `${input.agentTimeoutSeconds}s`,
      retry: {
        initialInterval: '1s',
        backoffCoefficient: 2,
        maximumInterval: '10s',
        nonRetryableErrorTypes,
      },
    });
    let unclaimed = 0;
    tracker.update(stepId, { status: 'running' });
    for (;;) {
      try {
        const result = await pingNode({ holdSeconds: input.holdSeconds });
        const attempts = unclaimed + result.attempt;
        tracker.update(stepId, { status: 'completed', attempts });
        return { ...result, attempts };
      } catch (err) {
        if (!isUnclaimed(err)) {
          const message = causeMessage(err);
          tracker.update(stepId, { status: 'failed', attempts: unclaimed + 1, lastError: message });
          throw ApplicationFailure.create({
            message: `ping of node ${node} failed: ${message}`,
            type:
              err instanceof ActivityFailure && err.cause instanceof ApplicationFailure
                ? (err.cause.type ?? undefined)
                : undefined,
            nonRetryable: true,
            cause: err instanceof Error ? err : undefined,
          });
        }
        // A schedule-to-start timeout is never retried by the server: schedule the probe again,
        // so the runbook waits for the node instead of failing.
        unclaimed += 1;
        const reason =
          `no agent on ${node} claimed its task within ${input.agentTimeoutSeconds} s ` +
          `(task queue ${nodeTaskQueue(node)}): start or repair the node agent there; ` +
          'the runbook keeps waiting';
        log.warn('node unreachable', { node, unclaimed });
        tracker.update(stepId, { status: 'waiting', attempts: unclaimed, lastError: reason });
      }
    }
  }

  try {
    const nodes = await Promise.all(input.nodes.map(pingOne));
    tracker.finish('completed');
    return { clusterId: input.clusterId, nodes };
  } catch (err) {
    tracker.finish('failed');
    throw err;
  }
}
