import {
  WorkflowFailedError,
  type Client,
  type WorkflowExecutionStatusName,
} from '@temporalio/client';
import { z } from 'zod';
import { progressQuery } from '../contracts/messages.js';
import { clusterIdSchema } from '../contracts/ping.js';
import type { Progress } from '../contracts/progress.js';
import { checked } from '../contracts/validation.js';
import { handleOf } from './messages.js';

/** Runs as they stand: outcome, following one, listing a cluster's, where time went. */

export interface RunbookListEntry {
  workflowId: string;
  runId: string;
  type: string;
  status: WorkflowExecutionStatusName;
  startTime: string;
  closeTime?: string;
}

export interface RunbookOutcome extends RunbookListEntry {
  /** The result, when completed. */
  result?: unknown;
  /** The innermost failure message and type, when failed. */
  failure?: { message: string; type?: string };
}

function innermost(err: unknown): { message: string; type?: string } {
  let e: unknown = err;
  while (e instanceof Error && e.cause instanceof Error) e = e.cause;
  const type = (e as { type?: unknown }).type;
  return {
    message: e instanceof Error ? e.message : String(e),
    ...(typeof type === 'string' ? { type } : {}),
  };
}

/** How a run stands now; the result or failure once it has ended. */
export async function runbookOutcome(
  client: Client,
  workflowId: string,
  runId?: string,
): Promise<RunbookOutcome> {
  const handle = handleOf(client, workflowId, runId);
  const d = await handle.describe();
  const outcome: RunbookOutcome = {
    workflowId: d.workflowId,
    runId: d.runId,
    type: d.type,
    status: d.status.name,
    startTime: d.startTime.toISOString(),
    ...(d.closeTime ? { closeTime: d.closeTime.toISOString() } : {}),
  };
  if (d.status.name === 'RUNNING') return outcome;
  try {
    outcome.result = await client.workflow.getHandle(d.workflowId, d.runId).result();
  } catch (err) {
    outcome.failure = innermost(err instanceof WorkflowFailedError ? (err.cause ?? err) : err);
  }
  return outcome;
}

/**
 * Follows a run: calls `onProgress` with each new `progress` answer (every `intervalMs`) until
 * the run ends, then answers its outcome. A query that fails (no orchestrator polling right
 * now) is skipped; the run is followed on.
 */
export async function followRunbook(
  client: Client,
  workflowId: string,
  onProgress: (p: Progress) => void,
  options: { intervalMs?: number; signal?: AbortSignal } = {},
): Promise<RunbookOutcome> {
  const handle = handleOf(client, workflowId);
  const { runId } = await handle.describe();
  const run = client.workflow.getHandle(workflowId, runId);
  let ended = false;
  const done = run.result().then(
    () => undefined,
    () => undefined,
  );
  void done.then(() => (ended = true));
  let last = '';
  const poll = async () => {
    try {
      const p = await run.query(progressQuery);
      const key = JSON.stringify({ ...p, updatedAt: undefined });
      if (key !== last) {
        last = key;
        onProgress(p);
      }
    } catch {
      // not answered now (worker restarting): the next poll asks again
    }
  };
  while (!ended && !options.signal?.aborted) {
    await poll();
    await Promise.race([done, new Promise((r) => setTimeout(r, options.intervalMs ?? 1000))]);
  }
  await poll();
  return runbookOutcome(client, workflowId, runId);
}

export const listRunbooksSchema = z
  .object({
    clusterId: clusterIdSchema,
    /** Only this workflow type, e.g. `backupCluster`. */
    runbook: z
      .string()
      .regex(/^[A-Za-z][A-Za-z0-9]*$/, 'expected a workflow type, e.g. backupCluster')
      .optional(),
    /** Only runs still running. */
    running: z.boolean().default(false),
    limit: z.number().int().min(1).max(10_000).default(50),
  })
  .strict();

/**
 * The runbooks of a cluster, newest first, by the search attributes every runbook sets
 * (`ClusterId`, `Runbook`). Visibility is eventually consistent: a run started a moment ago
 * may be missing for a second.
 */
export async function listRunbooks(
  client: Client,
  options: z.input<typeof listRunbooksSchema>,
): Promise<RunbookListEntry[]> {
  const o = checked(listRunbooksSchema, options, 'list options');
  const query = [
    `ClusterId="${o.clusterId}"`,
    ...(o.runbook ? [`Runbook="${o.runbook}"`] : []),
    ...(o.running ? [`ExecutionStatus="Running"`] : []),
  ].join(' AND ');
  const rows: RunbookListEntry[] = [];
  for await (const w of client.workflow.list({ query, pageSize: Math.min(o.limit, 1000) })) {
    rows.push({
      workflowId: w.workflowId,
      runId: w.runId,
      type: w.type,
      status: w.status.name,
      startTime: w.startTime.toISOString(),
      ...(w.closeTime ? { closeTime: w.closeTime.toISOString() } : {}),
    });
    if (rows.length >= o.limit) break;
  }
  return rows;
}

/** The Web UI page of one workflow execution. */
export function workflowUiUrl(
  uiBase: string,
  namespace: string,
  workflowId: string,
  runId?: string,
): string {
  const base = `${uiBase}/namespaces/${encodeURIComponent(namespace)}/workflows/${encodeURIComponent(workflowId)}`;
  return runId ? `${base}/${runId}/history` : base;
}

/** Steps whose time is spent inside the middleware (servers stopping, starting, joining). */
const middlewareStep =
  /^(stop|create|join|rejoin|restart|health|decommission|unregister):[^:]+(:|$)/;

function spanMs(p: Progress): number {
  const starts = p.steps.flatMap((s) => (s.startedAt ? [Date.parse(s.startedAt)] : []));
  const ends = p.steps.flatMap((s) => (s.finishedAt ? [Date.parse(s.finishedAt)] : []));
  return starts.length && ends.length ? Math.max(...ends) - Math.min(...starts) : 0;
}

/** Intervals of the middleware steps (a child join's own step is counted from its steps). */
function middlewareIntervals(p: Progress): [number, number][] {
  return p.steps.flatMap((s): [number, number][] =>
    s.startedAt && s.finishedAt && middlewareStep.test(s.id) && !/^join:[^:]+$/.test(s.id)
      ? [[Date.parse(s.startedAt), Date.parse(s.finishedAt)]]
      : [],
  );
}

/** Total length of the union of intervals: time during which any of them was under way. */
function unionMs(intervals: [number, number][]): number {
  let total = 0;
  let end = -Infinity;
  for (const [a, b] of [...intervals].sort((x, y) => x[0] - y[0])) {
    if (b <= end) continue;
    total += b - Math.max(a, end);
    end = b;
  }
  return total;
}

/**
 * Where a membership runbook's time went: the whole span, and the time during which some
 * middleware operation (stop, create, join, restart …) was under way on some node, its own or
 * its child joins'; the rest is orchestration: reading and writing cluster.json, packing and
 * downloading archives, scheduling.
 */
export async function membershipTiming(
  client: Client,
  workflowId: string,
): Promise<{ totalMs: number; middlewareMs: number }> {
  const parent = await client.workflow.getHandle(workflowId).query(progressQuery);
  const children = await Promise.all(
    parent.steps
      .filter((s) => /^join:[^:]+$/.test(s.id) && s.node)
      .map((s) =>
        client.workflow
          .getHandle(`${workflowId}/join/${s.node}`)
          .query(progressQuery)
          .then(middlewareIntervals, () => []),
      ),
  );
  const intervals = [...middlewareIntervals(parent), ...children.flat()];
  return { totalMs: spanMs(parent), middlewareMs: unionMs(intervals) };
}
