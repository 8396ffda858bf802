import { runbooks, type RunbookName, type RunbookParams } from '../../src/contracts/catalog.js';
import { parseInput } from '../../src/contracts/validation.js';
import { admit } from './admission.js';
import { assertDataWorkflowId } from './data.js';
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
