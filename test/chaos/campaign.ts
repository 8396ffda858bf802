import { setTimeout as sleep } from 'node:timers/promises';
import Table from 'cli-table3';
import { greeterBundles } from '../helpers/felix-bundles.js';
import { startStack } from '../helpers/stack.js';
import { Traffic, type TrafficReport } from '../helpers/traffic.js';
import { finalProblems } from './checks.js';
import { elapsed, type Campaign } from './context.js';
import { killLoop, killTable, type KillRecord } from './kills.js';
import { Rng } from './rng.js';
import {
  bootstrapPlan,
  nextRunbook,
  rolloutPlan,
  runRunbook,
  type Outcome,
  type Plan,
  type RunbookMemory,
  type RunbookRecord,
} from './runbooks.js';

/**
 * A randomized fault campaign (issue 20): membership, data and bundle runbooks one after the
 * other on loopback nodes with real ZooKeeper, Kafka and a Felix framework each, while a client
 * writes all the time and one process at a time is SIGKILLed and restarted; at the end every
 * acknowledged write must read back, every member's framework must run the cluster's desired
 * bundles, and the cluster must be whole. See README "Chaos campaign".
 */
export interface CampaignOptions {
  seed: number;
  kills: number;
  /** The kills are spread over this many minutes; runbooks run until the last kill is over. */
  minutes: number;
  /** Four or more loopback addresses no one else binds; the first is the master throughout. */
  addresses: string[];
  /** A runbook not done within this long fails the campaign as hung. */
  runbookTimeoutMinutes?: number;
  /**
   * The agents' supervisors bring killed servers back (the default): ZooKeeper and Kafka are
   * killed at any time, also while a membership runbook runs. False: the campaign restarts them
   * itself, never during a membership runbook (the agents' supervisors are off).
   */
  supervised?: boolean;
  log?: (line: string) => void;
  /** Ends the campaign early: after the kill and the runbook in flight, still with its checks. */
  signal?: AbortSignal;
}

export interface CampaignResult {
  seed: number;
  kills: KillRecord[];
  runbooks: RunbookRecord[];
  report?: TrafficReport;
  /** Empty when the campaign passed. */
  problems: string[];
  seconds: number;
}

async function runbookLoop(
  c: Campaign,
  rng: Rng,
  timeoutMs: number,
  records: RunbookRecord[],
): Promise<void> {
  const memory: RunbookMemory = { rollouts: 0 };
  const run = async (plan: Plan) => {
    if (plan.membership) {
      // Checked and claimed in one synchronous step, so the kill loop cannot slip in between.
      while (c.middlewareDown) await sleep(500);
      c.membershipInFlight = true;
    }
    c.log(`start ${plan.type} ${plan.label}`);
    const record = await runRunbook(c, plan, timeoutMs).finally(() => {
      c.membershipInFlight = false;
    });
    c.traffic?.setNodes(c.members);
    records.push(record);
    c.log(
      `${plan.type} ${plan.label}: ${record.outcome} in ${record.seconds} s` +
        `${record.detail ? ` (${record.detail.slice(0, 300)})` : ''}; members ${c.members.join(', ')}`,
    );
    if (record.outcome === 'failed' || record.outcome === 'hung') c.aborted = true;
  };
  await run(bootstrapPlan(c, c.addresses.slice(0, 3)));
  if (c.aborted) return;
  // The application's first bundle right away: from then on every member runs a framework
  // that the kills may hit and the final check asks.
  await run(rolloutPlan(c, memory, rng.next()));
  if (c.aborted) return;
  const traffic = new Traffic({ nodes: c.members, topic: 'chaos', zkPath: '/chaos' });
  // A kill may hit the first members just as the topic is made: try again.
  for (let attempt = 1; !c.traffic; attempt++) {
    try {
      await traffic.start();
      c.traffic = traffic;
    } catch (err) {
      if (attempt >= 5) throw err;
      await sleep(3000);
    }
  }
  while (!c.killsDone && !c.aborted) {
    await sleep(rng.between(0, 3000));
    await run(nextRunbook(c, rng, memory));
  }
}

/** Every partition has a leader and all its replicas in sync (a broker just restarted catches up). */
async function waitInSync(traffic: Traffic, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    try {
      const parts = await traffic.describe();
      if (parts.every((p) => p.leader >= 0 && p.isr.length === p.replicas.length)) return;
    } catch {
      // a broker is still starting
    }
    await sleep(1000);
  }
}

export async function runCampaign(options: CampaignOptions): Promise<CampaignResult> {
  const started = Date.now();
  const log = options.log ?? ((line: string) => console.error(line));
  const supervised = options.supervised ?? true;
  // Built once per source hash (Maven), then taken from the tools cache.
  const bundles = await greeterBundles();
  const stack = await startStack(options.addresses, {
    enabled: ['zookeeper', 'kafka', 'felix'],
    agentEnv: (): Record<string, string> =>
      supervised
        ? {
            // Looked at every second; a server killed again soon after its restart is a
            // campaign's doing, not a broken server, so the cap is well above the kills.
            CG_AGENT__SUPERVISOR__INTERVAL_MS: '1000',
            CG_AGENT__SUPERVISOR__INITIAL_BACKOFF_MS: '500',
            CG_AGENT__SUPERVISOR__MAX_BACKOFF_MS: '5000',
            CG_AGENT__SUPERVISOR__MAX_FAILURES: '50',
            CG_AGENT__SUPERVISOR__STABLE_MS: '10000',
          }
        : // The campaign restarts what it kills: two starters in two processes would race.
          { CG_AGENT__SUPERVISOR__ENABLED: 'false' },
  });
  const c: Campaign = {
    bundles,
    stack,
    clusterId: 'chaos',
    addresses: options.addresses,
    members: [],
    supervised,
    membershipInFlight: false,
    middlewareDown: false,
    killsDone: false,
    aborted: false,
    started,
    log: (m) => log(`[chaos ${elapsed(c)}] ${m}`),
  };
  options.signal?.addEventListener('abort', () => {
    c.log('stopping early: after the kill and the runbook in flight, then the checks');
    c.aborted = true;
  });
  c.log(
    `seed ${options.seed}: ${options.kills} kills over ${options.minutes} min on ${options.addresses.join(', ')}; ` +
      (supervised
        ? "killed servers are brought back by the agents' supervisors"
        : 'the campaign restarts killed servers itself'),
  );
  const rng = new Rng(options.seed);
  const kills: KillRecord[] = [];
  const runbooks: RunbookRecord[] = [];
  const problems: string[] = [];
  let report: TrafficReport | undefined;
  try {
    const timeoutMs = (options.runbookTimeoutMinutes ?? 15) * 60_000;
    const [killing, running] = await Promise.allSettled([
      killLoop(c, rng.fork(1), options, kills),
      runbookLoop(c, rng.fork(2), timeoutMs, runbooks).finally(() => {
        // Without runbooks (the first bootstrap failed) the kills have nothing to hit.
        if (!c.traffic) c.aborted = true;
      }),
    ]);
    for (const s of [killing, running])
      if (s.status === 'rejected') problems.push(`campaign error: ${(s.reason as Error).message}`);
    for (const r of runbooks.filter((x) => x.outcome === 'failed' || x.outcome === 'hung'))
      problems.push(`${r.type} ${r.outcome} after ${r.seconds} s: ${r.detail}`);
    if (c.traffic) {
      await c.traffic.stop();
      await waitInSync(c.traffic, 120_000);
      report = await c.traffic.verify();
      c.log(
        `client: ${report.zkAcknowledged} znodes and ${report.kafkaAcknowledged} messages acknowledged, ` +
          `${report.zkLost.length + report.kafkaLost.length} lost`,
      );
    }
    problems.push(...(await finalProblems(c, report)));
  } catch (err) {
    problems.push(`campaign error: ${(err as Error).stack ?? String(err)}`);
  } finally {
    await c.traffic?.stop().catch(() => undefined);
    if (problems.length > 0) {
      for (const [label, lines] of stack.lines)
        if (label === 'orchestrator')
          log(`last lines of ${label}:\n${lines.slice(-30).join('\n')}`);
    }
    await stack.close();
  }
  return {
    seed: options.seed,
    kills,
    runbooks,
    report,
    problems,
    seconds: Math.round((Date.now() - started) / 1000),
  };
}

const outcomes: Outcome[] = ['completed', 'refused', 'failed', 'hung'];
// No colours: the table ends up in logs and in the README.
const plain = { head: [], border: [] };

/** The final table: kills by process, runbooks by type and outcome, writes, time, seed. */
export function summary(result: CampaignResult): string {
  const kills = new Table({ head: ['process', 'kills'], style: plain });
  for (const kind of killTable)
    kills.push([kind.name, result.kills.filter((k) => k.name === kind.name).length]);
  kills.push(['all', result.kills.length]);
  const books = new Table({ head: ['runbook', ...outcomes], style: plain });
  for (const type of [...new Set(result.runbooks.map((r) => r.type))].sort())
    books.push([
      type,
      ...outcomes.map(
        (o) => result.runbooks.filter((r) => r.type === type && r.outcome === o).length,
      ),
    ]);
  const r = result.report;
  const writes = new Table({ head: ['', 'acknowledged', 'lost'], style: plain });
  writes.push(['ZooKeeper znodes', r?.zkAcknowledged ?? 0, r?.zkLost.length ?? 0]);
  writes.push(['Kafka messages (acks=all)', r?.kafkaAcknowledged ?? 0, r?.kafkaLost.length ?? 0]);
  const verdict =
    result.problems.length === 0
      ? 'PASSED'
      : `FAILED:\n${result.problems.map((p) => `  - ${p}`).join('\n')}`;
  return [
    kills.toString(),
    books.toString(),
    writes.toString(),
    `time ${Math.floor(result.seconds / 60)} min ${result.seconds % 60} s; seed ${result.seed} ` +
      `(replay: npm run chaos -- --seed ${result.seed} …)`,
    verdict,
  ].join('\n');
}
