import {
  ApplicationFailure,
  condition,
  continueAsNew,
  getExternalWorkflowHandle,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type {
  AdmissionActivities,
  AdmissionWorkflowInput,
} from '../activities/admission-activities.js';
import {
  admissionAnswerSignal,
  admissionReleaseSignal,
  admissionRequestSignal,
  admissionStateQuery,
  admissionWorkflowId,
  decideAdmission,
  refusalMessage,
  type AdmissionAnswer,
  type AdmissionHolder,
  type AdmissionRequest,
  type AdmissionState,
} from '../src/contracts/admission.js';

/** What one run hands to the next at continue-as-new. */
interface Carried {
  holders: AdmissionHolder[];
  queue: AdmissionRequest[];
  dropped: AdmissionState['dropped'];
}

/** Events after which a run continues as new (a few requests each take a handful). */
const historyLimit = 2000;
/** An admission workflow with nothing to hold or queue for this long ends; the next request starts it again. */
const idleSeconds = 3600;
/** How many dropped holders the state query shows. */
const droppedKept = 20;

type Run = { workflowId: string; runId: string };
const same = (a: Run, b: Run) => a.workflowId === b.workflowId && a.runId === b.runId;

/**
 * The admission of one cluster (docs/design.md "Admission"): an entity workflow with the fixed
 * id `cg/<cluster>/admission`, started by the first runbook that asks (signal-with-start from
 * the `requestAdmission` activity). It decides each request against the compatibility table in
 * src/contracts/admission.ts and answers the runbook by signal: granted, queued (with
 * `waitForCluster`) or refused naming the holder. A runbook releases at its end; every
 * `checkSeconds` the holders and the queue are described, and a run that ended without releasing
 * (terminated, timed out) is dropped, so nothing holds a cluster forever.
 */
export async function clusterAdmission(
  input: AdmissionWorkflowInput & { carried?: Carried },
): Promise<void> {
  const { clusterId, checkSeconds } = input;
  // Replayed histories report the replaying worker's task queue: the id's prefix is checked.
  const { workflowId } = workflowInfo();
  const id = admissionWorkflowId(clusterId);
  if (workflowId !== id && !workflowId.startsWith(`${id}@`)) {
    throw ApplicationFailure.nonRetryable(
      `clusterAdmission of cluster ${clusterId} must run as ${id} (or ${id}@<task queue>), not ` +
        `${workflowId}; runbooks start it themselves`,
      'InvalidInput',
    );
  }
  const holders: AdmissionHolder[] = input.carried?.holders ?? [];
  const queue: AdmissionRequest[] = input.carried?.queue ?? [];
  const dropped: AdmissionState['dropped'] = input.carried?.dropped ?? [];
  const inbox: AdmissionRequest[] = [];
  const releases: Run[] = [];
  setHandler(admissionRequestSignal, (r) => void inbox.push(r));
  setHandler(admissionReleaseSignal, (r) => void releases.push(r));
  setHandler(admissionStateQuery, (): AdmissionState => ({ clusterId, holders, queue, dropped }));
  const activities = proxyActivities<AdmissionActivities>({
    startToCloseTimeout: '1m',
    retry: { initialInterval: '1s', maximumInterval: '10s', maximumAttempts: 5 },
  });

  const now = () => new Date().toISOString();
  const answer = async (to: Run, a: AdmissionAnswer) => {
    try {
      await getExternalWorkflowHandle(to.workflowId, to.runId).signal(admissionAnswerSignal, a);
    } catch (err) {
      // The runbook ended meanwhile: nobody waits for the answer.
      log.info('admission answer not delivered', { to: to.workflowId, error: String(err) });
    }
  };
  const hold = async (r: AdmissionRequest) => {
    const { workflowId, runId, runbook, kind, nodes, leaving } = r;
    holders.push({ workflowId, runId, runbook, kind, nodes, leaving, since: now() });
    await answer(r, { kind: 'granted', at: now() });
  };
  const refuse = async (
    r: AdmissionRequest,
    by: Run & { runbook: string },
    reason: string,
    final: boolean,
  ) => {
    await answer(r, {
      kind: 'refused',
      holder: by.workflowId,
      holderRunbook: by.runbook,
      message: refusalMessage(clusterId, r, by, reason, final),
      at: now(),
    });
  };

  /** Releases, then the queue in order, then new requests. */
  const settle = async () => {
    for (let r = releases.shift(); r; r = releases.shift()) {
      const run = r;
      const h = holders.findIndex((x) => same(x, run));
      if (h >= 0) holders.splice(h, 1);
      const q = queue.findIndex((x) => same(x, run));
      if (q >= 0) queue.splice(q, 1);
    }
    for (let i = 0; i < queue.length;) {
      const q = queue[i] as AdmissionRequest;
      const d = decideAdmission(clusterId, q, holders, queue.slice(0, i));
      if (d.kind === 'queue') {
        i += 1;
        continue;
      }
      queue.splice(i, 1);
      if (d.kind === 'grant') await hold(q);
      else await refuse(q, d.holder, d.reason, d.final);
    }
    for (let r = inbox.shift(); r; r = inbox.shift()) {
      const run = r;
      if (holders.some((h) => same(h, run))) {
        await answer(run, { kind: 'granted', at: now() }); // a repeated request
        continue;
      }
      if (queue.some((q) => same(q, run))) continue;
      if (run.parent && holders.some((h) => h.workflowId === run.parent)) {
        // A child of a holder (bootstrapCluster's joinNode) runs under its parent's admission.
        await answer(run, { kind: 'granted', at: now() });
        continue;
      }
      const d = decideAdmission(clusterId, run, holders, queue);
      if (d.kind === 'grant') await hold(run);
      else if (d.kind === 'queue') {
        queue.push(run);
        await answer(run, { kind: 'queued', behind: d.behind, at: now() });
      } else await refuse(run, d.holder, d.reason, d.final);
    }
  };

  /** Drops holders and queued runs that ended without releasing. */
  const check = async () => {
    const runs = [...holders, ...queue].map(({ workflowId, runId }) => ({ workflowId, runId }));
    const ended = await activities.endedHolders({ holders: runs });
    for (const e of ended) {
      const h = holders.findIndex((x) => same(x, e));
      const gone = h >= 0 ? holders.splice(h, 1)[0] : undefined;
      const q = queue.findIndex((x) => same(x, e));
      if (q >= 0) queue.splice(q, 1);
      if (gone) {
        dropped.push({
          workflowId: e.workflowId,
          runbook: gone.runbook,
          status: e.status,
          at: now(),
        });
        log.warn('admission holder ended without releasing: dropped', { ...e });
      }
    }
    dropped.splice(0, Math.max(0, dropped.length - droppedKept));
  };

  let nextCheck = Date.now() + checkSeconds * 1000;
  let idleSince = Date.now();
  for (;;) {
    await settle();
    const busy = holders.length + queue.length > 0;
    if (busy) idleSince = Date.now();
    const pending = () => inbox.length > 0 || releases.length > 0;
    const info = workflowInfo();
    if (!pending() && (info.continueAsNewSuggested || info.historyLength > historyLimit)) {
      await continueAsNew<typeof clusterAdmission>({
        clusterId,
        checkSeconds,
        carried: { holders, queue, dropped },
      });
    }
    const until = busy ? nextCheck : idleSince + idleSeconds * 1000;
    const woke = await condition(pending, Math.max(until - Date.now(), 1));
    if (woke) continue;
    if (!busy) return; // idle long enough: the next request starts a new run
    await check();
    nextCheck = Date.now() + checkSeconds * 1000;
  }
}
