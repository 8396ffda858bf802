import { chmod, copyFile, mkdir, readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { ClusterGuardError } from '../../contracts/errors.js';
import {
  isEmptyFolder,
  replaceFolder,
  wipeFolder,
  type ClusterView,
  type InSyncReport,
} from '../kit/index.js';
import { parseCsv, provisioningSql, type CockroachNodeStatus } from './parse.js';
import { SETTLE_MS, type CockroachServer, type Readiness } from './server.js';

/** Certificates for the members, and the server joined to (or creating) the cluster. */
export function createCockroachMembership(node: CockroachServer) {
  const {
    options,
    address,
    layout,
    logger,
    paths,
    connection,
    checked,
    nodeStatus,
    isLive,
    writeMembership,
    launch,
    stopServer,
  } = node;

  function requireMember(cluster: ClusterView, op: string): void {
    if (!cluster.nodes.includes(address)) {
      throw new ClusterGuardError(
        'InvalidInput',
        `${op}: ${address} is not a member of ${cluster.nodes.join(', ')}`,
      );
    }
  }

  async function ensureCa(): Promise<string> {
    const caKey = path.join(paths.ca, 'ca.key');
    const caCrt = path.join(paths.ca, 'ca.crt');
    const exists = (f: string) =>
      readFile(f).then(
        () => true,
        () => false,
      );
    const [hasKey, hasCrt] = await Promise.all([exists(caKey), exists(caCrt)]);
    if (hasKey && hasCrt) return caKey;
    await mkdir(paths.ca, { recursive: true, mode: 0o700 });
    await checked('cockroach cert create-ca', [
      'cert',
      'create-ca',
      `--certs-dir=${paths.ca}`,
      `--ca-key=${caKey}`,
      ...(hasKey ? ['--allow-ca-key-reuse'] : []),
      ...(hasCrt ? ['--overwrite'] : []),
    ]);
    logger.info('cockroach: created the cluster CA', { address, folder: paths.ca });
    return caKey;
  }

  async function generateClusterConfig(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'generateClusterConfig');
    if (options.insecure) {
      for (const node of cluster.nodes)
        await wipeFolder(layout.clusterConfigFor(node, 'cockroach'));
      return;
    }
    const caKey = await ensureCa();
    for (const node of cluster.nodes) {
      const dir = layout.clusterConfigFor(node, 'cockroach');
      await wipeFolder(dir);
      await copyFile(path.join(paths.ca, 'ca.crt'), path.join(dir, 'ca.crt'));
      const signing = [`--certs-dir=${dir}`, `--ca-key=${caKey}`];
      await checked('cockroach cert create-node', [
        'cert',
        'create-node',
        node,
        'localhost',
        ...signing,
      ]);
      // The agent on every node runs `node status`, `sql`, `init` as root.
      await checked('cockroach cert create-client', ['cert', 'create-client', 'root', ...signing]);
    }
    logger.info('cockroach: certificates generated', { nodes: cluster.nodes });
  }

  async function applyClusterConfig(cluster: ClusterView): Promise<void> {
    requireMember(cluster, 'applyClusterConfig');
    const from = layout.clusterConfigFor(address, 'cockroach');
    if (options.insecure) {
      await wipeFolder(paths.certs);
    } else {
      const files = await readdir(from).catch(() => [] as string[]);
      const missing = [
        'ca.crt',
        'node.crt',
        'node.key',
        'client.root.crt',
        'client.root.key',
      ].filter((f) => !files.includes(f));
      if (missing.length) {
        throw new ClusterGuardError(
          'InvalidInput',
          `no complete CockroachDB certificates for ${address} in ${from} (missing ${missing.join(', ')}): ` +
            "generate them on the master (createCluster) and download this node's configuration first",
        );
      }
      await replaceFolder(from, paths.certs);
      // CockroachDB refuses key files that others can read, and archives do not keep modes.
      await chmod(paths.certs, 0o700);
      for (const f of await readdir(paths.certs)) {
        if (f.endsWith('.key')) await chmod(path.join(paths.certs, f), 0o600);
      }
    }
    await writeMembership(cluster.nodes);
  }

  async function sql(what: string, script: string, timeoutMs?: number): Promise<string> {
    return checked(what, ['sql', '--format=csv', ...connection()], { input: script, timeoutMs });
  }

  async function firstColumn(statement: string): Promise<Set<string>> {
    const rows = parseCsv(await sql(statement, statement));
    return new Set(rows.slice(1).map((r) => r[0] ?? ''));
  }

  /** `all`: create and (re)set every password. `missing`: only what does not exist yet. */
  async function provision(mode: 'all' | 'missing'): Promise<void> {
    let databases = options.databases;
    if (databases.length === 0) return;
    if (mode === 'missing') {
      const [dbs, users] = await Promise.all([
        firstColumn('SHOW DATABASES;'),
        firstColumn('SHOW USERS;'),
      ]);
      databases = databases.filter((d) => !dbs.has(d.name) || !users.has(d.username));
      if (databases.length === 0) return;
    }
    let attempt = 0;
    for (;;) {
      try {
        await sql('provisioning CockroachDB databases', provisioningSql(databases));
        break;
      } catch (err) {
        // Concurrent joins may provision at the same time; schema changes then retry.
        if (
          ++attempt >= 3 ||
          !(err instanceof ClusterGuardError) ||
          err.type !== 'MiddlewareFailure'
        )
          throw err;
        await new Promise((r) => setTimeout(r, 1_000 * attempt));
      }
    }
    logger.info('cockroach: databases provisioned', {
      address,
      databases: databases.map((d) => d.name),
      users: databases.map((d) => d.username),
    });
  }

  async function provisionIfLive(op: string): Promise<void> {
    if (await isLive()) {
      await provision(op === 'createCluster' ? 'all' : 'missing');
    } else {
      logger.warn(
        `cockroach: ${op} left ${address} started but not live yet (it waits for a majority of its members); ` +
          'the configured databases are ensured when the members rejoin',
        { address },
      );
    }
  }

  /** A membership operation's opening: this node must be a member of `cluster`; it is logged. */
  function begin(op: string, cluster: ClusterView, doing: string): void {
    requireMember(cluster, op);
    logger.info(`cockroach: ${doing}`, { address, nodes: cluster.nodes });
  }

  async function createCluster(cluster: ClusterView): Promise<void> {
    begin('createCluster', cluster, 'creating the cluster');
    await generateClusterConfig(cluster);
    await applyClusterConfig(cluster);
    // The old guard service (docs/design.md): the master keeps its data. An empty store means a cluster that never existed.
    const fresh = await isEmptyFolder(paths.data);
    const readiness: Readiness = fresh
      ? { kind: 'init' }
      : cluster.nodes.length > 1
        ? { kind: 'settle', ms: SETTLE_MS }
        : { kind: 'live' };
    await launch('createCluster', cluster.nodes, readiness);
    await provisionIfLive('createCluster');
  }

  async function joinCluster(cluster: ClusterView): Promise<void> {
    begin('joinCluster', cluster, 'joining the cluster with an empty store');
    await applyClusterConfig(cluster);
    // The store is about to be wiped: never under a running server.
    await stopServer();
    await wipeFolder(paths.data);
    await launch('joinCluster', cluster.nodes, { kind: 'live' });
    await provisionIfLive('joinCluster');
  }

  async function rejoinCluster(cluster: ClusterView): Promise<void> {
    begin('rejoinCluster', cluster, 'rejoining the cluster with its data');
    await applyClusterConfig(cluster);
    await stopServer();
    try {
      await launch('rejoinCluster', cluster.nodes, { kind: 'live' });
    } catch (err) {
      if (
        err instanceof ClusterGuardError &&
        /permanently removed from the cluster/.test(err.message)
      ) {
        throw new ClusterGuardError(
          'InvalidInput',
          `${address} was decommissioned, and CockroachDB never lets a decommissioned node back with its data: ` +
            `bring it back with joinCluster, which wipes its store and gives it a new node id. ${err.message}`,
          { cause: err },
        );
      }
      throw err;
    }
    await provisionIfLive('rejoinCluster');
  }

  /** Every active member live, no range under-replicated or unavailable (`node status --ranges`). */
  async function rangesInSync(): Promise<InSyncReport> {
    const rows = (await nodeStatus({ decommission: true, ranges: true })).filter(
      (r) => (r.membership ?? 'active') === 'active',
    );
    const down = rows.filter((r) => !r.isLive).map((r) => `n${r.id} (${r.host ?? '?'})`);
    const sum = (f: (r: CockroachNodeStatus) => number | undefined) =>
      rows.reduce((n, r) => n + (r.isLive ? (f(r) ?? 0) : 0), 0);
    const under = sum((r) => r.rangesUnderReplicated);
    const unavailable = sum((r) => r.rangesUnavailable);
    if (down.length + under + unavailable === 0)
      return {
        inSync: true,
        detail: `cockroach: ${rows.length} live nodes, no range under-replicated or unavailable`,
      };
    return {
      inSync: false,
      detail:
        `cockroach: ${under} ranges under-replicated, ${unavailable} unavailable` +
        (down.length ? `; not live: ${down.join(', ')}` : ''),
    };
  }

  return {
    rangesInSync,
    requireMember,
    ensureCa,
    generateClusterConfig,
    applyClusterConfig,
    sql,
    firstColumn,
    provision,
    provisionIfLive,
    createCluster,
    joinCluster,
    rejoinCluster,
  };
}

export type CockroachMembership = ReturnType<typeof createCockroachMembership>;
