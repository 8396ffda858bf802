import { setTimeout as sleep } from 'node:timers/promises';
import { elapsed, type Campaign } from './context.js';
import {
  killServer,
  restartServer,
  serverPid,
  serverServes,
  type ServerName,
} from './middleware.js';
import type { Rng } from './rng.js';

/**
 * What the campaign SIGKILLs, one entry per kind of process. A kind bound to nodes names the
 * nodes it may hit right now; `kill` answers false when there was nothing running to kill.
 * Adding a process is one more entry.
 */
export interface KillKind {
  name: string;
  nodes?: (c: Campaign) => string[];
  /**
   * ZooKeeper, Kafka and Felix: when the campaign restarts them itself, not while a membership
   * runbook runs (see README "Chaos campaign").
   */
  middleware?: boolean;
  kill(c: Campaign, node: string): Promise<boolean>;
  restart(c: Campaign, node: string): Promise<void>;
}

/**
 * A member's server. Felix: started by the agent's supervisor on every member; without it, only
 * once a bundle operation needed it (a rollout, or a node converging).
 */
const server = (name: ServerName): KillKind => ({
  name,
  middleware: true,
  nodes: (c) => c.members,
  async kill(c, node) {
    const pid = await serverPid(c.stack, node, name);
    if (pid === undefined) return false;
    killServer(pid);
    return true;
  },
  restart: (c, node) =>
    c.supervised ? awaitSupervisor(c, node, name) : restartServer(c.stack, node, name),
});

/**
 * The agent's supervisor brings the server back, or a runbook that holds it does (one that
 * removes the node leaves it stopped: then the node is no member any more).
 */
async function awaitSupervisor(c: Campaign, node: string, name: ServerName): Promise<void> {
  const deadline = Date.now() + 10 * 60_000;
  while (Date.now() < deadline) {
    if (await serverServes(c.stack, node, name)) return;
    if (!c.members.includes(node) && !c.membershipInFlight) return;
    await sleep(250);
  }
  throw new Error(
    `${name} on ${node} was not brought back within 10 minutes of its kill (its agent's /healthz: supervisor.servers)`,
  );
}

export const killTable: KillKind[] = [
  {
    name: 'orchestrator',
    kill: (c) => c.stack.killOrchestrator().then(() => true),
    restart: (c) => c.stack.startOrchestrator(),
  },
  {
    name: 'agent',
    nodes: (c) => c.addresses,
    kill: (c, node) => c.stack.killAgent(node).then(() => true),
    restart: (c, node) => c.stack.startAgent(node),
  },
  {
    name: 'temporal',
    kill: (c) => c.stack.killTemporal().then(() => true),
    restart: (c) => c.stack.startTemporal(),
  },
  server('zookeeper'),
  server('kafka'),
  server('felix'),
];

export interface KillOptions {
  kills: number;
  minutes: number;
}

/** One kill as it happened, for the summary. */
export interface KillRecord {
  name: string;
  node: string;
  pauseMs: number;
}

async function restartWithRetries(c: Campaign, kind: KillKind, node: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await kind.restart(c, node);
    } catch (err) {
      if (attempt >= 5) throw err;
      c.log(`restart of ${kind.name} ${node} failed (${(err as Error).message}); again`);
      await sleep(3000);
    }
  }
}

/**
 * Kills one process at a time, spread over the campaign's minutes: waits a random gap, kills,
 * waits a random pause, restarts it and waits until it is back. So nothing is killed twice
 * within its pause and never two at once. Every choice is drawn before the state is looked at,
 * so a seed replays the same targets and delays (a node index maps onto the nodes of the moment).
 */
export async function killLoop(
  c: Campaign,
  rng: Rng,
  options: KillOptions,
  done: KillRecord[],
): Promise<void> {
  const meanGapMs = (options.minutes * 60_000) / Math.max(options.kills, 1);
  try {
    while (done.length < options.kills && !c.aborted) {
      const kind = rng.pick(killTable);
      const at = rng.next();
      const pauseMs = Math.round(rng.between(500, Math.min(10_000, Math.max(1000, meanGapMs / 2))));
      const gapMs = Math.round(rng.between(0.5, 1.5) * meanGapMs) - pauseMs;
      await sleep(Math.max(gapMs, 1000));
      if (kind.middleware && !c.supervised) {
        // Checked and claimed in one synchronous step, so no membership runbook slips in.
        while ((c.membershipInFlight || c.members.length === 0) && !c.aborted) await sleep(500);
        if (c.aborted) break;
        c.middlewareDown = true;
      }
      try {
        const nodes = kind.nodes?.(c) ?? [''];
        const first = Math.floor(at * nodes.length);
        // The drawn node first; if its server does not run, the next one that does.
        let node: string | undefined;
        for (let i = 0; i < nodes.length && node === undefined; i++) {
          const n = nodes[(first + i) % nodes.length] as string;
          if (await kind.kill(c, n)) node = n;
        }
        if (node === undefined) {
          c.log(`no ${kind.name} runs on ${nodes.join(', ')}: nothing killed`);
          continue;
        }
        // A server the agent's supervisor brings back is waited for from the kill on.
        const byAgent = !!kind.middleware && c.supervised;
        const killedAt = Date.now();
        c.log(
          `killed ${kind.name}${node ? ` ${node}` : ''}; ` +
            (byAgent ? 'its agent brings it back' : `restart in ${pauseMs} ms`),
        );
        if (!byAgent) await sleep(pauseMs);
        const back = byAgent ? killedAt : Date.now();
        await restartWithRetries(c, kind, node);
        done.push({ name: kind.name, node, pauseMs });
        c.log(
          `${kind.name}${node ? ` ${node}` : ''} back in ${Date.now() - back} ms${byAgent ? ' after the kill' : ''} ` +
            `(kill ${done.length}/${options.kills}, ${elapsed(c)})`,
        );
      } finally {
        c.middlewareDown = false;
      }
    }
  } finally {
    c.killsDone = true;
  }
}
