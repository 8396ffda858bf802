import { setCurrentDetails } from '@temporalio/workflow';
import type { Progress, ProgressStep } from '../../src/contracts/progress.js';
import { renderProgressMarkdown } from '../../src/contracts/progress.js';

/**
 * Keeps a runbook's steps, answers the `progress` query from them and mirrors them into the
 * Web UI's "Current details" on every change.
 */
export class ProgressTracker {
  private readonly progress: Progress;

  constructor(
    runbook: string,
    clusterId: string,
    steps: Omit<ProgressStep, 'status' | 'attempts'>[],
  ) {
    this.progress = {
      runbook,
      clusterId,
      status: 'running',
      steps: steps.map((s) => ({ ...s, status: 'pending', attempts: 0 })),
      updatedAt: new Date().toISOString(),
    };
    this.publish();
  }

  /** A copy, so a query handler's caller can never change the runbook's state. */
  snapshot(): Progress {
    // structuredClone does not exist in the workflow sandbox.
    return { ...this.progress, steps: this.progress.steps.map((s) => ({ ...s })) };
  }

  step(id: string): ProgressStep {
    const step = this.progress.steps.find((s) => s.id === id);
    if (!step) throw new Error(`unknown progress step ${id}`);
    return step;
  }

  update(id: string, patch: Partial<Omit<ProgressStep, 'id'>>): void {
    const step = this.step(id);
    const now = new Date().toISOString();
    if (patch.status === 'running' && !step.startedAt) step.startedAt = now;
    if (patch.status === 'completed' || patch.status === 'failed' || patch.status === 'skipped') {
      step.finishedAt = now;
    }
    Object.assign(step, patch);
    this.publish();
  }

  finish(status: 'completed' | 'failed'): void {
    this.progress.status = status;
    this.publish();
  }

  private publish(): void {
    this.progress.updatedAt = new Date().toISOString();
    setCurrentDetails(renderProgressMarkdown(this.progress));
  }
}
