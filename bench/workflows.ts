/**
 * Bench-only workflows, bundled from this file (never part of workflows/index.ts). Workflow
 * code: no Node built-ins, activities by type only.
 */
import { proxyActivities } from '@temporalio/workflow';
import type { BenchActivities } from './activities.js';

export interface BenchStepsInput {
  /** The node whose task queue `cg-node-<address>` runs every step. */
  taskQueue: string;
  steps: number;
  kind: 'noop' | 'exec';
}

/** `steps` activities one after the other: what a runbook pays per step beyond the work. */
export async function benchSteps(input: BenchStepsInput): Promise<number> {
  const { noop, execTrue } = proxyActivities<BenchActivities>({
    taskQueue: input.taskQueue,
    startToCloseTimeout: '1m',
    retry: { maximumAttempts: 1 },
  });
  for (let i = 0; i < input.steps; i++) {
    if (input.kind === 'noop') await noop();
    else await execTrue();
  }
  return input.steps;
}
