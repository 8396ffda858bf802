import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowFailedError, type WorkflowHandle } from '@temporalio/client';
import { ApplicationFailure, WorkflowExecutionAlreadyStartedError } from '@temporalio/common';
import { pushBundle } from '../../src/bundles/client.js';
import { orchestratorTaskQueue } from '../../src/contracts/addresses.js';
import { bundleWorkflowId, type RolloutBundleResult } from '../../src/contracts/bundles.js';
import type { BackupClusterResult } from '../../src/contracts/data-runbooks.js';
import { master, type Campaign } from './context.js';
import type { Rng } from './rng.js';
import type { GreeterBundles } from '../helpers/felix-bundles.js';
import { progressQuery } from '../../src/contracts/messages.js';

export type Outcome = 'completed' | 'refused' | 'failed' | 'hung';

export interface RunbookRecord {
  type: string;
  outcome: Outcome;
  seconds: number;
  detail: string;
}

/** One runbook the campaign is about to start, and what it does to the campaign's picture. */
export interface Plan {
  type: string;
  workflowId: string;
  membership: boolean;
  /** What it is for, in the progress line. */
  label: string;
  /** Built when it starts (a rollout uploads its jar first). */
  input: () => Promise<Record<string, unknown>>;
  /** Expected to be refused: completing would be a failure of the pre-check. */
  expectRefusal?: boolean;
  onCompleted?: (result: unknown) => void;
}

/**
 * A refusal the runbooks document (README "Membership runbooks"): a pre-check finds that the
 * change would lose a quorum or replicas, and fails before changing anything. It counts as
 * refused only when it came at once, before any step ran for long.
 */
const refusalTypes = new Set(['UnsafeMembershipChange']);
const refusalWithinMs = 120_000;

/** Runbook memory the choices depend on. */
export interface RunbookMemory {
  /** The newest backup and the members it was taken of (verifyBackup asks those). */
  lastBackup?: { id: string; members: string[] };
  rollouts: number;
}

const stepAttempts = 10;

/**
 * The application the rollouts install, in order, into every member's Felix framework (the
 * greeter of test/fixtures/felix-bundles): its API, a provider with a DS component, a consumer
 * of the provider's service; after that each rollout swaps the provider between 1.0.0 and
 * 1.1.0 in the running frameworks (the consumer is refreshed and greets the new version).
 */
export const greeter = {
  api: 'com.example.greeter.api',
  provider: 'com.example.greeter.provider',
  consumer: 'com.example.greeter.consumer',
};

function appRollout(k: number): {
  jar: keyof GreeterBundles;
  symbolicName: string;
  version: string;
} {
  if (k === 1) return { jar: 'api', symbolicName: greeter.api, version: '1.0.0' };
  if (k === 2) return { jar: 'provider', symbolicName: greeter.provider, version: '1.0.0' };
  if (k === 3) return { jar: 'consumer', symbolicName: greeter.consumer, version: '1.0.0' };
  return k % 2 === 0
    ? { jar: 'provider11', symbolicName: greeter.provider, version: '1.1.0' }
    : { jar: 'provider', symbolicName: greeter.provider, version: '1.0.0' };
}

/** Picks the next runbook from what the cluster is now, so that it always stays valid. */
export function nextRunbook(c: Campaign, rng: Rng, memory: RunbookMemory): Plan {
  const m = master(c);
  const others = c.members.filter((n) => n !== m);
  const spares = c.addresses.filter((n) => !c.members.includes(n));
  const membershipId = `cg/${c.clusterId}/membership`;
  const dataId = `cg/${c.clusterId}/data`;
  const base = { clusterId: c.clusterId, stepAttempts };
  const inOrder = (nodes: string[]) => c.addresses.filter((n) => nodes.includes(n));
  const membershipChanged = () => (memory.lastBackup = undefined);
  const backup = memory.lastBackup;
  const verifiable = backup && backup.members.join() === c.members.join();
  // Draw every number whatever is chosen, so the sequence depends only on the seed and state.
  const node = rng.next();
  const choice = rng.weighted<string>([
    ['join', spares.length > 0 ? 3 : 0],
    ['decommission', c.members.length > 3 ? 3 : 0],
    // With three members Kafka (replication 3) has no broker to spare: the pre-check refuses.
    ['decommission-refused', c.members.length === 3 ? 0.5 : 0],
    ['rejoin', 2],
    ['bootstrap', 1],
    ['backup', 2],
    ['verify', verifiable ? 2 : 0],
    ['rollout', 2],
  ]);
  const nth = <T>(items: T[]) => items[Math.floor(node * items.length)] as T;
  switch (choice) {
    case 'join': {
      const n = nth(spares);
      return {
        type: 'joinNode',
        workflowId: membershipId,
        membership: true,
        label: n,
        input: () => Promise.resolve({ ...base, node: n, master: m }),
        onCompleted: () => {
          c.members = inOrder([...c.members, n]);
          membershipChanged();
        },
      };
    }
    case 'decommission':
    case 'decommission-refused': {
      const n = nth(others);
      return {
        type: 'decommissionNodes',
        workflowId: membershipId,
        membership: true,
        label: n,
        expectRefusal: choice === 'decommission-refused',
        input: () => Promise.resolve({ ...base, nodes: [n], master: m }),
        onCompleted: () => {
          c.members = c.members.filter((x) => x !== n);
          membershipChanged();
        },
      };
    }
    case 'rejoin': {
      const n = nth(others);
      return {
        type: 'rejoinNode',
        workflowId: membershipId,
        membership: true,
        label: n,
        input: () => Promise.resolve({ ...base, node: n, master: m }),
      };
    }
    case 'bootstrap':
      return bootstrapPlan(c, inOrder(c.members));
    case 'backup':
      return {
        type: 'backupCluster',
        workflowId: dataId,
        membership: false,
        label: m,
        input: () => Promise.resolve({ ...base, master: m, keep: 3 }),
        onCompleted: (result) => {
          const r = result as BackupClusterResult;
          memory.lastBackup = { id: r.backupId, members: [...c.members] };
        },
      };
    case 'verify':
      return {
        type: 'verifyBackup',
        workflowId: dataId,
        membership: false,
        label: backup?.id ?? '',
        input: () => Promise.resolve({ ...base, master: m, backupId: backup?.id }),
      };
    default:
      return rolloutPlan(c, memory, node);
  }
}

/**
 * The next rollout of the application (`appRollout`) to the members, through the agent of the
 * member `node` draws (any member may be down right now: the upload tries the others).
 */
export function rolloutPlan(c: Campaign, memory: RunbookMemory, node: number): Plan {
  const m = master(c);
  const k = ++memory.rollouts;
  const app = appRollout(k);
  const via = c.members[Math.floor(node * c.members.length)] ?? m;
  return {
    type: 'rolloutBundle',
    workflowId: bundleWorkflowId(c.clusterId, app.symbolicName),
    membership: false,
    label: `${app.symbolicName} ${app.version}`,
    input: async () => {
      const pushed = await pushTo(
        c,
        [via, ...c.members.filter((x) => x !== via)],
        c.bundles[app.jar],
      );
      // Swapping the provider back to 1.0.0 is a downgrade the operator asks for.
      return {
        clusterId: c.clusterId,
        stepAttempts,
        sha256: pushed,
        master: m,
        allowDowngrade: true,
      };
    },
  };
}

export function bootstrapPlan(c: Campaign, nodes: string[]): Plan {
  return {
    type: 'bootstrapCluster',
    workflowId: `cg/${c.clusterId}/membership`,
    membership: true,
    label: nodes.join(','),
    input: () => Promise.resolve({ clusterId: c.clusterId, stepAttempts, nodes }),
    onCompleted: () => {
      c.members = [...nodes];
    },
  };
}

/** Uploads to the first member whose agent takes it: one of them may be down right now. */
async function pushTo(c: Campaign, nodes: string[], file: string): Promise<string> {
  for (let round = 0; round < 30; round++) {
    for (const n of nodes) {
      try {
        const target = { url: `http://${n}:${c.stack.agentPort}`, token: c.stack.token };
        return (await pushBundle(target, file)).sha256;
      } catch {
        // that agent is down: the next one
      }
    }
    await sleep(1000);
  }
  throw new Error(`no agent of ${nodes.join(', ')} took the bundle within 30 rounds`);
}

function failureType(err: unknown): string | undefined {
  for (let e: unknown = err; e instanceof Error; e = e.cause) {
    if (e instanceof ApplicationFailure && e.type) return e.type;
  }
  return undefined;
}

function messages(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join(': ');
}

/**
 * Starts a runbook and follows it to its end through kills of the Temporal server and the
 * orchestrator: a parked step or no end within `timeoutMs` fails it (nobody is there to steer).
 */
export async function runRunbook(
  c: Campaign,
  plan: Plan,
  timeoutMs: number,
): Promise<RunbookRecord> {
  const started = Date.now();
  const deadline = started + timeoutMs;
  const record = (outcome: Outcome, detail: string): RunbookRecord => ({
    type: plan.type,
    outcome,
    seconds: Math.round((Date.now() - started) / 1000),
    detail,
  });
  let handle: WorkflowHandle | undefined;
  let input: Record<string, unknown>;
  try {
    input = await plan.input();
  } catch (err) {
    return record('failed', `could not prepare: ${messages(err)}`);
  }
  while (!handle) {
    if (Date.now() > deadline) return record('hung', 'could not be started (Temporal down?)');
    try {
      handle = await c.stack.client.workflow.start(plan.type, {
        args: [input],
        taskQueue: orchestratorTaskQueue,
        workflowId: plan.workflowId,
      });
    } catch (err) {
      // The start went through before the server died, and this is the retry: follow that run.
      if (err instanceof WorkflowExecutionAlreadyStartedError)
        handle = c.stack.client.workflow.getHandle(plan.workflowId);
      else await sleep(1000);
    }
  }
  let lastProgress = '';
  for (let polls = 0; ; polls++) {
    if (Date.now() > deadline) {
      return record('hung', `not done within ${timeoutMs / 1000} s; last: ${lastProgress}`);
    }
    try {
      const { status } = await handle.describe();
      if (status.name !== 'RUNNING') break;
      if (polls % 5 === 0) {
        const p = await handle.query(progressQuery);
        lastProgress = p.steps.map((s) => `${s.id}=${s.status}`).join(' ');
        const parked = p.parked?.[0];
        if (parked) return record('failed', `parked at ${parked.step}: ${parked.reason}`);
      }
    } catch {
      // the Temporal server or the orchestrator is down a moment
    }
    await sleep(2000);
  }
  for (;;) {
    try {
      const result: unknown = await handle.result();
      if (plan.expectRefusal) return record('failed', 'completed where its pre-check must refuse');
      const rolledBack = (result as Partial<RolloutBundleResult> | undefined)?.outcome;
      if (rolledBack === 'rolled-back') return record('failed', 'rolled back');
      plan.onCompleted?.(result);
      return record('completed', '');
    } catch (err) {
      if (err instanceof WorkflowFailedError) {
        const type = failureType(err);
        const atOnce = Date.now() - started < refusalWithinMs;
        if (type && refusalTypes.has(type) && atOnce) return record('refused', messages(err));
        return record('failed', `${type ?? 'failure'}: ${messages(err)}`);
      }
      if (Date.now() > deadline) return record('hung', `no result: ${messages(err)}`);
      await sleep(1000);
    }
  }
}
