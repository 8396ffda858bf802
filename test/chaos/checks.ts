import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { readDesiredBundles } from '../../src/bundles/desired.js';
import { bundleProblems } from '../../src/middleware/felix/verify.js';
import { kafkaClient, type TrafficReport } from '../helpers/traffic.js';
import { master, type Campaign } from './context.js';
import { felixListing, felixLogFile } from './middleware.js';
import { greeter } from './runbooks.js';

/** ZooKeeper's `srvr` four-letter word: the server's mode, or why there is none. */
function zkMode(host: string, port = 2181): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    const socket = net.connect({ host, port, timeout: 5000 }, () => socket.end('srvr'));
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('timeout', () => socket.destroy());
    socket.on('error', (err) => resolve(`no answer (${err.message})`));
    socket.on('close', () => resolve(/^Mode: (\S+)/m.exec(text)?.[1] ?? 'no mode'));
  });
}

/** Everything the campaign asserts at the end; each entry names what is wrong. */
export async function finalProblems(
  c: Campaign,
  report: TrafficReport | undefined,
): Promise<string[]> {
  const problems: string[] = [];
  const members = [...c.members].sort();
  if (report) {
    if (report.zkLost.length > 0)
      problems.push(
        `lost ${report.zkLost.length} acknowledged znodes: ${report.zkLost.slice(0, 10).join(', ')}`,
      );
    if (report.kafkaLost.length > 0)
      problems.push(
        `lost ${report.kafkaLost.length} acknowledged messages: ${report.kafkaLost.slice(0, 10).join(', ')}`,
      );
  } else problems.push('the client never wrote (no cluster was formed)');

  // cluster.json: the same on every member (but for what is per node by nature) and naming them.
  const states = await Promise.all(
    members.map(async (n) => {
      try {
        const cluster: Record<string, unknown> = { ...(await c.stack.clusterFile(n)).cluster };
        delete cluster.nodeIsMaster;
        delete cluster.nodeIsRejoin;
        delete cluster.revision;
        return JSON.stringify(cluster);
      } catch (err) {
        return `unreadable: ${(err as Error).message}`;
      }
    }),
  );
  for (const [i, s] of states.entries()) {
    if (s !== states[0])
      problems.push(`cluster.json of ${members[i]} differs from ${members[0]}'s`);
  }
  const listed = (JSON.parse(states[0] ?? '{}') as { nodes?: string[] }).nodes ?? [];
  if ([...listed].sort().join() !== members.join())
    problems.push(
      `cluster.json lists [${listed.join(', ')}], the members are [${members.join(', ')}]`,
    );

  // ZooKeeper: every member answers, one leads. A server just restarted may still be electing.
  let modes: string[] = [];
  for (let tries = 0; tries < 30; tries++) {
    modes = await Promise.all(members.map((n) => zkMode(n)));
    if (
      modes.filter((m) => m === 'leader').length === 1 &&
      modes.every((m) => m === 'leader' || m === 'follower')
    )
      break;
    await sleep(1000);
  }
  const leaders = modes.filter((m) => m === 'leader').length;
  if (leaders !== 1 || modes.some((m) => m !== 'leader' && m !== 'follower'))
    problems.push(`ZooKeeper modes: ${members.map((n, i) => `${n} ${modes[i]}`).join(', ')}`);

  // Kafka: one broker per member, no other.
  const admin = kafkaClient(members, 9092, 'chaos-check').admin();
  try {
    await admin.connect();
    const { brokers } = await admin.describeCluster();
    const hosts = brokers.map((b) => b.host).sort();
    if (hosts.join() !== members.join())
      problems.push(
        `Kafka brokers on [${hosts.join(', ')}], the members are [${members.join(', ')}]`,
      );
  } catch (err) {
    problems.push(`Kafka cluster not described: ${(err as Error).message}`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  problems.push(...(await felixProblems(c, members)));
  return problems;
}

/**
 * Every member's framework runs the cluster's desired bundles (docs/bundles.md): each once, at
 * its desired version, ACTIVE with its components active, no bundle left in another state; and
 * once the consumer is desired, its last greeting came from the desired provider (it greets on
 * every activation, so after a swap, a refresh or a restart of the framework).
 */
async function felixProblems(c: Campaign, members: string[]): Promise<string[]> {
  let desired: Awaited<ReturnType<typeof readDesiredBundles>>;
  try {
    desired = await readDesiredBundles(`${master(c)}:2181`);
  } catch (err) {
    return [`the desired bundles were not read: ${(err as Error).message}`];
  }
  if (desired.length === 0) return ['no bundle is desired: no rollout completed'];
  const provider = desired.find((d) => d.symbolicName === greeter.provider)?.version;
  const consumerDesired = desired.some((d) => d.symbolicName === greeter.consumer);
  const problems: string[] = [];
  for (const n of members) {
    let bundles;
    try {
      ({ bundles } = await felixListing(c.stack, n));
    } catch (err) {
      problems.push(`the framework of ${n} does not answer: ${(err as Error).message}`);
      continue;
    }
    for (const d of desired) {
      const mine = bundles.filter((b) => b.symbolicName === d.symbolicName);
      const wrong =
        mine.length > 1
          ? [`it is installed ${mine.length} times`]
          : bundleProblems(mine[0], d.version);
      if (wrong.length > 0)
        problems.push(`${n}: ${d.symbolicName} (desired ${d.version}): ${wrong.join('; ')}`);
    }
    const inactive = bundles.filter((b) => b.state !== 'ACTIVE');
    if (inactive.length > 0)
      problems.push(
        `${n}: bundles not ACTIVE: ${inactive.map((b) => `${b.symbolicName} ${b.state}`).join(', ')}`,
      );
    if (consumerDesired && provider) {
      const log = await readFile(await felixLogFile(c.stack, n), 'utf8').catch(() => '');
      const last = log
        .split('\n')
        .filter((l) => l.startsWith('greeter consumer got:'))
        .at(-1);
      if (last !== `greeter consumer got: hello from provider ${provider}`)
        problems.push(
          `${n}: the consumer's last greeting is ${JSON.stringify(last)}, not from provider ${provider}`,
        );
    }
  }
  return problems;
}
