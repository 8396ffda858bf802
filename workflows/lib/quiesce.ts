import { patched, proxyActivities, workflowInfo } from '@temporalio/workflow';
import type { WebappActivities, WebappResult } from '../../activities/guardian-activities.js';
import { nodeTaskQueue } from '../../src/contracts/addresses.js';
import { nonRetryableErrorTypes } from '../../src/contracts/errors.js';
import { isUnclaimed } from './runbook.js';
import type { RunbookBase } from './open.js';

/**
 * Quiesce (docs/design.md "Admission"): a membership change, a restore and an import stop the
 * application's webapps on the cluster's nodes before they change anything and start them after,
 * however they end, whoever started them: the guardian's `controlWebapps` on each node's queue,
 * one progress step per node and action (`webapps:stop:<node>`). A node whose agent does not
 * answer runs no webapp that could be stopped: its step is skipped, as the guardian does. A
 * child runbook leaves this to its parent (the guardian, bootstrapCluster, decommissionNodes),
 * which quiesces around all of its children. Runs recorded before this replay without it.
 */
export class Webapps {
  private stopped: string[] = [];
  private active = false;

  /** `except`: nodes whose webapps are not started again (they left the cluster). */
  constructor(
    private readonly ctx: RunbookBase,
    private readonly nodes: string[],
    private readonly except: string[] = [],
  ) {}

  /** Stops the webapps of every node; a stop that fails after its attempts parks. */
  async stop(): Promise<void> {
    if (workflowInfo().parent || !patched('runbook-quiesce')) return;
    this.active = true;
    const done = await Promise.all(this.nodes.map((n) => this.control('stop', n)));
    this.stopped = done.filter((n): n is string => n !== undefined);
    this.ctx.rb.state = `the webapps of [${this.stopped.join(', ')}] are stopped; ${this.ctx.rb.state}`;
  }

  /** Starts them again where they were stopped, except on the nodes that left. */
  async start(): Promise<void> {
    if (!this.active) return;
    this.active = false;
    await Promise.all(
      this.stopped.filter((n) => !this.except.includes(n)).map((n) => this.control('start', n)),
    );
  }

  private async control(action: 'stop' | 'start', node: string): Promise<string | undefined> {
    const { rb, attempts, agentTimeoutSeconds } = this.ctx;
    const webapps = proxyActivities<WebappActivities>({
      taskQueue: nodeTaskQueue(node),
      summary: `webapps ${action}`,
      startToCloseTimeout: '30m',
      heartbeatTimeout: '30s',
      scheduleToStartTimeout: `${agentTimeoutSeconds}s`,
      retry: {
        initialInterval: '1s',
        maximumInterval: '10s',
        maximumAttempts: attempts,
        nonRetryableErrorTypes,
      },
    });
    const id = `webapps:${action}:${node}`;
    const text = await rb.step(
      id,
      { title: `${action} the webapps on ${node}`, node },
      async () => {
        try {
          const r: WebappResult = await webapps.controlWebapps({ action });
          return `${r.outcome}: ${r.detail}`;
        } catch (err) {
          if (isUnclaimed(err)) return 'agent not answering: skipped';
          throw err;
        }
      },
    );
    // The same line as the guardian's record of it (workflows/guardian/core.ts).
    rb.tracker.update(id, {
      title: `webapps ${action} on ${node}: ${text ?? 'skipped by an operator'}`,
      ...(text?.startsWith('done') ? {} : { status: 'skipped' as const }),
    });
    return text?.startsWith('done') ? node : undefined;
  }
}
