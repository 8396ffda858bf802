import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { BundleViewRow, DesiredBundle } from '../contracts/bundle-view.js';
import { ClusterGuardError } from '../contracts/errors.js';

const port = (v: string): number => {
  const n = /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  if (!(n >= 1 && n <= 65535)) throw new InvalidArgumentError('expected a port number (1–65535)');
  return n;
};

const list = (v: string) =>
  v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);

async function clusterToken(tokenFile: string | undefined): Promise<string> {
  const file = tokenFile ?? process.env.CLUSTERGUARD_TOKEN_FILE;
  const token = file
    ? (
        await readFile(file, 'utf8').catch((err: unknown) => {
          throw new ClusterGuardError(
            'InvalidInput',
            `cannot read ${file}: ${(err as Error).message}`,
          );
        })
      ).trim()
    : process.env.CLUSTERGUARD_TOKEN;
  if (!token) {
    throw new ClusterGuardError(
      'InvalidInput',
      'no cluster token: pass --token-file, or set CLUSTERGUARD_TOKEN_FILE or CLUSTERGUARD_TOKEN',
    );
  }
  return token;
}

function textTable(rows: BundleViewRow[]): string {
  const head = ['NODE', 'BUNDLE', 'VERSION', 'STATE', 'DESIRED', 'COMPONENTS / DRIFT'];
  const body = rows.map((r) => [
    r.node,
    r.symbolicName,
    r.version ?? '—',
    r.state ?? '—',
    r.desired ?? '—',
    [r.components.join(', '), r.drift.length ? `⚠ ${r.drift.join('; ')}` : '']
      .filter(Boolean)
      .join('  '),
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  return [head, ...body]
    .map((cols) =>
      cols
        .map((c, i) => (i === cols.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}

/**
 * `clusterguard bundle list --cluster <id> --master <node>`: node × bundle, asked of each node's
 * agent (what its framework runs and what rollouts recorded), against the cluster's desired set
 * in its ZooKeeper. With `--check`, exit 1 when something drifted.
 */
export function addBundleList(
  bundle: Command,
  print: (data: unknown, text: () => string) => void,
  done: (code: number) => void,
): void {
  bundle
    .command('list')
    .description(
      'node × bundle: version, state and components in each framework, against the desired set',
    )
    .option('--cluster <id>', 'cluster id (checked against the agents)')
    .option('--master <address>', 'a member: its cluster.json names the nodes to ask')
    .option('--nodes <a,b,…>', 'the nodes to ask (instead of --master)', list)
    .option('--agent-port <n>', "the agents' port", port, 7700)
    .option('--zookeeper-port <n>', "the cluster's ZooKeeper client port", port, 2181)
    .option('--all', 'also the framework and platform bundles')
    .option('--markdown', 'a markdown table')
    .option('--check', 'exit 1 when a node drifted from the desired set')
    .option(
      '--token-file <path>',
      'the cluster token (default $CLUSTERGUARD_TOKEN_FILE, else $CLUSTERGUARD_TOKEN)',
    )
    .option('--agent-ca <file>', "for https: the agents' CA [env CLUSTERGUARD_AGENT_CA]")
    .option('--agent-cert <file>', 'for mutual TLS: a client certificate')
    .option('--agent-key <file>', 'for mutual TLS: its key')
    .action(async function (this: Command) {
      const o = this.opts();
      const token = await clusterToken(o.tokenFile as string | undefined);
      // Loaded here, not at start-up (src/cli/lazy.ts).
      const { loadClientTls } = await import('../agent/tls.js');
      const { agentBundles } = await import('../bundles/client.js');
      const { readDesiredBundles } = await import('../bundles/desired.js');
      const { clusterBundles } = await import('../bundles/view.js');
      const { bundleViewRows, renderBundleViewMarkdown } =
        await import('../contracts/bundle-view.js');
      const tls = await loadClientTls({
        caFile: (o.agentCa as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_CA,
        certFile: (o.agentCert as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_CERT,
        keyFile: (o.agentKey as string | undefined) ?? process.env.CLUSTERGUARD_AGENT_KEY,
      });
      const port = o.agentPort as number;
      const clusterId = o.cluster as string;
      let nodes = o.nodes as string[] | undefined;
      if (!nodes) {
        const master = o.master as string | undefined;
        if (!master) throw new ClusterGuardError('InvalidInput', 'give --master or --nodes');
        const scheme = tls ? 'https' : 'http';
        const host = master.includes(':') ? `[${master}]` : master;
        const answer = await agentBundles({
          url: `${scheme}://${host}:${port}`,
          token,
          ...(tls ? { tls } : {}),
        });
        if (answer.clusterId !== undefined && answer.clusterId !== clusterId) {
          throw new ClusterGuardError(
            'InvalidInput',
            `${master} belongs to cluster ${answer.clusterId}, not ${clusterId}`,
          );
        }
        if (!answer.members?.length) {
          throw new ClusterGuardError(
            'InvalidInput',
            `${master} has no cluster.json listing the members; pass --nodes`,
          );
        }
        nodes = answer.members;
      }
      const [perNode, desired] = await Promise.all([
        clusterBundles({ nodes, port, token, ...(tls ? { tls } : {}) }),
        readDesiredBundles(
          nodes
            .map((n) => `${n.includes(':') ? `[${n}]` : n}:${o.zookeeperPort as number}`)
            .join(','),
          10_000,
        ).then(
          (d): { desired: DesiredBundle[]; error?: string } => ({ desired: d }),
          (err: unknown) => ({ desired: [], error: (err as Error).message }),
        ),
      ]);
      const rows = bundleViewRows(perNode, desired.desired, o.all === true);
      print({ clusterId, nodes: perNode, desired: desired.desired, rows }, () =>
        [
          o.markdown ? renderBundleViewMarkdown(rows) : textTable(rows),
          desired.error ? `desired set unknown: ${desired.error}` : '',
        ]
          .filter(Boolean)
          .join('\n'),
      );
      done(o.check === true && rows.some((r) => r.drift.length > 0) ? 1 : 0);
    });
}
