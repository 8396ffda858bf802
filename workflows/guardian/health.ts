import { ActivityFailure, TimeoutFailure, proxyActivities } from '@temporalio/workflow';
import { TimeoutType } from '@temporalio/common';
import type { BundleViewActivities } from '../../activities/bundle-view-activities.js';
import type { NodeHealthActivities } from '../../activities/guardian-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import {
  healthProblems,
  type GuardianState,
  type NodeHealth,
} from '../../src/contracts/guardian.js';
import { causeMessage } from '../lib/runbook.js';

/** How long a node's agent may leave the health question unclaimed before it counts as unreachable. */
const healthAnswerSeconds = 10;

/** A change of one node's health, for the guardian's history and events. */
export interface HealthChange {
  node: string;
  healthy: boolean;
  problems: string[];
}

function ask<T>(node: string): T {
  return proxyActivities<T>({
    taskQueue: nodeTaskQueue(node),
    scheduleToStartTimeout: `${healthAnswerSeconds}s`,
    startToCloseTimeout: '30s',
    retry: { maximumAttempts: 1 },
  }) as T;
}

function unreachable(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

/** The cluster's desired bundles, from the master (empty when it keeps none or cannot say). */
async function desiredBundles(
  master: string,
): Promise<{ symbolicName: string; version: string }[]> {
  try {
    const desired = await ask<BundleViewActivities>(master).readDesiredBundles();
    return desired.map(({ symbolicName, version }) => ({ symbolicName, version }));
  } catch {
    return [];
  }
}

/**
 * One look at every member's health (docs/guardian.md, "Health"): its agent answers, each of its
 * servers runs (or is held by a runbook), its application runs the desired bundles. Updates
 * `state.health` and returns the nodes whose health changed since the last look.
 */
export async function checkHealth(
  state: GuardianState,
  members: string[],
  at: string,
): Promise<HealthChange[]> {
  const bundles = await desiredBundles(state.master);
  const looks = await Promise.all(
    members.map(async (node): Promise<{ node: string; problems: string[] }> => {
      try {
        const report = await ask<NodeHealthActivities>(node).nodeHealth({
          desiredBundles: bundles,
        });
        return { node, problems: healthProblems(report) };
      } catch (err) {
        return {
          node,
          problems: [
            unreachable(err)
              ? `agent unreachable: no answer within ${healthAnswerSeconds} s`
              : `agent did not answer: ${causeMessage(err)}`,
          ],
        };
      }
    }),
  );
  const before = state.health ?? {};
  const next: Record<string, NodeHealth> = {};
  const changes: HealthChange[] = [];
  for (const { node, problems } of looks) {
    const healthy = problems.length === 0;
    const old = before[node];
    const changed = old ? old.healthy !== healthy : !healthy;
    next[node] = { healthy, problems, since: changed || !old ? at : old.since, checkedAt: at };
    if (changed) changes.push({ node, healthy, problems });
  }
  state.health = next;
  return changes;
}
