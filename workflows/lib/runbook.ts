import { TimeoutType } from '@temporalio/common';
import {
  ActivityFailure,
  ApplicationFailure,
  CancellationScope,
  ChildWorkflowFailure,
  TimeoutFailure,
  condition,
  isCancellation,
  log,
  proxyActivities,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import type { EventActivities } from '../../activities/event-activities.js';
import type { MembershipActivities } from '../../activities/membership-activities.js';
import type { MiddlewareActivities } from '../../activities/middleware-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import type { RunbookEventType } from '../../src/contracts/events.js';
import type { Progress } from '../../src/contracts/progress.js';
import {
  abortUpdate,
  pauseSignal,
  progressQuery,
  resumeSignal,
  retryStepUpdate,
  skipNodeUpdate,
} from '../../src/contracts/messages.js';
import { described } from '../../src/contracts/message-descriptions.js';
import { ProgressTracker } from './progress-tracker.js';

/** The failure a step gets when no agent claimed its task in time: the node is not answering. */
export function isUnclaimed(err: unknown): boolean {
  return (
    err instanceof ActivityFailure &&
    err.cause instanceof TimeoutFailure &&
    err.cause.timeoutType === TimeoutType.SCHEDULE_TO_START
  );
}

/** The innermost message: an activity's or child's own words, not Temporal's wrapper. */
export function causeMessage(err: unknown): string {
  let e: unknown = err;
  while ((e instanceof ActivityFailure || e instanceof ChildWorkflowFailure) && e.cause)
    e = e.cause;
  return e instanceof Error ? e.message : String(e);
}

export interface StepOptions {
  title: string;
  node?: string;
  /**
   * Whether `skipNode` may skip this step once it is parked: undefined when it may, else why
   * not. Without it the step can never be skipped.
   */
  canSkip?: () => string | undefined;
  /** Shown in `progress` while the step runs, e.g. "waiting for master 127.0.0.11". */
  waitingText?: string;
}

type Decision =
  { kind: 'retry' } | { kind: 'skip'; reason: string } | { kind: 'abort'; reason: string };

interface Parked {
  step: string;
  node?: string;
  reason: string;
  since: string;
  canSkip?: () => string | undefined;
  /** Not failed: its node does not answer. Retried by itself, so retryStep does not apply. */
  unreachable?: boolean;
  decision?: Decision;
}

export interface NodeCallOptions {
  attempts: number;
  agentTimeoutSeconds: number;
  summary: string;
  /** Long steps (start, join, decommission, download) get more. */
  startToCloseTimeout?: string;
  heartbeatTimeout?: string;
}

export type NodeActivities = MiddlewareActivities & MembershipActivities;

/** How long a step asks an unreachable node again before the next ask is recorded. */
const askAgainSeconds = 600;

/** The activities of one node's agent, on its own task queue, retried `attempts` times. */
export function onNode(node: string, o: NodeCallOptions): NodeActivities {
  return proxyActivities<NodeActivities>({
    taskQueue: nodeTaskQueue(node),
    summary: o.summary,
    startToCloseTimeout: o.startToCloseTimeout ?? '30m',
    heartbeatTimeout: o.heartbeatTimeout ?? '60s',
    // Not a retry budget: how soon a silent node shows as unreachable in `progress`.
    scheduleToStartTimeout: `${o.agentTimeoutSeconds}s`,
    retry: {
      initialInterval: '2s',
      backoffCoefficient: 2,
      maximumInterval: '30s',
      maximumAttempts: o.attempts,
      nonRetryableErrorTypes,
    },
  });
}

/**
 * What every stepwise runbook shares: progress, pause/resume between steps, parking a step that
 * exhausted its attempts until an operator decides (retryStep, skipNode, abort), and events.
 */
export class Runbook {
  readonly tracker: ProgressTracker;
  readonly skipped: { step: string; node?: string; reason: string }[] = [];
  /** One sentence on the cluster's state now, for an abort's message. Runbooks keep it current. */
  state = 'nothing has been changed yet';
  /** Members whose Kafka receives the events (brokers are derived from them). */
  eventNodes: string[] = [];
  private paused?: { reason: string; since: string };
  private abortWhilePaused?: string;
  private readonly parked = new Map<string, Parked>();
  private eventCount = 0;
  private readonly events: EventActivities;
  /** See `patience()`. */
  private askAgain?: number;

  constructor(
    readonly name: string,
    readonly clusterId: string,
    readonly options: { attempts: number; agentTimeoutSeconds: number },
  ) {
    this.tracker = new ProgressTracker(name, clusterId, []);
    this.events = proxyActivities<EventActivities>({
      taskQueue: workflowInfo().taskQueue,
      // Publishing only enqueues on the orchestrator; Kafka being down never holds a step.
      startToCloseTimeout: '15s',
      retry: { maximumAttempts: 3, initialInterval: '1s' },
    });
    this.registerHandlers();
  }

  private registerHandlers(): void {
    setHandler(progressQuery, (): Progress => this.tracker.snapshot(), described(progressQuery));
    setHandler(
      pauseSignal,
      (reason?: string) => {
        if (this.paused) return;
        this.paused = {
          reason: reason ?? 'paused by an operator',
          since: new Date().toISOString(),
        };
        this.tracker.setPaused(this.paused);
      },
      described(pauseSignal),
    );
    setHandler(
      resumeSignal,
      () => {
        this.paused = undefined;
        this.tracker.setPaused(undefined);
      },
      described(resumeSignal),
    );
    setHandler(
      retryStepUpdate,
      (arg) => {
        const entry = this.parkedFor(arg?.step, true);
        entry.decision = { kind: 'retry' };
        return `retrying ${entry.step}`;
      },
      {
        ...described(retryStepUpdate),
        validator: (arg: { step?: string } | undefined) => void this.parkedFor(arg?.step, true),
      },
    );
    setHandler(
      skipNodeUpdate,
      (arg) => {
        const steps = this.skippable(arg.node, arg.reason);
        for (const s of steps) s.decision = { kind: 'skip', reason: arg.reason.trim() };
        return `skipping ${steps.map((s) => s.step).join(', ')} on ${arg.node}`;
      },
      {
        ...described(skipNodeUpdate),
        validator: (arg: { node: string; reason: string }) =>
          void this.skippable(arg?.node, arg?.reason),
      },
    );
    setHandler(
      abortUpdate,
      (arg) => {
        const reason = this.abortReason(arg.reason);
        if (this.parked.size === 0) this.abortWhilePaused = reason;
        for (const p of this.parked.values()) p.decision = { kind: 'abort', reason };
        return `aborting ${this.name}: ${this.state}`;
      },
      {
        ...described(abortUpdate),
        validator: (arg: { reason: string }) => void this.abortReason(arg?.reason),
      },
    );
  }

  private parkedFor(step: string | undefined, retry: boolean): Parked {
    if (step !== undefined && typeof step !== 'string') throw new Error('step must be a step id');
    const failed = [...this.parked.values()].filter((p) => !retry || !p.unreachable);
    if (failed.length === 0) {
      const waiting = [...this.parked.values()].filter((p) => p.unreachable);
      throw new Error(
        `no step of ${this.name} is parked` +
          (waiting.length
            ? `; ${waiting.map((p) => `${p.step} (${p.node ?? '?'})`).join(', ')} waits for an unreachable node and is retried by itself`
            : ''),
      );
    }
    if (step === undefined) {
      const [only, second] = failed;
      if (second || !only) {
        throw new Error(
          `several steps are parked (${failed.map((p) => p.step).join(', ')}): name one with { step }`,
        );
      }
      return only;
    }
    const entry = failed.find((p) => p.step === step);
    if (!entry) {
      throw new Error(
        `step ${step} is not parked; parked: ${failed.map((p) => p.step).join(', ') || 'none'}`,
      );
    }
    return entry;
  }

  private skippable(node: string | undefined, reason: string | undefined): Parked[] {
    if (typeof node !== 'string') throw new Error('skipNode needs { node, reason }');
    if (typeof reason !== 'string' || !reason.trim()) {
      throw new Error('skipNode needs a reason; it is kept in the result and the history');
    }
    const steps = [...this.parked.values()].filter((p) => p.node === node);
    if (steps.length === 0) {
      throw new Error(
        `no step of node ${node} is parked; parked: ${[...this.parked.values()].map((p) => `${p.step}${p.node ? ` (${p.node})` : ''}`).join(', ') || 'none'}`,
      );
    }
    for (const s of steps) {
      const unsafe = s.canSkip ? s.canSkip() : 'this step cannot be skipped';
      if (unsafe) throw new Error(`cannot skip ${s.step} on ${node}: ${unsafe}`);
    }
    return steps;
  }

  private abortReason(reason: string | undefined): string {
    if (typeof reason !== 'string' || !reason.trim()) {
      throw new Error('abort needs a reason; it is kept in the failure and the history');
    }
    if (this.parked.size === 0 && !this.paused) {
      throw new Error(
        `${this.name} is neither parked nor paused: pause it first (signal pause), then abort`,
      );
    }
    return reason.trim();
  }

  /**
   * The schedule-to-start timeout for node calls made while a step starts: after its node was
   * found unreachable the step asks again with a long one, so that a node that stays down for
   * hours costs a few history events per hour, and one that comes back is served at once.
   * Read synchronously by `nodeCalls` when a step's function creates its activity stubs.
   */
  patience(): number | undefined {
    return this.askAgain;
  }

  /** A pause point: waits while paused; throws when an operator aborted while paused. */
  async checkpoint(): Promise<void> {
    await condition(() => !this.paused || this.abortWhilePaused !== undefined);
    if (this.abortWhilePaused !== undefined) throw this.aborted('(paused)', this.abortWhilePaused);
  }

  private aborted(step: string, reason: string): ApplicationFailure {
    // The runbook ends here, wherever the abort is thrown: `progress` says so, not "paused".
    this.paused = undefined;
    this.tracker.setPaused(undefined);
    this.tracker.finish('failed');
    return ApplicationFailure.nonRetryable(
      `${this.name} of cluster ${this.clusterId} was aborted by an operator at step ${step}: ` +
        `${reason}. State: ${this.state}.`,
      'Aborted',
    );
  }

  /**
   * Runs `fn` as step `id`. A node that claims nothing within the agent timeout shows as
   * waiting and is asked again; a step that fails after its attempts parks until an operator
   * decides. Resolves undefined when the operator skipped it.
   */
  async step<T>(id: string, options: StepOptions, fn: () => Promise<T>): Promise<T | undefined> {
    if (!this.tracker.has(id)) {
      this.tracker.addSteps([{ id, title: options.title, node: options.node }]);
    }
    await this.checkpoint();
    let attempts = 0;
    // Set while the node's agent does not claim the step: the call is repeated, and an
    // operator may skip (where safe) or abort meanwhile, which cancels the pending call.
    let unreachable: Parked | undefined;
    const clearUnreachable = () => {
      if (!unreachable) return;
      this.parked.delete(id);
      unreachable = undefined;
      this.publishParked();
    };
    for (;;) {
      if (!unreachable) {
        this.tracker.update(id, {
          status: options.waitingText ? 'waiting' : 'running',
          lastError: options.waitingText,
        });
      }
      const scope = new CancellationScope();
      this.askAgain = unreachable
        ? Math.max(this.options.agentTimeoutSeconds, askAgainSeconds)
        : undefined;
      const running = scope.run(fn);
      this.askAgain = undefined;
      const settled = running.then(
        (value) => ({ kind: 'value' as const, value }),
        (err: unknown) => ({ kind: 'error' as const, err }),
      );
      const waitingFor = unreachable;
      const outcome = waitingFor
        ? await Promise.race([
            settled,
            condition(
              () => waitingFor.decision !== undefined || this.abortWhilePaused !== undefined,
            ).then(() => ({ kind: 'decided' as const })),
          ])
        : await settled;
      if (outcome.kind === 'decided') {
        scope.cancel();
        await settled;
        const decision: Decision = waitingFor?.decision ?? {
          kind: 'abort',
          reason: this.abortWhilePaused ?? 'aborted',
        };
        clearUnreachable();
        const done = this.decide(id, options, decision);
        if (done) return undefined;
        continue;
      }
      if (outcome.kind === 'value') {
        clearUnreachable();
        attempts += 1;
        this.tracker.update(id, { status: 'completed', attempts, lastError: undefined });
        return outcome.value;
      }
      const err = outcome.err;
      if (isCancellation(err)) throw err;
      if (isUnclaimed(err)) {
        const reason =
          `no agent on ${options.node ?? '?'} claimed the step within ` +
          `${this.options.agentTimeoutSeconds} s (task queue ${nodeTaskQueue(options.node ?? '?')}): ` +
          'start or repair the node agent there; the runbook keeps asking';
        this.tracker.update(id, { status: 'waiting', lastError: reason });
        if (!unreachable) {
          unreachable = {
            step: id,
            node: options.node,
            reason,
            since: new Date().toISOString(),
            canSkip: options.canSkip,
            unreachable: true,
          };
          this.parked.set(id, unreachable);
          this.publishParked();
        }
        continue;
      }
      clearUnreachable();
      attempts += err instanceof ActivityFailure ? this.options.attempts : 1;
      const decision = await this.park(id, options, causeMessage(err), attempts);
      if (this.decide(id, options, decision)) return undefined;
    }
  }

  /** Applies an operator's decision: true when the step is skipped; throws on abort. */
  private decide(id: string, options: StepOptions, decision: Decision): boolean {
    if (decision.kind === 'retry') return false;
    if (decision.kind === 'skip') {
      this.tracker.update(id, {
        status: 'skipped',
        lastError: `skipped by an operator: ${decision.reason}`,
      });
      this.skipped.push({ step: id, node: options.node, reason: decision.reason });
      return true;
    }
    this.tracker.update(id, { status: 'failed' });
    throw this.aborted(id, decision.reason);
  }

  private async park(
    id: string,
    options: StepOptions,
    reason: string,
    attempts: number,
  ): Promise<Decision> {
    const entry: Parked = {
      step: id,
      node: options.node,
      reason,
      since: new Date().toISOString(),
      canSkip: options.canSkip,
    };
    this.parked.set(id, entry);
    this.tracker.update(id, { status: 'parked', attempts, lastError: reason });
    this.publishParked();
    log.warn('step parked', { step: id, node: options.node, reason });
    await this.emit('runbook.parked', { step: id, reason }, options.node ?? id);
    await condition(() => entry.decision !== undefined);
    this.parked.delete(id);
    this.publishParked();
    return entry.decision ?? { kind: 'retry' };
  }

  private publishParked(): void {
    this.tracker.setParked(
      [...this.parked.values()].map((p) => {
        const accepts = p.unreachable ? ['abort'] : ['retryStep', 'abort'];
        if (p.canSkip && !p.canSkip()) accepts.splice(accepts.length - 1, 0, 'skipNode');
        return {
          step: p.step,
          ...(p.node ? { node: p.node } : {}),
          reason: p.reason,
          since: p.since,
          accepts,
        };
      }),
    );
  }

  /** Publishes an event; never fails the runbook (publishing only enqueues on the orchestrator). */
  async emit(
    type: RunbookEventType extends `io.clusterguard.${infer T}` ? T : never,
    data: Record<string, unknown>,
    subject?: string,
  ): Promise<void> {
    const info = workflowInfo();
    const n = ++this.eventCount;
    try {
      await this.events.publishEvent({
        id: `${info.runId}/${n}`,
        type: `io.clusterguard.${type}`,
        clusterId: this.clusterId,
        runbook: this.name,
        workflowId: info.workflowId,
        ...(subject ? { subject } : {}),
        time: new Date().toISOString(),
        data,
        nodes: this.eventNodes,
      });
    } catch (err) {
      log.warn('event not published', { type, error: causeMessage(err) });
    }
  }

  /** The revision a cluster.json write of step `step` carries (see writeClusterState). */
  revision(step: string): string {
    const info = workflowInfo();
    return `${info.workflowId}/${info.runId}/${step}`;
  }
}

/** A runbook's `Runbook` and the context its node steps need, from its common options. */
export function startRunbook(
  name: string,
  clusterId: string,
  options: { stepAttempts: number; agentTimeoutSeconds: number },
): { rb: Runbook; attempts: number; agentTimeoutSeconds: number } {
  const attempts = options.stepAttempts;
  const { agentTimeoutSeconds } = options;
  return {
    rb: new Runbook(name, clusterId, { attempts, agentTimeoutSeconds }),
    attempts,
    agentTimeoutSeconds,
  };
}
