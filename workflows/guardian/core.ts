import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  TimeoutFailure,
  log,
  proxyActivities,
  setCurrentDetails,
  startChild,
  workflowInfo,
  type WorkflowInfo,
} from '@temporalio/workflow';
import { TimeoutType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { EventActivities } from '../../activities/event-activities.js';
import type {
  GuardianActivities,
  WebappActivities,
  WebappResult,
} from '../../activities/guardian-activities.js';
import { nodeAddressSchema, nodeTaskQueue } from '../../src/contracts/addresses.js';
import type { RunbookParams } from '../../src/contracts/catalog.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import {
  guardianHistoryLimit,
  guardianWorkflowId,
  type ChildRecord,
  type GuardianCarried,
  type GuardianOutcome,
  type GuardianState,
} from '../../src/contracts/guardian.js';
import {
  renderGuardianMarkdown,
  unsafeGuide,
  type ChildRunbook,
} from '../../src/contracts/guardian-decision.js';
import {
  membershipWorkflowId,
  type MembershipRunbookResult,
} from '../../src/contracts/membership-runbooks.js';
import { tagRunbook } from '../lib/membership.js';
import { causeMessage } from '../lib/runbook.js';

type ChildOutcome =
  | { kind: 'completed'; result: MembershipRunbookResult }
  | { kind: 'busy' | 'refused' | 'failed'; message: string };

export const now = () => new Date().toISOString();

function failureType(err: unknown): string | undefined {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause)
    e = e.cause;
  return e instanceof ApplicationFailure ? (e.type ?? undefined) : undefined;
}

function isUnclaimed(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

/**
 * What the guardian knows and how it changes the cluster: its state (carried across
 * continue-as-new), the record of its checks, and the reconciliation itself — every child first
 * as a dry run, then for real between stopping and starting the webapps. The subclass in
 * workflows/cluster-guardian.ts adds the message handlers, the check and the main loop.
 */
export class GuardianCore {
  readonly state: GuardianState;
  readonly clusterId: string;
  protected readonly info: WorkflowInfo;
  /** Set by a message that wants the next check now. */
  protected wake = false;
  /** Set by `reconcile`: a settled change is tried again. */
  protected forced = false;
  protected readonly events: EventActivities;
  protected readonly controller: GuardianActivities;

  constructor(protected readonly input: RunbookParams<'clusterGuardian'>) {
    const { clusterId } = input;
    this.clusterId = clusterId;
    this.info = workflowInfo();
    if (this.info.workflowId !== guardianWorkflowId(clusterId)) {
      throw ApplicationFailure.nonRetryable(
        `clusterGuardian of cluster ${clusterId} runs as workflow id ${this.info.workflowId}, but it must ` +
          `run as ${guardianWorkflowId(clusterId)} so that a cluster has one guardian. Nothing was ` +
          'changed: start it again with that id (startGuardian does)',
        'InvalidInput',
      );
    }
    const carried: Partial<GuardianCarried> = input.carried ?? {};
    this.state = {
      clusterId,
      intervalSeconds: input.intervalSeconds,
      dryRun: input.dryRun,
      ...(input.source ? { source: { controllerUrl: input.source.controllerUrl } } : {}),
      ticks: 0,
      master: carried.master ?? input.master,
      desired:
        carried.desired ??
        (input.desired ? { nodes: input.desired, from: 'input', at: now() } : undefined),
      actual: carried.actual,
      lastCheck: carried.lastCheck,
      lastChild: carried.lastChild,
      unsafe: carried.unsafe,
      settled: carried.settled,
      paused: carried.paused,
      pendingRejoins: carried.pendingRejoins ?? [],
      totalTicks: carried.totalTicks ?? 0,
      run: (carried.run ?? 0) + 1,
      history: carried.history ?? [],
      events: carried.events ?? 0,
      ...(carried.health ? { health: carried.health } : {}),
    };
    this.events = proxyActivities<EventActivities>({
      taskQueue: this.info.taskQueue,
      startToCloseTimeout: '15s',
      retry: { maximumAttempts: 3, initialInterval: '1s' },
    });
    this.controller = proxyActivities<GuardianActivities>({
      taskQueue: this.info.taskQueue,
      // Its own timeout: a controller that hangs delays one check, never the guardian.
      startToCloseTimeout: `${(input.source?.timeoutSeconds ?? 10) + 5}s`,
      retry: { maximumAttempts: 2, initialInterval: '1s', nonRetryableErrorTypes },
    });
  }

  protected onNode<T>(node: string, long = false): T {
    return proxyActivities<T>({
      taskQueue: nodeTaskQueue(node),
      startToCloseTimeout: long ? '30m' : '1m',
      ...(long ? { heartbeatTimeout: '30s' } : {}),
      scheduleToStartTimeout: `${this.input.agentTimeoutSeconds}s`,
      retry: {
        initialInterval: '1s',
        maximumInterval: '10s',
        maximumAttempts: long ? this.input.stepAttempts : 2,
        nonRetryableErrorTypes,
      },
    }) as T;
  }

  protected publish(): void {
    setCurrentDetails(renderGuardianMarkdown(this.state));
  }

  protected note(what: string): void {
    const { history } = this.state;
    history.push({ at: now(), what });
    if (history.length > guardianHistoryLimit)
      history.splice(0, history.length - guardianHistoryLimit);
    log.info(what);
  }

  protected done(outcome: GuardianOutcome, message: string): void {
    this.state.lastCheck = { at: now(), outcome, message };
    this.publish();
  }

  protected tag(): void {
    tagRunbook('clusterGuardian', this.clusterId, this.state.desired?.nodes ?? [this.state.master]);
  }

  protected async emit(
    type:
      | 'io.clusterguard.guardian.unsafe-membership'
      | 'io.clusterguard.node.unhealthy'
      | 'io.clusterguard.node.recovered',
    data: Record<string, unknown>,
    subject?: string,
  ): Promise<void> {
    this.state.events += 1;
    try {
      await this.events.publishEvent({
        id: `${workflowInfo().runId}/${this.state.events}`,
        type,
        ...(subject ? { subject } : {}),
        clusterId: this.clusterId,
        runbook: 'clusterGuardian',
        workflowId: this.info.workflowId,
        time: now(),
        data,
        nodes: this.state.actual?.nodes.filter((n) => nodeAddressSchema.safeParse(n).success) ?? [],
      });
    } catch (err) {
      log.warn('event not published', { error: causeMessage(err) });
    }
  }

  protected async refuseUnsafe(
    key: string,
    actual: string[],
    desired: string[],
    reason: string,
    guide: string,
  ): Promise<void> {
    this.state.unsafe = { reason, guide, since: now(), actual, desired };
    this.state.settled = { key, outcome: 'unsafe' };
    this.note(`unsafe membership change refused: ${reason}`);
    this.done('unsafe', reason);
    await this.emit('io.clusterguard.guardian.unsafe-membership', {
      actual,
      desired,
      reason,
      guide,
    });
  }

  private async runChild(child: ChildRunbook, dryRun: boolean): Promise<ChildOutcome> {
    const workflowId = membershipWorkflowId(this.clusterId);
    const record: ChildRecord = {
      runbook: child.runbook,
      workflowId,
      dryRun,
      input: { ...child.input, dryRun },
      startedAt: now(),
      outcome: 'running',
    };
    let handle;
    try {
      handle = await startChild(child.runbook, {
        workflowId,
        args: [record.input],
        // A membership change half done must finish even if the guardian is terminated.
        parentClosePolicy: ParentClosePolicy.ABANDON,
      });
    } catch (err) {
      if (err instanceof WorkflowExecutionAlreadyStartedError) {
        return {
          kind: 'busy',
          message:
            `another membership runbook runs as ${workflowId}; the guardian waits for it and ` +
            'checks again at the next tick',
        };
      }
      throw err;
    }
    record.runId = handle.firstExecutionRunId;
    this.state.runningChild = record;
    this.note(`started ${child.runbook}${dryRun ? ' (dry run)' : ''} as ${workflowId}`);
    this.publish();
    let outcome: ChildOutcome;
    try {
      const result = (await handle.result()) as MembershipRunbookResult;
      outcome = result.refusal
        ? { kind: 'refused', message: result.refusal }
        : { kind: 'completed', result };
    } catch (err) {
      const message = causeMessage(err);
      const type = failureType(err);
      // ClusterBusy: another runbook holds the cluster (docs/design.md "Admission").
      outcome =
        type === 'UnsafeMembershipChange'
          ? { kind: 'refused', message }
          : { kind: type === 'ClusterBusy' ? 'busy' : 'failed', message };
    }
    record.finishedAt = now();
    record.outcome = outcome.kind === 'busy' ? 'failed' : outcome.kind;
    record.message =
      outcome.kind === 'completed'
        ? `${outcome.result.plan.membership.kind}${dryRun ? ' planned' : ' done'}; members [${outcome.result.nodes.join(', ')}]`
        : outcome.message;
    this.state.runningChild = undefined;
    this.state.lastChild = record;
    this.note(`${child.runbook}${dryRun ? ' (dry run)' : ''} ${record.outcome}: ${record.message}`);
    this.publish();
    return outcome;
  }

  private async webapps(
    action: 'stop' | 'start',
    nodes: string[],
  ): Promise<{ ok: string[]; failed: string[] }> {
    const results = await Promise.all(
      nodes.map(async (node): Promise<{ node: string; ok: boolean; text: string }> => {
        try {
          const r: WebappResult = await this.onNode<WebappActivities>(node, true).controlWebapps({
            action,
          });
          return { node, ok: true, text: `${r.outcome}: ${r.detail}` };
        } catch (err) {
          // A node whose agent does not answer runs no webapp the guardian could stop.
          if (isUnclaimed(err)) return { node, ok: true, text: 'agent not answering: skipped' };
          return { node, ok: false, text: causeMessage(err) };
        }
      }),
    );
    for (const r of results)
      this.note(`webapps ${action} on ${r.node}: ${r.ok ? r.text : `failed: ${r.text}`}`);
    return {
      ok: results.filter((r) => r.ok).map((r) => r.node),
      failed: results.filter((r) => !r.ok).map((r) => r.node),
    };
  }

  /** Plans every child (dry run), then, unless the guardian is a dry run, runs them for real. */
  protected async reconcile(
    key: string,
    actual: string[],
    desired: string[],
    children: ChildRunbook[],
    webappNodes: string[],
    leaving: string[],
    masterAfter: string,
  ): Promise<boolean> {
    const { state } = this;
    for (const child of children) {
      const planned = await this.runChild(child, true);
      if (planned.kind === 'busy') {
        this.done('membership-busy', planned.message);
        return false;
      }
      if (planned.kind === 'refused') {
        await this.refuseUnsafe(
          key,
          actual,
          desired,
          planned.message,
          unsafeGuide(actual, desired),
        );
        return false;
      }
      if (planned.kind === 'failed') {
        state.settled = { key, outcome: 'failed' };
        this.done(
          'failed',
          `${child.runbook} refused the plan: ${planned.message}. Signal reconcile to try again`,
        );
        return false;
      }
    }
    if (this.input.dryRun) {
      state.settled = { key, outcome: 'planned' };
      this.done(
        'planned',
        `dry run: ${children.map((c) => c.runbook).join(', ')} planned, nothing changed`,
      );
      return false;
    }
    if (state.paused) {
      // Paused while the plan ran: nothing is stopped or changed; planned again after resume.
      this.done('planned', `paused before the change: ${state.paused.reason}`);
      return false;
    }
    this.done(
      'reconciling',
      `${children.map((c) => c.runbook).join(', ')} for [${desired.join(', ')}]`,
    );
    const stopped = await this.webapps('stop', webappNodes);
    let failure: string | undefined;
    let busy = false;
    if (stopped.failed.length > 0) {
      failure = `the webapps of ${stopped.failed.join(', ')} did not stop; the membership was not changed`;
    } else {
      for (const child of children) {
        const r = await this.runChild(child, false);
        if (r.kind === 'completed') continue;
        busy = r.kind === 'busy';
        failure = `${child.runbook} ${r.kind === 'refused' ? 'refused' : r.kind === 'busy' ? 'could not start' : 'failed'}: ${r.message}`;
        break;
      }
    }
    const restart = failure ? stopped.ok : webappNodes.filter((n) => !leaving.includes(n));
    await this.webapps('start', restart);
    if (busy) {
      this.done('membership-busy', failure ?? '');
      return false;
    }
    if (failure) {
      state.settled = { key, outcome: 'failed' };
      this.done('failed', `${failure}. Signal reconcile to try again`);
      return false;
    }
    if (masterAfter !== state.master) this.note(`the master is now ${masterAfter}`);
    state.master = masterAfter;
    state.settled = undefined;
    this.done('reconciled', `[${desired.join(', ')}] reached`);
    return true;
  }

  protected async rejoinPending(actual: string[]): Promise<boolean> {
    const node = this.state.pendingRejoins.shift();
    if (node === undefined) return false;
    const master = actual[0] ?? this.state.master;
    if (!actual.includes(node)) {
      this.note(
        `${node} asked to be rejoined but is not a member of [${actual.join(', ')}]: nothing done`,
      );
      return false;
    }
    if (node === master) {
      this.note(
        `the master ${node} restarted with a cluster.json that is not ready: the guardian does not ` +
          'rebuild a master by itself; run bootstrapCluster again with the same nodes',
      );
      return false;
    }
    const { input } = this;
    const child: ChildRunbook = {
      runbook: 'rejoinNode',
      input: {
        clusterId: this.clusterId,
        node,
        master,
        stepAttempts: input.stepAttempts,
        agentTimeoutSeconds: input.agentTimeoutSeconds,
        ...(input.middleware ? { middleware: input.middleware } : {}),
      },
    };
    await this.reconcile(`rejoin:${node}`, actual, actual, [child], [node], [], this.state.master);
    return true;
  }
}
