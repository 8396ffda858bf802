import {
  runbooks,
  type DataRunbookName,
  type RunbookName,
  type RunbookParams,
} from '../../src/contracts/catalog.js';
import { parseInput } from '../../src/contracts/validation.js';
import { admit } from './admission.js';
import type { Webapps } from './quiesce.js';
import type { ArchivePlan } from '../../src/contracts/data-runbooks.js';
import { assertDataWorkflowId, manifestOf, readMembers } from './data.js';
import { assertMembershipWorkflowId, tagRunbook } from './membership.js';
import { startRunbook, type Runbook } from './runbook.js';

/** The input, checked against the runbook's schema in the catalog; a bad one fails the run. */
export function runbookInput<N extends RunbookName>(name: N, raw: unknown): RunbookParams<N> {
  return parseInput(runbooks[name].input(), raw, name) as RunbookParams<N>;
}

/** What a stepwise runbook's steps need besides its input. */
export interface RunbookBase {
  rb: Runbook;
  attempts: number;
  agentTimeoutSeconds: number;
}

export interface OpenedRunbook<N extends RunbookName> extends RunbookBase {
  input: RunbookParams<N>;
}

/**
 * A stepwise runbook's opening: its input checked, its workflow id checked against its lane's
 * rule (a cluster runs one membership and one data runbook at a time), membership runbooks
 * tagged with their nodes, and the `Runbook` with its handlers. `as` names the runbook when it
 * runs as another (joinNode with `rejoin`). Only the tagging is a command, in the place it was;
 * then the cluster's admission (docs/design.md "Admission"), under `patched`.
 */
export async function openRunbook<N extends RunbookName>(
  name: N,
  raw: unknown,
  as: (input: RunbookParams<N>) => string = () => name,
): Promise<OpenedRunbook<N>> {
  const spec = runbooks[name];
  const input = runbookInput(name, raw);
  const params = input as { clusterId: string; dryRun?: boolean };
  const { clusterId } = params;
  const title = as(input);
  if (spec.lane === 'membership') {
    assertMembershipWorkflowId(title, clusterId, params.dryRun ?? false);
    tagRunbook(title, clusterId, (spec.nodes as (p: unknown) => string[])(input));
  } else if (spec.lane === 'data') {
    assertDataWorkflowId(title, clusterId, params.dryRun ?? false);
  }
  const options = input as { stepAttempts: number; agentTimeoutSeconds: number };
  const opened = { input, ...startRunbook(title, clusterId, options) };
  await admit(name, input, spec.nodes(input as never) ?? [], opened.rb);
  return opened;
}

/**
 * A data runbook's opening: `openRunbook`, the workflow's clock read (the same instant on every
 * retry and on replay), the master and members read from `input.master`'s cluster.json, and the
 * run tagged with the members. `manifestFor` gives the fields every archive of the run shares.
 */
export async function openDataRunbook<N extends DataRunbookName>(name: N, raw: unknown) {
  const { input, ...ctx } = await openRunbook(name, raw);
  const { clusterId, master: asked } = input as { clusterId: string; master: string };
  const startedAt = new Date();
  const { master, members, file } = await readMembers(ctx, asked);
  tagRunbook(name, clusterId, members);
  const { clusterUuid } = file.cluster;
  const manifestFor = (plan: ArchivePlan) =>
    manifestOf(clusterId, members, plan, startedAt, clusterUuid);
  return { input, ctx, rb: ctx.rb, clusterId, startedAt, master, members, manifestFor };
}

/** What one of a runbook's events carries. */
type EventData = Record<string, unknown>;

/**
 * A runbook's steps between its events: `runbook.started`, then `body`. When `body` returns, the
 * progress completes and `runbook.completed` carries `completed(value)`; when it throws, the
 * progress fails, `runbook.failed` carries `failed`, the error and the runbook's state, and the
 * error goes on. With `webapps` (a membership change, a restore, an import), the application's
 * webapps are stopped before `body` and started after it, however it ends (docs/design.md
 * "Admission", quiesce).
 */
export async function runSteps<T>(
  rb: Runbook,
  events: { started: EventData; completed: (value: T) => EventData; failed?: EventData },
  body: () => Promise<T>,
  webapps?: Webapps,
): Promise<T> {
  await rb.emit('runbook.started', events.started);
  try {
    await webapps?.stop();
    const value = await body();
    rb.tracker.finish('completed');
    await rb.emit('runbook.completed', events.completed(value));
    return value;
  } catch (err) {
    rb.tracker.finish('failed');
    await rb.emit('runbook.failed', {
      ...events.failed,
      error: (err as Error).message,
      state: rb.state,
    });
    throw err;
  } finally {
    await webapps?.start();
  }
}
