import {
  allHandlersFinished,
  condition,
  continueAsNew,
  log,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { MembershipActivities } from '../activities/membership-activities.js';
import type { MiddlewareActivities } from '../activities/middleware-activities.js';
import { nodeAddressSchema } from '../src/contracts/addresses.js';
import { standaloneAddress } from '../src/contracts/cluster-file.js';
import {
  desiredNodes,
  setMembershipSchema,
  type ClusterGuardianInput,
  type GuardianCarried,
  type GuardianState,
} from '../src/contracts/guardian.js';
import {
  decideReconciliation,
  followMaster,
  reconciliationKey,
} from '../src/contracts/guardian-decision.js';
import {
  membershipMiddleware,
  type MembershipMiddleware,
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
import { described } from '../src/contracts/message-descriptions.js';
import { GuardianCore, now } from './guardian/core.js';
import { checkHealth } from './guardian/health.js';
import { causeMessage } from './lib/runbook.js';
import { runbookInput } from './lib/open.js';

const sameList = (a: readonly string[] | undefined, b: readonly string[] | undefined) =>
  !!a && !!b && a.length === b.length && a.every((n, i) => n === b[i]);

/**
 * One per cluster, forever (docs/design.md): compares the desired membership (pushed with
 * `setMembership`, or polled from the controller) with the master's cluster.json on a timer and
 * runs, as a child under the cluster's membership id, the runbook that reconciles them. Each
 * child first runs as a dry run, so that its live quorum pre-check can refuse before the
 * webapps are stopped. A change that would lose quorum changes nothing: it raises
 * `guardian.unsafe-membership` and shows the recovery guide in the details.
 */
export async function clusterGuardian(rawInput: ClusterGuardianInput): Promise<never> {
  return new ClusterGuardian(runbookInput('clusterGuardian', rawInput)).run();
}

/**
 * The guardian as an object: its state and helpers (GuardianCore), the handlers of its
 * messages, which only change state and wake the loop, and the loop: check, sleep, and
 * continue-as-new once the run is long, after its handlers have finished.
 */
class ClusterGuardian extends GuardianCore {
  constructor(input: ConstructorParameters<typeof GuardianCore>[0]) {
    super(input);
    setHandler(
      guardianStateQuery,
      () => JSON.parse(JSON.stringify(this.state)) as GuardianState,
      described(guardianStateQuery),
    );
    setHandler(progressQuery, () => this.progress(), described(progressQuery));
    setHandler(pauseSignal, (reason?: string) => this.pause(reason), described(pauseSignal));
    setHandler(resumeSignal, () => this.resume(), described(resumeSignal));
    setHandler(reconcileSignal, (arg) => this.requestReconcile(arg), described(reconcileSignal));
    setHandler(setMembershipUpdate, (arg) => this.setMembership(arg), {
      ...described(setMembershipUpdate),
      validator: (arg) => this.validateSetMembership(arg),
    });
  }

  async run(): Promise<never> {
    const { state, input } = this;
    this.tag();
    this.publish();
    const intervalMs = Math.round(input.intervalSeconds * 1000);
    for (;;) {
      state.ticks += 1;
      state.totalTicks += 1;
      if (state.paused)
        this.done(state.lastCheck?.outcome ?? 'no-desired', `paused: ${state.paused.reason}`);
      else await this.check();
      if (state.ticks >= input.maxTicksPerRun || workflowInfo().continueAsNewSuggested) break;
      await condition(() => this.wake, intervalMs);
      this.wake = false;
    }
    await condition(allHandlersFinished);
    return this.continueAsNew();
  }

  private continueAsNew(): Promise<never> {
    const { state, input } = this;
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
      ...(state.health ? { health: state.health } : {}),
    };
    return continueAsNew<typeof clusterGuardian>({
      clusterId: this.clusterId,
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

  // --- message handlers ------------------------------------------------------------------------

  private progress(): Progress {
    const { state } = this;
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
      clusterId: this.clusterId,
      status: 'running',
      ...(state.paused ? { paused: state.paused } : {}),
      steps,
      updatedAt: state.lastCheck?.at ?? now(),
    };
  }

  private pause(reason?: string): void {
    if (this.state.paused) return;
    this.state.paused = { reason: reason ?? 'paused by an operator', since: now() };
    this.note(`paused: ${this.state.paused.reason}`);
    this.publish();
  }

  private resume(): void {
    if (!this.state.paused) return;
    this.state.paused = undefined;
    this.note('resumed');
    this.wake = true;
    this.publish();
  }

  private requestReconcile(arg: { node?: string; reason?: string } | undefined): void {
    this.forced = true;
    this.wake = true;
    const node = arg?.node === undefined ? undefined : nodeAddressSchema.safeParse(arg.node);
    if (node?.success && !this.state.pendingRejoins.includes(node.data)) {
      this.state.pendingRejoins.push(node.data);
      this.note(`${node.data} asks to be rejoined${arg?.reason ? `: ${arg.reason}` : ''}`);
    } else {
      this.note(`reconcile requested${arg?.reason ? `: ${arg.reason}` : ''}`);
    }
  }

  private validateSetMembership(arg: unknown): void {
    const { input, clusterId } = this;
    if (input.source) {
      throw new Error(
        `the desired membership of ${clusterId} comes from the controller at ${input.source.controllerUrl}; ` +
          'change it there (or start the guardian without `source` to push it with setMembership)',
      );
    }
    const parsed = setMembershipSchema.safeParse(arg);
    if (!parsed.success)
      throw new Error(`invalid setMembership: ${describeZodError(parsed.error)}`);
  }

  private setMembership(arg: unknown): string {
    const { state, clusterId } = this;
    const parsed = setMembershipSchema.parse(arg);
    const nodes = desiredNodes(parsed);
    state.desired = {
      nodes,
      from: 'update',
      at: now(),
      ...(parsed.reason ? { reason: parsed.reason } : {}),
    };
    this.note(
      `desired membership set to [${nodes.join(', ')}]${parsed.reason ? `: ${parsed.reason}` : ''}`,
    );
    this.tag();
    this.wake = true;
    this.publish();
    const actual = state.actual?.nodes;
    let preview = 'it is compared with cluster.json at the next check';
    if (actual) {
      try {
        const d = decideReconciliation(
          actual,
          nodes,
          this.input.middleware ?? [...membershipMiddleware],
          { clusterId },
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
  }

  // --- the check -------------------------------------------------------------------------------

  /** Every member's health (docs/guardian.md, "Health"); a change is noted and raised as an event. */
  private async watchHealth(members: string[]): Promise<void> {
    const changes = await checkHealth(this.state, members, now());
    for (const c of changes) {
      this.note(
        c.healthy
          ? `${c.node} is healthy again`
          : `${c.node} is unhealthy: ${c.problems.join('; ')}`,
      );
      await this.emit(
        c.healthy ? 'io.clusterguard.node.recovered' : 'io.clusterguard.node.unhealthy',
        { node: c.node, problems: c.problems },
        c.node,
      );
    }
    this.publish();
  }

  private async check(): Promise<void> {
    const { state, input, clusterId } = this;
    if (input.source) {
      try {
        const answer = await this.controller.fetchControllerCluster({
          url: input.source.controllerUrl,
          timeoutSeconds: input.source.timeoutSeconds,
        });
        if (!sameList(state.desired?.nodes, answer.nodes)) {
          this.note(`the controller wants [${answer.nodes.join(', ')}]`);
          state.desired = {
            nodes: answer.nodes,
            from: 'controller',
            at: now(),
            offline: answer.offline,
          };
          this.tag();
        } else if (state.desired) {
          state.desired.offline = answer.offline;
        }
      } catch (err) {
        this.done('error', `${causeMessage(err)}`);
        return;
      }
    }
    const desired = state.desired?.nodes;
    if (!desired) {
      // Nothing to compare: nothing is read either, so an idle guardian costs one timer a tick.
      this.done('no-desired', 'no desired membership yet: push one with the update setMembership');
      return;
    }
    const master = state.master;
    let file;
    try {
      file = await this.onNode<MembershipActivities>(master).readClusterState();
    } catch (err) {
      this.done(
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
      this.done(
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
      this.note(`cluster.json of ${master} names ${followed} as the master: following it`);
      state.master = followed;
      this.wake = true;
      this.done('error', `${master} is not the master; reading ${followed}'s cluster.json next`);
      return;
    }
    // Runs recorded before the guardian watched health replay without it.
    if (patched('guardian-watches-health')) await this.watchHealth(actual);
    const key = reconciliationKey(actual, desired);
    if (state.settled?.key === key && !this.forced) {
      this.done(state.settled.outcome, state.lastCheck?.message ?? '');
      return;
    }
    this.forced = false;
    const setsDiffer = actual.length !== desired.length || actual.some((n) => !desired.includes(n));
    let middleware: MembershipMiddleware[] = input.middleware ?? [...membershipMiddleware];
    if (setsDiffer && !input.middleware) {
      try {
        const enabled = await this.onNode<MiddlewareActivities>(master).enabledMiddleware();
        middleware = membershipMiddleware.filter((m) => enabled.includes(m));
      } catch (err) {
        this.done('error', `cannot ask ${master} which middleware it runs: ${causeMessage(err)}`);
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
      this.done(
        'error',
        `cannot plan [${actual.join(', ')}] → [${desired.join(', ')}]: ${(err as Error).message}`,
      );
      return;
    }
    if (decision.action === 'none') {
      if (state.unsafe) this.note('the unsafe change is gone: the members are as desired');
      state.unsafe = undefined;
      state.settled = undefined;
      if (await this.rejoinPending(actual)) return;
      this.done(
        decision.kind === 'unchanged' ? 'in-sync' : 'reordered',
        [decision.message, ...decision.warnings].join(' '),
      );
      return;
    }
    if (decision.action === 'unsafe') {
      await this.refuseUnsafe(key, actual, desired, decision.reason, decision.guide);
      return;
    }
    state.unsafe = undefined;
    this.note(
      `${decision.message}${decision.warnings.length ? ` (${decision.warnings.join(' ')})` : ''}`,
    );
    for (const warning of decision.warnings) log.warn(warning);
    await this.reconcile(
      key,
      actual,
      desired,
      decision.children,
      decision.webappNodes,
      decision.plan.remove,
      decision.plan.masterAfter,
    );
  }
}
