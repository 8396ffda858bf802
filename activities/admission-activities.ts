import { Context } from '@temporalio/activity';
import { WorkflowNotFoundError, type Client } from '@temporalio/client';
import {
  admissionRequestSignal,
  admissionWorkflowId,
  type AdmissionRequest,
} from '../src/contracts/admission.js';

export interface AdmissionActivityDeps {
  /** How often the admission workflow asks whether its holders still run (docs/design.md). */
  checkSeconds: number;
  /** The Temporal client; default the worker's own (the activity context's). */
  client?: () => Client;
}

export interface AdmissionWorkflowInput {
  clusterId: string;
  checkSeconds: number;
}

/**
 * The orchestrator's side of cluster-wide admission (docs/design.md "Admission"). A workflow
 * cannot signal-with-start, so a runbook asks through `requestAdmission`; the admission workflow
 * asks through `endedHolders` which of its holders ended without releasing.
 */
export function createAdmissionActivities(deps: AdmissionActivityDeps) {
  const client = deps.client ?? (() => Context.current().client);
  return {
    /**
     * Delivers the request to the cluster's admission workflow, starting it when none runs, and
     * answers its id, which the runbook releases to.
     */
    async requestAdmission(input: {
      clusterId: string;
      request: AdmissionRequest;
    }): Promise<{ workflowId: string }> {
      const args: [AdmissionWorkflowInput] = [
        { clusterId: input.clusterId, checkSeconds: deps.checkSeconds },
      ];
      const { taskQueue } = Context.current().info;
      const workflowId = admissionWorkflowId(input.clusterId, taskQueue);
      await client().workflow.signalWithStart('clusterAdmission', {
        workflowId,
        taskQueue,
        args,
        signal: admissionRequestSignal,
        signalArgs: [input.request],
      });
      return { workflowId };
    },

    /** Of these runs, those that are no longer running, with their status. */
    async endedHolders(input: {
      holders: { workflowId: string; runId: string }[];
    }): Promise<{ workflowId: string; runId: string; status: string }[]> {
      const ended: { workflowId: string; runId: string; status: string }[] = [];
      for (const h of input.holders) {
        try {
          const d = await client().workflow.getHandle(h.workflowId, h.runId).describe();
          if (d.status.name !== 'RUNNING') ended.push({ ...h, status: d.status.name });
        } catch (err) {
          if (!(err instanceof WorkflowNotFoundError)) throw err;
          ended.push({ ...h, status: 'NOT_FOUND' });
        }
      }
      return ended;
    },
  };
}

export type AdmissionActivities = ReturnType<typeof createAdmissionActivities>;
