/**
 * What each signal, query and update does, as the Web UI and `temporal workflow metadata` show
 * it (set with every handler, see `described`).
 */
export const messageDescriptions: Record<string, string> = {
  progress:
    'The runbook’s steps per node (status, attempts, last error), what is parked and which ' +
    'updates it accepts, and whether it is paused.',
  pause:
    'Hold the runbook before its next step; steps under way finish. Input: an optional reason ' +
    '(a JSON string).',
  resume: 'Let a paused runbook go on.',
  retryStep:
    'Run a parked step again with a fresh set of attempts. Input: {} or {"step":"<step id>"} ' +
    '(needed when several are parked).',
  skipNode:
    'Skip a node’s parked steps, when the plan stays safe without them (refused with why ' +
    'otherwise). Input: {"node":"<address>","reason":"…"}.',
  abort:
    'While a step is parked or the runbook paused: fail it (Aborted), naming the step and the ' +
    'state the cluster was left in. Input: {"reason":"…"}.',
  approve:
    'After a rollout’s canary batch: roll out to the remaining nodes. Input: {} or ' +
    '{"by":"…"}; {"reject":"<why>"} rolls back instead.',
  bundles: 'The rollout’s nodes: the version each had before and its status now.',
  setMembership:
    'The cluster guardian’s desired membership (validated: addresses, duplicates, master). ' +
    'Input: {"nodes":[…],"master":"…","reason":"…"}.',
  state: 'The cluster guardian: desired and actual membership, the last check, the running change.',
  reconcile:
    'The cluster guardian checks now; a failed change is tried again. Input: optional ' +
    '{"node":"<address>","reason":"…"} when that node asks to be rejoined.',
};

/** The `description` option of a handler: `setHandler(def, fn, described(def))`. */
export function described(def: { name: string }): { description: string } {
  const description = messageDescriptions[def.name];
  if (description === undefined) throw new Error(`no description for the handler ${def.name}`);
  return { description };
}
