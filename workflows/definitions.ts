import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { Progress } from '../src/contracts/progress.js';

/** Every runbook answers `progress`: steps with node, status, attempts and last error. */
export const progressQuery = defineQuery<Progress>('progress');

/** Runbooks that work in steps stop before their next step on `pause` … */
export const pauseSignal = defineSignal<[reason?: string]>('pause');
/** … and go on after `resume`. */
export const resumeSignal = defineSignal('resume');

/** A parked step (it exhausted its attempts) runs again; `step` may be left out when one is parked. */
export const retryStepUpdate = defineUpdate<string, [{ step?: string } | undefined]>('retryStep');

/**
 * A parked step of `node` is skipped, when the plan stays safe without it (the validator
 * refuses otherwise and says why). The reason is kept in the result and the history.
 */
export const skipNodeUpdate = defineUpdate<string, [{ node: string; reason: string }]>('skipNode');

/** The runbook stops at a parked step and fails, leaving the cluster in the state it reports. */
export const abortUpdate = defineUpdate<string, [{ reason: string }]>('abort');
