import { patched, setCurrentDetails, upsertMemo } from '@temporalio/workflow';
import type { Progress, ProgressStep } from '../../src/contracts/progress.js';
import {
  coarseProgressKey,
  progressMemo,
  renderCurrentDetails,
} from '../../src/contracts/progress-matrix.js';

/**
 * Runbooks keep their last progress in their memo (`progress`), which the Web UI shows with no
 * worker running. Runs started before it set no memo, so their histories replay.
 */
export const progressMemoPatch = 'progress-memo';

/**
 * Keeps a runbook's steps, answers the `progress` query from them and mirrors them into the
 * Web UI's "Current details" (status, node × phase matrix, steps) on every change, and into the
 * memo `progress` when it changes coarsely (docs/design.md, "What the Web UI shows").
 */
export class ProgressTracker {
  private readonly progress: Progress;
  /** Markdown shown under the steps in the Web UI (e.g. a rollout's node × bundle table). */
  private appendix = '';
  /** The coarse state last written to the memo; see `keepInMemo`. */
  private memoKey?: string;
  private memoOn?: boolean;

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
    return {
      ...this.progress,
      ...(this.progress.parked ? { parked: this.progress.parked.map((p) => ({ ...p })) } : {}),
      steps: this.progress.steps.map((s) => ({ ...s })),
    };
  }

  /** Adds steps learnt while running (e.g. after reading the membership); known ids are kept. */
  addSteps(steps: Omit<ProgressStep, 'status' | 'attempts'>[]): void {
    for (const s of steps) {
      if (this.progress.steps.some((x) => x.id === s.id)) continue;
      this.progress.steps.push({ ...s, status: 'pending', attempts: 0 });
    }
    this.publish();
  }

  has(id: string): boolean {
    return this.progress.steps.some((s) => s.id === id);
  }

  setPaused(paused: Progress['paused']): void {
    this.progress.paused = paused;
    this.publish();
  }

  setParked(parked: NonNullable<Progress['parked']>): void {
    this.progress.parked = parked.length > 0 ? parked : undefined;
    this.publish();
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

  setAppendix(markdown: string): void {
    this.appendix = markdown;
    this.publish();
  }

  private publish(): void {
    this.progress.updatedAt = new Date().toISOString();
    const steps = renderCurrentDetails(this.progress);
    setCurrentDetails(this.appendix ? `${steps}\n\n${this.appendix}` : steps);
    this.keepInMemo();
  }

  /**
   * Upserts the memo when the status, a pause, a parked step, or a phase's share of nodes done
   * (in tenths) changed: a 100-node phase adds about ten memo events to the history, not 100.
   */
  private keepInMemo(): void {
    const key = coarseProgressKey(this.progress);
    if (key === this.memoKey) return;
    this.memoOn ??= patched(progressMemoPatch);
    if (!this.memoOn) return;
    this.memoKey = key;
    upsertMemo({ progress: progressMemo(this.progress) });
  }
}
