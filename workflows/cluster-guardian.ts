import {
  ActivityFailure,
  ApplicationFailure,
  ChildWorkflowFailure,
  ParentClosePolicy,
  TimeoutFailure,
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  workflowInfo,
} from '@temporalio/workflow';
import { TimeoutType, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import type { EventActivities } from '../activities/event-activities.js';
import type {
  GuardianActivities,
  WebappActivities,
  WebappResult,
} from '../activities/guardian-activities.js';
import type { MembershipActivities } from '../activities/membership-activities.js';
import type { MiddlewareActivities } from '../activities/middleware-activities.js';
import { nodeAddressSchema, nodeTaskQueue } from '../src/contracts/addresses.js';
import { standaloneAddress } from '../src/contracts/cluster-file.js';
import { nonRetryableErrorTypes } from '../src/contracts/errors.js';
import {
  decideReconciliation,
  desiredNodes,
  followMaster,
  guardianHistoryLimit,
  guardianWorkflowId,
  reconciliationKey,
  renderGuardianMarkdown,
  setMembershipSchema,
  unsafeGuide,
  type ChildRecord,
  type ChildRunbook,
  type ClusterGuardianInput,
  type GuardianCarried,
  type GuardianOutcome,
  type GuardianState,
} from '../src/contracts/guardian.js';
import {
  membershipMiddleware,
  membershipWorkflowId,
  type MembershipMiddleware,
  type MembershipRunbookResult,
} from '../src/contracts/membership-runbooks.js';
import type { Progress, ProgressStep } from '../src/contracts/progress.js';
import { describeZodError } from '../src/contracts/validation.js';
import {
  guardianStateQuery,
  pauseSignal,
  progressQuery,
  reconcileSignal,
  resumeSignal,
  setMembershipUpdate,
} from '../src/contracts/messages.js';
import { tagRunbook } from './lib/membership.js';
import { causeMessage } from './lib/runbook.js';
import { runbookInput } from './lib/open.js';

type ChildOutcome =
  | { kind: 'completed'; result: MembershipRunbookResult }
  | { kind: 'busy' | 'refused' | 'failed'; message: string };

const now = () => new Date().toISOString();

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

const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  !!a && !!b && a.length === b.length && a.every((n, i) => n === b[i]);

/**
 * One per cluster, forever (seed 001 §3 end, §4): compares the desired membership (pushed with
 * `setMembership`, or polled from the controller) with the master's cluster.json on a timer and
 * runs, as a child under the cluster's membership id, the runbook that reconciles them. Each
 * child first runs as a dry run, so that its live quorum pre-check can refuse before the
 * webapps are stopped. A change that would lose quorum changes nothing: it raises
 * `guardian.unsafe-membership` and shows the recovery guide in the details.
 */
export async function clusterGuardian(rawInput: ClusterGuardianInput): Promise<never> {
  const input = runbookInput('clusterGuardian', rawInput);
  const { clusterId } = input;
  const info = workflowInfo();
  if (info.workflowId !== guardianWorkflowId(clusterId)) {
    throw ApplicationFailure.nonRetryable(
      `clusterGuardian of cluster ${clusterId} runs as workflow id ${info.workflowId}, but it must ` +
        `run as ${guardianWorkflowId(clusterId)} so that a cluster has one guardian. Nothing was ` +
        'changed: start it again with that id (startGuardian does)',
      'InvalidInput',
    );
  }
  const carried: Partial<GuardianCarried> = input.carried ?? {};
  const state: GuardianState = {
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
  };
  let wake = false;
  let forced = false;

  const publish = () => setCurrentDetails(renderGuardianMarkdown(state));
  const note = (what: string) => {
    state.history.push({ at: now(), what });
    if (state.history.length > guardianHistoryLimit)
      state.history.splice(0, state.history.length - guardianHistoryLimit);
    log.info(what);
  };
  const done = (outcome: GuardianOutcome, message: string) => {
    state.lastCheck = { at: now(), outcome, message };
    publish();
  };
  const tag = () =>
    tagRunbook('clusterGuardian', clusterId, state.desired?.nodes ?? [state.master]);

  const events = proxyActivities<EventActivities>({
    taskQueue: info.taskQueue,
    startToCloseTimeout: '15s',
    retry: { maximumAttempts: 3, initialInterval: '1s' },
  });
  const controller = proxyActivities<GuardianActivities>({
    taskQueue: info.taskQueue,
    // Its own timeout: a controller that hangs delays one check, never the guardian.
    startToCloseTimeout: `${(input.source?.timeoutSeconds ?? 10) + 5}s`,
    retry: { maximumAttempts: 2, initialInterval: '1s', nonRetryableErrorTypes },
  });
  const onNode = <T>(node: string, long = false) =>
    proxyActivities<T>({
      taskQueue: nodeTaskQueue(node),
      startToCloseTimeout: long ? '30m' : '1m',
      ...(long ? { heartbeatTimeout: '30s' } : {}),
      scheduleToStartTimeout: `${input.agentTimeoutSeconds}s`,
      retry: {
        initialInterval: '1s',
        maximumInterval: '10s',
        maximumAttempts: long ? input.stepAttempts : 2,
        nonRetryableErrorTypes,
      },
    });

  setHandler(
    guardianStateQuery,
    (): GuardianState => JSON.parse(JSON.stringify(state)) as GuardianState,
  );
  setHandler(progressQuery, (): Progress => {
    const steps: ProgressStep[] = state.history.map((h, i) => ({
      id: `history-${i + 1}`,
      title: h.what,
      status: 'completed',
      attempts: 1,
      finishedAt: h.at,
    }));
    if (state.runningChild) {
      steps.push({
        id: state.runningChild.workflowId,
        title: `${state.runningChild.runbook}${state.runningChild.dryRun ? ' (dry run)' : ''}`,
        status: 'running',
        attempts: 1,
        startedAt: state.runningChild.startedAt,
      });
    }
    return {
      runbook: 'clusterGuardian',
      clusterId,
      status: 'running',
      ...(state.paused ? { paused: state.paused } : {}),
      steps,
      updatedAt: state.lastCheck?.at ?? now(),
    };
  });
  setHandler(pauseSignal, (reason?: string) => {
    if (state.paused) return;
    state.paused = { reason: reason ?? 'paused by an operator', since: now() };
    note(`paused: ${state.paused.reason}`);
    publish();
  });
  setHandler(resumeSignal, () => {
    if (!state.paused) return;
    state.paused = undefined;
    note('resumed');
    wake = true;
    publish();
  });
  setHandler(reconcileSignal, (arg) => {
    forced = true;
    wake = true;
    const node = arg?.node === undefined ? undefined : nodeAddressSchema.safeParse(arg.node);
    if (node?.success && !state.pendingRejoins.includes(node.data)) {
      state.pendingRejoins.push(node.data);
      note(`${node.data} asks to be rejoined${arg?.reason ? `: ${arg.reason}` : ''}`);
    } else {
      note(`reconcile requested${arg?.reason ? `: ${arg.reason}` : ''}`);
    }
  });
  setHandler(
    setMembershipUpdate,
    (arg) => {
      const parsed = setMembershipSchema.parse(arg);
      const nodes = desiredNodes(parsed);
      state.desired = {
        nodes,
        from: 'update',
        at: now(),
        ...(parsed.reason ? { reason: parsed.reason } : {}),
      };
      note(
        `desired membership set to [${nodes.join(', ')}]${parsed.reason ? `: ${parsed.reason}` : ''}`,
      );
      tag();
      wake = true;
      publish();
      const actual = state.actual?.nodes;
      let preview = 'it is compared with cluster.json at the next check';
      if (actual) {
        try {
          const d = decideReconciliation(
            actual,
            nodes,
            input.middleware ?? [...membershipMiddleware],
            {
              clusterId,
            },
          );
          preview =
            d.action === 'start'
              ? `next: ${d.message}`
              : d.action === 'none'
                ? d.message
                : `unsafe, nothing will be done: ${d.reason}`;
        } catch {
          // the check itself reports it
        }
      }
      return `desired membership of ${clusterId} is [${nodes.join(', ')}]; ${preview}`;
    },
    {
      validator: (arg) => {
        if (input.source) {
          throw new Error(
            `the desired membership of ${clusterId} comes from the controller at ${input.source.controllerUrl}; ` +
              'change it there (or start the guardian without `source` to push it with setMembership)',
          );
        }
        const parsed = setMembershipSchema.safeParse(arg);
        if (!parsed.success)
          throw new Error(`invalid setMembership: ${describeZodError(parsed.error)}`);
      },
    },
  );

  async function emitUnsafe(data: Record<string, unknown>): Promise<void> {
    state.events += 1;
    try {
      await events.publishEvent({
        id: `${workflowInfo().runId}/${state.events}`,
        type: 'io.clusterguard.guardian.unsafe-membership',
        clusterId,
        runbook: 'clusterGuardian',
        workflowId: info.workflowId,
        time: now(),
        data,
        nodes: state.actual?.nodes.filter((n) => nodeAddressSchema.safeParse(n).success) ?? [],
      });
    } catch (err) {
      log.warn('event not published', { error: causeMessage(err) });
    }
  }

  async function refuseUnsafe(
    key: string,
    actual: string[],
    desired: string[],
    reason: string,
    guide: string,
  ) {
    state.unsafe = { reason, guide, since: now(), actual, desired };
    state.settled = { key, outcome: 'unsafe' };
    note(`unsafe membership change refused: ${reason}`);
    done('unsafe', reason);
    await emitUnsafe({ actual, desired, reason, guide });
  }

  async function runChild(child: ChildRunbook, dryRun: boolean): Promise<ChildOutcome> {
    const workflowId = membershipWorkflowId(clusterId);
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
    state.runningChild = record;
    note(`started ${child.runbook}${dryRun ? ' (dry run)' : ''} as ${workflowId}`);
    publish();
    let outcome: ChildOutcome;
    try {
      const result = (await handle.result()) as MembershipRunbookResult;
      outcome = result.refusal
        ? { kind: 'refused', message: result.refusal }
        : { kind: 'completed', result };
    } catch (err) {
      const message = causeMessage(err);
      outcome =
        failureType(err) === 'UnsafeMembershipChange'
          ? { kind: 'refused', message }
          : { kind: 'failed', message };
    }
    record.finishedAt = now();
    record.outcome = outcome.kind === 'busy' ? 'failed' : outcome.kind;
    record.message =
      outcome.kind === 'completed'
        ? `${outcome.result.plan.membership.kind}${dryRun ? ' planned' : ' done'}; members [${outcome.result.nodes.join(', ')}]`
        : outcome.message;
    state.runningChild = undefined;
    state.lastChild = record;
    note(`${child.runbook}${dryRun ? ' (dry run)' : ''} ${record.outcome}: ${record.message}`);
    publish();
    return outcome;
  }

  async function webapps(
    action: 'stop' | 'start',
    nodes: string[],
  ): Promise<{ ok: string[]; failed: string[] }> {
    const results = await Promise.all(
      nodes.map(async (node): Promise<{ node: string; ok: boolean; text: string }> => {
        try {
          const r: WebappResult = await onNode<WebappActivities>(node, true).controlWebapps({
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
      note(`webapps ${action} on ${r.node}: ${r.ok ? r.text : `failed: ${r.text}`}`);
    return {
      ok: results.filter((r) => r.ok).map((r) => r.node),
      failed: results.filter((r) => !r.ok).map((r) => r.node),
    };
  }

  /** Plans every child (dry run), then, unless the guardian is a dry run, runs them for real. */
  async function reconcile(
    key: string,
    actual: string[],
    desired: string[],
    children: ChildRunbook[],
    webappNodes: string[],
    leaving: string[],
    masterAfter: string,
  ): Promise<boolean> {
    for (const child of children) {
      const planned = await runChild(child, true);
      if (planned.kind === 'busy') {
        done('membership-busy', planned.message);
        return false;
      }
      if (planned.kind === 'refused') {
        await refuseUnsafe(key, actual, desired, planned.message, unsafeGuide(actual, desired));
        return false;
      }
      if (planned.kind === 'failed') {
        state.settled = { key, outcome: 'failed' };
        done(
          'failed',
          `${child.runbook} refused the plan: ${planned.message}. Signal reconcile to try again`,
        );
        return false;
      }
    }
    if (input.dryRun) {
      state.settled = { key, outcome: 'planned' };
      done(
        'planned',
        `dry run: ${children.map((c) => c.runbook).join(', ')} planned, nothing changed`,
      );
      return false;
    }
    if (state.paused) {
      // Paused while the plan ran: nothing is stopped or changed; planned again after resume.
      done('planned', `paused before the change: ${state.paused.reason}`);
      return false;
    }
    done('reconciling', `${children.map((c) => c.runbook).join(', ')} for [${desired.join(', ')}]`);
    const stopped = await webapps('stop', webappNodes);
    let failure: string | undefined;
    let busy = false;
    if (stopped.failed.length > 0) {
      failure = `the webapps of ${stopped.failed.join(', ')} did not stop; the membership was not changed`;
    } else {
      for (const child of children) {
        const r = await runChild(child, false);
        if (r.kind === 'completed') continue;
        busy = r.kind === 'busy';
        failure = `${child.runbook} ${r.kind === 'refused' ? 'refused' : r.kind === 'busy' ? 'could not start' : 'failed'}: ${r.message}`;
        break;
      }
    }
    const restart = failure ? stopped.ok : webappNodes.filter((n) => !leaving.includes(n));
    await webapps('start', restart);
    if (busy) {
      done('membership-busy', failure ?? '');
      return false;
    }
    if (failure) {
      state.settled = { key, outcome: 'failed' };
      done('failed', `${failure}. Signal reconcile to try again`);
      return false;
    }
    if (masterAfter !== state.master) note(`the master is now ${masterAfter}`);
    state.master = masterAfter;
    state.settled = undefined;
    done('reconciled', `[${desired.join(', ')}] reached`);
    return true;
  }

  async function rejoinPending(actual: string[]): Promise<boolean> {
    const node = state.pendingRejoins.shift();
    if (node === undefined) return false;
    const master = actual[0] ?? state.master;
    if (!actual.includes(node)) {
      note(
        `${node} asked to be rejoined but is not a member of [${actual.join(', ')}]: nothing done`,
      );
      return false;
    }
    if (node === master) {
      note(
        `the master ${node} restarted with a cluster.json that is not ready: the guardian does not ` +
          'rebuild a master by itself; run bootstrapCluster again with the same nodes',
      );
      return false;
    }
    const child: ChildRunbook = {
      runbook: 'rejoinNode',
      input: {
        clusterId,
        node,
        master,
        stepAttempts: input.stepAttempts,
        agentTimeoutSeconds: input.agentTimeoutSeconds,
        ...(input.middleware ? { middleware: input.middleware } : {}),
      },
    };
    await reconcile(`rejoin:${node}`, actual, actual, [child], [node], [], state.master);
    return true;
  }

  async function check(): Promise<void> {
    if (input.source) {
      try {
        const answer = await controller.fetchControllerCluster({
          url: input.source.controllerUrl,
          timeoutSeconds: input.source.timeoutSeconds,
        });
        if (!sameList(state.desired?.nodes, answer.nodes)) {
          note(`the controller wants [${answer.nodes.join(', ')}]`);
          state.desired = {
            nodes: answer.nodes,
            from: 'controller',
            at: now(),
            offline: answer.offline,
          };
          tag();
        } else if (state.desired) {
          state.desired.offline = answer.offline;
        }
      } catch (err) {
        done('error', `${causeMessage(err)}`);
        return;
      }
    }
    const desired = state.desired?.nodes;
    if (!desired) {
      // Nothing to compare: nothing is read either, so an idle guardian costs one timer a tick.
      done('no-desired', 'no desired membership yet: push one with the update setMembership');
      return;
    }
    const master = state.master;
    let file;
    try {
      file = await onNode<MembershipActivities>(master).readClusterState();
    } catch (err) {
      done(
        'error',
        `cannot read cluster.json on the master ${master}: ${causeMessage(err)}. Nothing is changed; ` +
          'checked again at the next tick',
      );
      return;
    }
    const actual = file.cluster.nodes;
    const before = state.actual?.nodes;
    if (actual.length === 1 && actual[0] === standaloneAddress && before && before.length > 1) {
      // The master was wiped or replaced behind the guardian's back: bootstrapping from here
      // would make it create a new cluster and the others wipe their data to join it.
      done(
        'error',
        `cluster.json of ${master} now says standalone, but it was a member of [${before.join(', ')}]: ` +
          'the guardian does not bootstrap over it. Find the real master and restart the guardian ' +
          'with it, or bootstrap the cluster deliberately with bootstrapCluster',
      );
      return;
    }
    state.actual = {
      nodes: actual,
      readAt: now(),
      clusterConfigReady: file.cluster.clusterConfigReady,
      nodeConfigReady: file.cluster.nodeConfigReady,
    };
    const followed = followMaster(master, actual);
    if (followed !== master) {
      note(`cluster.json of ${master} names ${followed} as the master: following it`);
      state.master = followed;
      wake = true;
      done('error', `${master} is not the master; reading ${followed}'s cluster.json next`);
      return;
    }
    const key = reconciliationKey(actual, desired);
    if (state.settled?.key === key && !forced) {
      done(state.settled.outcome, state.lastCheck?.message ?? '');
      return;
    }
    forced = false;
    const setsDiffer = actual.length !== desired.length || actual.some((n) => !desired.includes(n));
    let middleware: MembershipMiddleware[] = input.middleware ?? [...membershipMiddleware];
    if (setsDiffer && !input.middleware) {
      try {
        const enabled = await onNode<MiddlewareActivities>(master).enabledMiddleware();
        middleware = membershipMiddleware.filter((m) => enabled.includes(m));
      } catch (err) {
        done('error', `cannot ask ${master} which middleware it runs: ${causeMessage(err)}`);
        return;
      }
    }
    let decision;
    try {
      decision = decideReconciliation(actual, desired, middleware, {
        clusterId,
        stepAttempts: input.stepAttempts,
        agentTimeoutSeconds: input.agentTimeoutSeconds,
        ...(input.middleware ? { middleware: input.middleware } : {}),
      });
    } catch (err) {
      done(
        'error',
        `cannot plan [${actual.join(', ')}] → [${desired.join(', ')}]: ${(err as Error).message}`,
      );
      return;
    }
    if (decision.action === 'none') {
      if (state.unsafe) note('the unsafe change is gone: the members are as desired');
      state.unsafe = undefined;
      state.settled = undefined;
      if (await rejoinPending(actual)) return;
      done(
        decision.kind === 'unchanged' ? 'in-sync' : 'reordered',
        [decision.message, ...decision.warnings].join(' '),
      );
      return;
    }
    if (decision.action === 'unsafe') {
      await refuseUnsafe(key, actual, desired, decision.reason, decision.guide);
      return;
    }
    state.unsafe = undefined;
    note(
      `${decision.message}${decision.warnings.length ? ` (${decision.warnings.join(' ')})` : ''}`,
    );
    for (const warning of decision.warnings) log.warn(warning);
    await reconcile(
      key,
      actual,
      desired,
      decision.children,
      decision.webappNodes,
      decision.plan.remove,
      decision.plan.masterAfter,
    );
  }

  tag();
  publish();
  const intervalMs = Math.round(input.intervalSeconds * 1000);
  for (;;) {
    state.ticks += 1;
    state.totalTicks += 1;
    if (state.paused)
      done(state.lastCheck?.outcome ?? 'no-desired', `paused: ${state.paused.reason}`);
    else await check();
    if (state.ticks >= input.maxTicksPerRun || workflowInfo().continueAsNewSuggested) break;
    await condition(() => wake, intervalMs);
    wake = false;
  }
  await condition(allHandlersFinished);
  const next: GuardianCarried = {
    master: state.master,
    desired: state.desired,
    actual: state.actual,
    lastCheck: state.lastCheck,
    lastChild: state.lastChild,
    unsafe: state.unsafe,
    settled: state.settled,
    paused: state.paused,
    pendingRejoins: state.pendingRejoins,
    totalTicks: state.totalTicks,
    run: state.run,
    history: state.history,
    events: state.events,
  };
  return continueAsNew<typeof clusterGuardian>({
    clusterId,
    master: state.master,
    ...(input.source ? { source: input.source } : {}),
    intervalSeconds: input.intervalSeconds,
    dryRun: input.dryRun,
    ...(input.middleware ? { middleware: input.middleware } : {}),
    stepAttempts: input.stepAttempts,
    agentTimeoutSeconds: input.agentTimeoutSeconds,
    maxTicksPerRun: input.maxTicksPerRun,
    carried: JSON.parse(JSON.stringify(next)) as GuardianCarried,
  });
}
