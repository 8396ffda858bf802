import {
  ApplicationFailure,
  condition,
  isCancellation,
  patched,
  setHandler,
  workflowInfo,
} from '@temporalio/workflow';
import {
  approveArgSchema,
  bundleWorkflowId,
  exceedsFailures,
  planRollback,
  planRollout,
  type BundleMeta,
  type BundlesView,
  type InspectBundleResult,
  type NodeInstall,
  type NodeRolloutReport,
  type RolloutBundleInput,
  type RolloutBundleResult,
  type RolloutPlan,
} from '../src/contracts/bundles.js';
import { describeZodError } from '../src/contracts/validation.js';
import { approveUpdate, bundlesQuery } from '../src/contracts/messages.js';
import { bundleCalls } from './lib/bundle-converge.js';
import { recordAndShowBundles } from './lib/bundle-view.js';
import { readMembers } from './lib/data.js';
import { tagRunbook } from './lib/membership.js';
import { openRunbook } from './lib/open.js';
import { causeMessage, isUnclaimed } from './lib/runbook.js';

type Version = { version: string; sha256: string };

function refuse(message: string): ApplicationFailure {
  return ApplicationFailure.nonRetryable(message, 'InvalidInput');
}

/**
 * Rolls a stored bundle out to a cluster (issue 6, seeds 000/003): node by node in batches,
 * skipping nodes already at this version, with an optional canary batch that waits for the
 * `approve` update, a named health check per node, and — when failures exceed `maxFailures` —
 * a rollback of every node it changed to the version each had before.
 */
export async function rolloutBundle(rawInput: RolloutBundleInput): Promise<RolloutBundleResult> {
  const { input, ...ctx } = await openRunbook('rolloutBundle', rawInput);
  const { clusterId, sha256 } = input;
  const { rb } = ctx;
  const info = workflowInfo();
  const datetime = new Date().toISOString();

  const view: BundlesView = { sha256, phase: 'inspecting', nodes: [] };
  setHandler(bundlesQuery, () => view);
  let waitingForApproval = false;
  let approval: { by?: string; reject?: string } | undefined;
  setHandler(
    approveUpdate,
    (arg) => {
      approval = approveArgSchema.parse(arg ?? {});
      return approval.reject
        ? `rejected: rolling back ${view.symbolicName ?? sha256}`
        : `approved: rolling out ${view.symbolicName ?? sha256} to the remaining nodes`;
    },
    {
      validator: (arg) => {
        if (!waitingForApproval || approval) {
          throw new Error(
            `rolloutBundle is not waiting for approval (phase ${view.phase}); approve is ` +
              'accepted after the canary batch of a rollout started with canary',
          );
        }
        const parsed = approveArgSchema.safeParse(arg ?? {});
        if (!parsed.success) throw new Error(`invalid approve: ${describeZodError(parsed.error)}`);
      },
    },
  );

  // --- which nodes, and what they hold ----------------------------------------------------------
  let members: string[] | undefined;
  if (input.master) members = (await readMembers(ctx, input.master)).members;
  const nodes = input.nodes ?? members ?? [];
  const strangers = members ? nodes.filter((n) => !members.includes(n)) : [];
  if (strangers.length > 0) {
    throw refuse(
      `rolloutBundle of cluster ${clusterId}: ${strangers.join(', ')} are not members of the ` +
        `cluster (${(members ?? []).join(', ')}). Nothing was changed: name members only`,
    );
  }
  tagRunbook('rolloutBundle', clusterId, nodes);
  const asked = input.source && !nodes.includes(input.source) ? [...nodes, input.source] : nodes;
  const inspected = await Promise.all(
    asked.map((node) =>
      rb.step(
        `inspect:${node}`,
        { title: 'what this node holds and runs', node },
        (): Promise<InspectBundleResult> =>
          bundleCalls(ctx, node, 'inspectBundle', false).inspectBundle({
            sha256,
            ...(input.healthCheck ? { healthCheck: input.healthCheck } : {}),
          }),
      ),
    ),
  );
  const found = inspected.filter((i): i is InspectBundleResult => i !== undefined);
  const holders = found.filter((i) => i.stored).map((i) => i.node);
  const meta: BundleMeta | undefined = found.find((i) => i.stored)?.stored;
  if (!meta) {
    throw refuse(
      `rolloutBundle of cluster ${clusterId}: no agent of ${asked.join(', ')} holds bundle ` +
        `${sha256}. Nothing was changed: upload it (POST /v1/bundles) and name that agent as source`,
    );
  }
  const { symbolicName, version } = meta;
  view.symbolicName = symbolicName;
  view.version = version;
  const lacking = found
    .filter((i) => nodes.includes(i.node) && !i.healthCheckKnown)
    .map((i) => i.node);
  if (lacking.length > 0) {
    throw refuse(
      `rolloutBundle of ${symbolicName} ${version}: the health check "${input.healthCheck}" is not ` +
        `configured on ${lacking.join(', ')} (bundles.healthChecks in the agent config). Nothing ` +
        'was installed: configure it there or name another one',
    );
  }
  const expectedId = bundleWorkflowId(clusterId, symbolicName);
  if (!input.dryRun && info.workflowId !== expectedId) {
    throw refuse(
      `rolloutBundle of ${symbolicName} runs as workflow id ${info.workflowId}, but a rollout of ` +
        `it must run as ${expectedId} so that a bundle never has two rollouts at once. Nothing ` +
        `was changed: start it again with --workflow-id ${expectedId}`,
    );
  }

  const before = new Map<string, Version | undefined>();
  // Skip-when-current: a node whose framework does not run the recorded version is not current.
  const runningNow = new Map<string, Version | undefined>();
  for (const i of found) {
    const e = i.installed.find((b) => b.symbolicName === symbolicName);
    before.set(i.node, e ? { version: e.version, sha256: e.sha256 } : undefined);
    runningNow.set(
      i.node,
      e && e.running?.ok !== false ? { version: e.version, sha256: e.sha256 } : undefined,
    );
  }
  const plan: RolloutPlan = planRollout(nodes, runningNow, { sha256, version }, input);
  const reports = new Map<string, NodeRolloutReport>();
  for (const node of nodes) {
    const current = plan.upToDate.includes(node);
    reports.set(node, {
      node,
      status: current ? 'skipped-current' : 'not-started',
      previous: before.get(node) ?? null,
      ...(current ? { detail: `already runs ${version} (${sha256.slice(0, 12)}…)` } : {}),
    });
  }
  const syncView = (phase: BundlesView['phase']) => {
    view.phase = phase;
    view.nodes = nodes.map((node) => {
      const r = reports.get(node);
      return {
        node,
        before: before.get(node) ?? null,
        status: r?.status ?? 'not-started',
        ...(r?.detail ? { detail: r.detail } : {}),
      };
    });
  };
  /** The rollout's end: its view done, its progress finished, its ending event sent. */
  const end = async (status: 'completed' | 'failed', data: Record<string, unknown>) => {
    syncView('done');
    rb.tracker.finish(status);
    await rb.emit(`runbook.${status}`, { symbolicName, version, sha256, ...data });
  };
  const sources = [...holders];
  let failures = 0;
  let approvedBy: string | undefined;
  const result = (
    outcome: RolloutBundleResult['outcome'],
    reason?: string,
  ): RolloutBundleResult => ({
    runbook: 'rolloutBundle',
    clusterId,
    symbolicName,
    version,
    sha256,
    dryRun: input.dryRun,
    outcome,
    plan,
    nodes: nodes.map((n) => reports.get(n) ?? { node: n, status: 'not-started' }),
    failures,
    ...(approvedBy ? { approvedBy } : {}),
    ...(reason ? { reason } : {}),
  });
  syncView('installing');
  if (input.dryRun) {
    syncView('done');
    return result('planned');
  }

  rb.tracker.addSteps(
    plan.batches.flatMap((batch, b) => [
      ...(plan.canary && b === 1
        ? [{ id: 'approve', title: 'wait for approve after the canary batch' }]
        : []),
      ...batch.map((node) => ({
        id: `install:${node}`,
        title: `install ${symbolicName} ${version}${b === 0 && plan.canary ? ' (canary)' : ''}`,
        node,
      })),
    ]),
  );
  rb.eventNodes = members ?? nodes;
  rb.state = 'no node has been changed yet';
  await rb.emit('runbook.started', { symbolicName, version, sha256, plan });

  // --- install, batch by batch --------------------------------------------------------------------
  const changed: NodeInstall[] = [];
  const attempted: string[] = [];
  let stopReason: string | undefined;

  const installOn = async (node: string) => {
    attempted.push(node);
    reports.set(node, { node, status: 'not-started', previous: before.get(node) ?? null });
    view.nodes = view.nodes.map((v) => (v.node === node ? { ...v, status: 'installing' } : v));
    const outcome = await rb.step(
      `install:${node}`,
      { title: `install ${symbolicName} ${version}`, node },
      async () => {
        try {
          const r = await bundleCalls(ctx, node, `install ${symbolicName}`, true).installBundle({
            sha256,
            symbolicName,
            version,
            // The node's peers that hold it; the first holders took the upload.
            sources: sources.filter((s) => s !== node),
            ...(input.healthCheck ? { healthCheck: input.healthCheck } : {}),
            workflowId: info.workflowId,
            runId: info.runId,
            datetime,
            ...(input.allowDowngrade ? { allowDowngrade: true } : {}),
          });
          return { ok: true as const, r };
        } catch (err) {
          // An unreachable node is waited for (the Runbook shows it); a failed install counts.
          if (isUnclaimed(err) || isCancellation(err)) throw err;
          return { ok: false as const, error: causeMessage(err) };
        }
      },
    );
    if (!outcome) return;
    if (!outcome.ok) {
      failures += 1;
      reports.set(node, {
        node,
        status: 'failed',
        previous: before.get(node) ?? null,
        detail: outcome.error,
      });
      rb.tracker.update(`install:${node}`, { status: 'failed', lastError: outcome.error });
      return;
    }
    const r = outcome.r;
    if (r.outcome === 'installed') {
      changed.push(r);
      if (!sources.includes(node)) sources.push(node);
    }
    if (r.health && !r.health.ok) {
      failures += 1;
      const detail = `health check ${r.health.name} failed after ${r.health.attempts} attempt(s): ${r.health.detail}`;
      reports.set(node, { node, status: 'failed', previous: r.previous, detail });
      rb.tracker.update(`install:${node}`, { status: 'failed', lastError: detail });
      return;
    }
    reports.set(node, {
      node,
      status: r.outcome === 'installed' ? 'installed' : 'skipped-current',
      previous: r.previous,
      ...(r.health ? { detail: `health check ${r.health.name}: ${r.health.detail}` } : {}),
    });
    if (r.outcome === 'installed') {
      await rb.emit(
        'bundle.installed',
        { node, symbolicName, version, sha256, previous: r.previous },
        node,
      );
    }
  };

  try {
    for (const [b, batch] of plan.batches.entries()) {
      if (plan.canary && b === 1) {
        syncView('waiting-for-approval');
        waitingForApproval = true;
        rb.tracker.update('approve', {
          status: 'waiting',
          lastError: `canary ${plan.batches[0]?.join(', ')} is healthy: send the update approve (or approve with { reject })`,
        });
        await condition(() => approval !== undefined);
        waitingForApproval = false;
        if (approval?.reject) {
          rb.tracker.update('approve', {
            status: 'failed',
            lastError: `rejected: ${approval.reject}`,
          });
          stopReason = `the canary was rejected: ${approval.reject}`;
          break;
        }
        approvedBy = approval?.by ?? 'an operator';
        rb.tracker.update('approve', { status: 'completed', lastError: undefined });
        syncView('installing');
      }
      await Promise.all(batch.map((node) => installOn(node)));
      syncView('installing');
      rb.state = `${changed.map((c) => c.node).join(', ') || 'no node'} now run(s) ${symbolicName} ${version}`;
      if (exceedsFailures(failures, input.maxFailures)) {
        stopReason =
          `${failures} node(s) failed, more than maxFailures ${input.maxFailures}: ` +
          nodes
            .filter((n) => reports.get(n)?.status === 'failed')
            .map((n) => `${n} (${reports.get(n)?.detail ?? 'failed'})`)
            .join('; ');
        break;
      }
    }

    if (stopReason === undefined) {
      if (patched('bundle-desired-set')) {
        const shown = await recordAndShowBundles(ctx, {
          nodes,
          recordOn: [input.master ?? nodes[0] ?? ''].filter(Boolean),
          desired: { symbolicName, version, sha256, workflowId: info.workflowId, at: datetime },
        });
        view.table = shown.rows;
        if (shown.desiredError) view.desiredError = shown.desiredError;
      }
      await end('completed', {
        installed: changed.map((c) => c.node),
        current: plan.upToDate,
      });
      return result('completed');
    }

    // --- stop: roll back every node this rollout changed ------------------------------------
    for (const n of nodes) {
      if (!attempted.includes(n) && reports.get(n)?.status === 'not-started') {
        rb.tracker.update(`install:${n}`, { status: 'skipped', lastError: 'rollout stopped' });
      }
    }
    syncView('rolling-back');
    const fromChanged = planRollback(changed);
    // A failed install may have replaced the jar before it failed: those are put back as well,
    // and the activity leaves alone a node that does not run this version.
    const failedOnly = attempted
      .filter((n) => reports.get(n)?.status === 'failed' && !changed.some((c) => c.node === n))
      .map((n) => ({ node: n, to: before.get(n) ?? null }));
    const rollbacks = [...fromChanged, ...failedOnly];
    rb.tracker.addSteps(
      rollbacks.map(({ node, to }) => ({
        id: `rollback:${node}`,
        title: to ? `roll back to ${to.version}` : `remove ${symbolicName}`,
        node,
      })),
    );
    await Promise.all(
      rollbacks.map(async ({ node, to }) => {
        const r = await rb.step(
          `rollback:${node}`,
          { title: to ? `roll back to ${to.version}` : `remove ${symbolicName}`, node },
          () =>
            bundleCalls(ctx, node, `roll back ${symbolicName}`, true).rollbackBundle({
              symbolicName,
              from: { version, sha256 },
              to,
              sources: sources.filter((s) => s !== node),
              workflowId: info.workflowId,
              runId: info.runId,
              datetime,
            }),
        );
        if (!r?.changed) return;
        const prior = reports.get(node);
        reports.set(node, {
          node,
          status: 'rolled-back',
          previous: to,
          detail: `${prior?.status === 'failed' ? `${prior.detail ?? 'failed'}; ` : ''}back to ${to ? to.version : 'not installed'}`,
        });
        await rb.emit(
          'bundle.rolled-back',
          { node, symbolicName, from: { version, sha256 }, to },
          node,
        );
      }),
    );
    rb.state = `rolled back ${rollbacks.map((r) => r.node).join(', ') || 'nothing'}`;
    await end('failed', { error: stopReason, state: rb.state });
    return result('rolled-back', stopReason);
  } catch (err) {
    rb.tracker.finish('failed');
    await rb.emit('runbook.failed', {
      symbolicName,
      version,
      error: (err as Error).message,
      state: rb.state,
    });
    throw err;
  }
}
