/**
 * The typed signal, query and update definitions of every runbook, shared by the workflows
 * (which set their handlers) and the client (which sends them). Names are wire names recorded
 * in histories: never rename one.
 */
import { defineQuery, defineSignal, defineUpdate } from '@temporalio/workflow';
import type { ApproveArg, BundlesView } from './bundles.js';
import type { GuardianState, SetMembershipArg } from './guardian.js';
import type { Progress } from './progress.js';

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

/** A rollout waiting after its canary batch goes on (or, with `reject`, rolls back). */
export const approveUpdate = defineUpdate<string, [ApproveArg | undefined]>('approve');

/** A bundle rollout's view of its nodes: version before, status now. */
export const bundlesQuery = defineQuery<BundlesView>('bundles');

/** clusterGuardian: the desired membership (validated: addresses, duplicates, master choice). */
export const setMembershipUpdate = defineUpdate<string, [SetMembershipArg]>('setMembership');

/** clusterGuardian: desired, actual, last check, running child (src/contracts/guardian.ts). */
export const guardianStateQuery = defineQuery<GuardianState>('state');

/**
 * clusterGuardian checks now; a failed change is tried again. With `node`: that node's agent
 * restarted on a cluster.json that is not ready (docs/design.md) and asks to be rejoined.
 */
export const reconcileSignal = defineSignal<[{ node?: string; reason?: string }?]>('reconcile');
