import { defineQuery, defineSignal } from '@temporalio/workflow';
import type { Progress } from '../src/contracts/progress.js';

/** Every runbook answers `progress`: steps with node, status, attempts and last error. */
export const progressQuery = defineQuery<Progress>('progress');

/** Runbooks that work in steps stop before their next step on `pause` … */
export const pauseSignal = defineSignal<[reason?: string]>('pause');
/** … and go on after `resume`. */
export const resumeSignal = defineSignal('resume');
