/**
 * The CockroachDB adapter against `test/fixtures/cockroach-stand-in.mjs` — or against a real
 * `cockroach` binary when COCKROACH_BIN is set; nothing is skipped either way.
 */
import assert from 'node:assert/strict';
import {
  cp,
  mkdir,
  mkdtemp,
  readFile,
  readdir,
  rm,
  stat,
  symlink,
  writeFile,
} from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { execa } from 'execa';
import { NodeLayout } from '../../src/config/layout.js';
import { ClusterGuardError, type ErrorType } from '../../src/contracts/errors.js';
import type { Logger } from '../../src/logger.js';
import {
  cockroachPaths,
  cockroachStartArgs,
  createCockroachAdapter,
  describeDecommissionRefusal,
  parseCockroachOptions,
  parseCsv,
  parseDecommissionProgress,
  parseDecommissionRefusal,
  parseNodeStatus,
  provisioningSql,
  redact,
  type CockroachAdapter,
  type CockroachNodeStatus,
  type CockroachOptions,
} from '../../src/middleware/cockroach/index.js';
import {
  assignMemberIds,
  type AdapterDeps,
  type ClusterView,
} from '../../src/middleware/kit/index.js';
import { middlewareContract, type ContractNode } from './contract.js';

const standIn = fileURLToPath(new URL('../fixtures/cockroach-stand-in.mjs', import.meta.url));
const binary = process.env.COCKROACH_BIN ? path.resolve(process.env.COCKROACH_BIN) : standIn;
/** Said in every suite name, so a report never passes the stand-in off as CockroachDB. */
const against = process.env.COCKROACH_BIN
  ? `real cockroach at ${binary}`
  : 'the cockroach STAND-IN (fake CLI)';
const SQL_PORT = 26257;
// Not 8080: ZooKeeper's admin server defaults to it, and other suites share these addresses.
const HTTP_PORT = 18080;
// Quotes and a dollar sign: the password must survive SQL quoting and never reach a log.
const SECRET = `s3cr'et "pa$$word" ${Date.now()}`;
const options: Partial<CockroachOptions> = {
  sqlPort: SQL_PORT,
  httpPort: HTTP_PORT,
  databases: [{ name: 'app', username: 'app_user', password: SECRET }],
};

const isError = (type: ErrorType, pattern?: RegExp) => (err: unknown) =>
  err instanceof ClusterGuardError && err.type === type && (!pattern || pattern.test(err.message));

const view = (nodes: string[]): ClusterView => ({
  nodes,
  decommissionNodes: [],
  memberIds: assignMemberIds(nodes),
  clusterUuid: 'cockroach-test',
});

async function exists(file: string): Promise<boolean> {
  return stat(file).then(
    () => true,
    () => false,
  );
}

async function filesUnder(folder: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(folder, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(path.join(entry.parentPath, entry.name));
  }
  return out;
}

interface TestNode {
  address: string;
  root: string;
  layout: NodeLayout;
  adapter: CockroachAdapter;
  /** Every log line and progress report of this node's adapters. */
  logs: string[];
  progress: string[];
  /** Another adapter for the same node, as a restarted agent would build it. */
  make(): CockroachAdapter;
}

const roots: string[] = [];
let binDir: string | undefined;

async function sharedBinDir(): Promise<string> {
  if (!binDir) {
    binDir = await mkdtemp(path.join(os.tmpdir(), 'cg-crdb-bin-'));
    roots.push(binDir);
    await symlink(binary, path.join(binDir, 'cockroach'));
  }
  return binDir;
}

function captureLogger(lines: string[]): Logger {
  const write = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message} ${fields ? JSON.stringify(fields) : ''}`);
  };
  return { debug: write('debug'), info: write('info'), warn: write('warn'), error: write('error') };
}

async function makeNode(
  address: string,
  operationOptions?: AdapterDeps<CockroachOptions>['operationOptions'],
  overrides: Partial<CockroachOptions> = {},
): Promise<TestNode> {
  const root = await mkdtemp(path.join(os.tmpdir(), `cg-crdb-${address}-`));
  roots.push(root);
  const layout = new NodeLayout(root);
  const logs: string[] = [];
  const progress: string[] = [];
  const deps: AdapterDeps<CockroachOptions> = {
    address,
    layout,
    binDir: await sharedBinDir(),
    options: { ...options, ...overrides },
    operationOptions,
    logger: captureLogger(logs),
    onProgress: (detail) => progress.push(detail),
  };
  const make = () => createCockroachAdapter(deps);
  return { address, root, layout, adapter: make(), logs, progress, make };
}

/** What a node's download of `cluster-distribution/<address>.zip` from the master amounts to. */
async function download(master: TestNode, node: TestNode): Promise<void> {
  const from = master.layout.clusterConfigFor(node.address, 'cockroach');
  const to = node.layout.clusterConfigFor(node.address, 'cockroach');
  await rm(to, { recursive: true, force: true });
  await cp(from, to, { recursive: true });
}

/** `cockroach sql --format=csv -e …` through `node`, as root. */
async function sqlOn(node: TestNode, statement: string): Promise<string> {
  const { stdout } = await execa(
    binary,
    [
      'sql',
      '--format=csv',
      `--host=${node.address}:${SQL_PORT}`,
      `--certs-dir=${cockroachPaths(node.layout).certs}`,
      '-e',
      statement,
    ],
    { stdin: 'ignore', timeout: 30_000 },
  );
  return stdout;
}

const rowOf = (rows: CockroachNodeStatus[], address: string) =>
  rows
    .filter((r) => r.host === address)
    .sort((a, b) => Number(b.isLive) - Number(a.isLive) || b.id - a.id)[0];

after(async () => {
  await Promise.all(roots.map((r) => rm(r, { recursive: true, force: true })));
});

// ---------------------------------------------------------------------------------------------

describe('cockroach pure helpers', () => {
  test('the start arguments bind every listener to the node and keep logs out of the store', () => {
    assert.deepEqual(
      cockroachStartArgs({
        address: '172.18.135.11',
        sqlPort: 26257,
        httpPort: 8080,
        insecure: false,
        certsDir: '/g/node-config/cockroach/certs',
        storeDir: '/g/node-data/cockroach/data',
        logDir: '/g/node-data/cockroach/log',
        externalIoDir: '/g/node-data/cockroach/external-io',
        join: ['172.18.135.11', '172.18.135.12', '172.18.135.13'],
        cache: '256MiB',
        maxSqlMemory: '.25',
      }),
      [
        'start',
        '--certs-dir=/g/node-config/cockroach/certs',
        '--store=path=/g/node-data/cockroach/data',
        '--listen-addr=172.18.135.11:26257',
        '--http-addr=172.18.135.11:8080',
        '--join=172.18.135.11:26257,172.18.135.12:26257,172.18.135.13:26257',
        '--cache=256MiB',
        '--max-sql-memory=.25',
        '--external-io-dir=/g/node-data/cockroach/external-io',
        '--log-dir=/g/node-data/cockroach/log',
      ],
    );
    const insecure = cockroachStartArgs({
      address: 'db1',
      sqlPort: 1,
      httpPort: 2,
      insecure: true,
      certsDir: '/c',
      storeDir: '/s',
      logDir: '/l',
      externalIoDir: '/e',
      join: ['db1'],
      cache: '1GB',
      maxSqlMemory: '1GB',
    });
    assert.equal(insecure[1], '--insecure');
    assert.throws(
      () =>
        cockroachStartArgs({
          address: 'db1',
          sqlPort: 1,
          httpPort: 2,
          insecure: true,
          certsDir: '/c',
          storeDir: '/s,attrs=ssd',
          logDir: '/l',
          externalIoDir: '/e',
          join: ['db1'],
          cache: '1GB',
          maxSqlMemory: '1GB',
        }),
      isError('InvalidConfig', /commas/),
    );
  });

  test('node status JSON: Go layout, string values, NULLs, decommission columns', () => {
    const stdout =
      '[\n' +
      '  {"address":"172.18.135.11:26257","build":"v25.2.0","gossiped_replicas":"71","id":"1","is_available":"true","is_decommissioning":"false","is_draining":"false","is_live":"true","locality":"","membership":"active","sql_address":"172.18.135.11:26257","started_at":"2026-11-22 07:45:12.345678","updated_at":"2026-11-22 07:50:01.000001"},\n' +
      '  {"address":"NULL","build":"NULL","gossiped_replicas":"NULL","id":"4","is_available":"false","is_decommissioning":"true","is_draining":"NULL","is_live":"false","locality":"NULL","membership":"decommissioned","sql_address":"NULL","started_at":"NULL","updated_at":"NULL"}\n' +
      ']\n';
    const [first, gone] = parseNodeStatus(stdout);
    assert.deepEqual(first, {
      id: 1,
      isLive: true,
      address: '172.18.135.11:26257',
      host: '172.18.135.11',
      port: 26257,
      sqlAddress: '172.18.135.11:26257',
      build: 'v25.2.0',
      startedAt: '2026-11-22 07:45:12.345678',
      updatedAt: '2026-11-22 07:50:01.000001',
      locality: '',
      isAvailable: true,
      replicas: 71,
      isDecommissioning: false,
      membership: 'active',
      isDraining: false,
    });
    assert.deepEqual(gone, {
      id: 4,
      isLive: false,
      isAvailable: false,
      isDecommissioning: true,
      membership: 'decommissioned',
    });
    assert.deepEqual(parseNodeStatus('[\n]\n'), []);
    assert.throws(() => parseNodeStatus('ERROR: cannot dial server'), isError('MiddlewareFailure'));
    assert.throws(() => parseNodeStatus('[{"id": 1}]'), isError('MiddlewareFailure', /string/));
    assert.throws(() => parseNodeStatus('[{"id": "one"}]'), isError('MiddlewareFailure'));
  });

  test('the decommission pre-flight refusal becomes one readable sentence', () => {
    // The format documented for v23.1+ (decommission-pre-flight-checks.md) and printed by node.go.
    const output =
      '\nranges blocking decommission detected\n' +
      'n1 has 44 replicas blocked with error: "0 of 1 live stores are able to take a new replica for the range (2 already have a voter, 0 already have a non-voter); likely not enough nodes in cluster"\n' +
      'n2 has 27 replicas blocked with error: "0 of 1 live stores are able to take a new replica for the range (2 already have a voter, 0 already have a non-voter); likely not enough nodes in cluster"\n' +
      '\nERROR: Cannot decommission nodes.\nFailed running "node decommission"\n';
    const refusal = parseDecommissionRefusal(output);
    assert.ok(refusal);
    assert.deepEqual(
      refusal.blocked.map((b) => [b.nodeId, b.replicas]),
      [
        [1, 44],
        [2, 27],
      ],
    );
    assert.match(
      refusal.blocked[0]?.error ?? '',
      /^0 of 1 live stores .* likely not enough nodes in cluster$/,
    );
    assert.equal(
      describeDecommissionRefusal(refusal, new Map([[1, '172.18.135.11']])),
      "CockroachDB's pre-flight check refused: n1 (172.18.135.11) has 44 replicas that cannot move: " +
        '0 of 1 live stores are able to take a new replica for the range (2 already have a voter, 0 already have a non-voter); likely not enough nodes in cluster; ' +
        'n2 has 27 replicas that cannot move: 0 of 1 live stores are able to take a new replica for the range (2 already have a voter, 0 already have a non-voter); likely not enough nodes in cluster',
    );
    assert.equal(
      parseDecommissionRefusal(
        '\nNo more data reported on target nodes. Please verify cluster health before removing the nodes.\n',
      ),
      undefined,
    );
    assert.deepEqual(parseDecommissionRefusal('ERROR: Cannot decommission nodes.\n'), {
      blocked: [],
      more: false,
    });
  });

  test('decommission progress is read from tsv and from the ASCII table', () => {
    const tsv =
      'id\tis_live\treplicas\tis_decommissioning\tmembership\tis_draining\treadiness\tblocking_ranges\n' +
      '4\ttrue\t33\ttrue\tdecommissioning\tfalse\tready\t0\n' +
      'id\tis_live\treplicas\tis_decommissioning\tmembership\tis_draining\treadiness\tblocking_ranges\n' +
      '4\ttrue\t5\ttrue\tdecommissioning\tfalse\tready\t0\n';
    assert.deepEqual(parseDecommissionProgress(tsv), [
      { nodeId: 4, replicas: 5, membership: 'decommissioning', isLive: true },
    ]);
    const table =
      '  id | is_live | replicas | is_decommissioning |   membership    | is_draining\n' +
      '-----+---------+----------+--------------------+-----------------+--------------\n' +
      '   3 |  true   |       65 |        true        | decommissioning |    false\n' +
      '(1 row)\n';
    assert.deepEqual(parseDecommissionProgress(table), [
      { nodeId: 3, replicas: 65, membership: 'decommissioning', isLive: true },
    ]);
    assert.deepEqual(parseDecommissionProgress('draining node n4\n'), []);
  });

  test('provisioning SQL quotes names and passwords; redaction hides both spellings', () => {
    const script = provisioningSql([{ name: 'uaa', username: 'uaa_user', password: "it's" }]);
    assert.equal(
      script,
      'CREATE DATABASE IF NOT EXISTS "uaa";\nCREATE USER IF NOT EXISTS "uaa_user";\n' +
        `ALTER USER "uaa_user" WITH PASSWORD 'it''s';\nGRANT ALL ON DATABASE "uaa" TO "uaa_user";`,
    );
    assert.equal(redact(`near "it''s" and it's`, ["it's"]), 'near "***" and ***');
    assert.deepEqual(parseCsv('a,b\n"x,1","say ""hi"""\n'), [
      ['a', 'b'],
      ['x,1', 'say "hi"'],
    ]);
  });

  test('options are validated without echoing a password', () => {
    assert.deepEqual(parseCockroachOptions(undefined), {
      sqlPort: 26257,
      httpPort: 8080,
      cache: '256MiB',
      maxSqlMemory: '256MiB',
      insecure: false,
      databases: [],
    });
    assert.throws(
      () =>
        parseCockroachOptions({
          databases: [{ name: 'Bad-Name', username: 'u', password: 'hunter2' }],
        }),
      (err: unknown) =>
        isError('InvalidConfig', /databases\.0\.name/)(err) &&
        !(err as Error).message.includes('hunter2'),
    );
    assert.throws(
      () => parseCockroachOptions({ sqlPort: 8080 }),
      isError('InvalidConfig', /both 8080/),
    );
    assert.throws(
      () => parseCockroachOptions({ cache: '1; rm -rf' }),
      isError('InvalidConfig', /cache/),
    );
  });
});

// ---------------------------------------------------------------------------------------------

function contractNode(node: TestNode): ContractNode {
  return {
    adapter: node.adapter,
    restartedAgent: () => node.make(),
    cleanup: async () => {
      await node.adapter.stopServer({ force: true });
      await rm(node.root, { recursive: true, force: true });
    },
  };
}

middlewareContract({
  name: `cockroach (${against})`,
  async working() {
    const node = await makeNode('127.0.0.11');
    await node.adapter.createCluster(view([node.address]));
    await node.adapter.stopServer();
    return contractNode(node);
  },
  async crashing() {
    // No certificates at all: CockroachDB prints `ERROR: cannot load certificates …` and exits.
    const node = await makeNode('127.0.0.11');
    await mkdir(cockroachPaths(node.layout).certs, { recursive: true });
    return contractNode(node);
  },
  async neverReady() {
    // Certificates but a store that nobody ever initializes: it runs and waits for `cockroach init`.
    const node = await makeNode('127.0.0.11', { startServer: { timeoutMs: 3_000 } });
    await node.adapter.generateClusterConfig(view([node.address]));
    await node.adapter.applyClusterConfig(view([node.address]));
    return contractNode(node);
  },
});

test('insecure mode: no certificates anywhere, --insecure on every command', async () => {
  const n = await makeNode('127.0.0.11', undefined, { insecure: true });
  try {
    await n.adapter.createCluster(view([n.address]));
    assert.deepEqual(await readdir(cockroachPaths(n.layout).certs), []);
    assert.deepEqual(await readdir(n.layout.clusterConfigFor(n.address, 'cockroach')), []);
    const status = await n.adapter.checkServer();
    assert.equal(status.healthy, true, status.detail);
    const { stdout } = await execa(
      binary,
      [
        'sql',
        '--insecure',
        `--host=${n.address}:${SQL_PORT}`,
        '--format=csv',
        '-e',
        'SHOW DATABASES',
      ],
      { stdin: 'ignore' },
    );
    assert.match(stdout, /^app,/m);
  } finally {
    await n.adapter.stopServer({ force: true });
  }
});

// ---------------------------------------------------------------------------------------------

describe(`cockroach cluster on 127.0.0.11–.14, against ${against}`, () => {
  const [a11, a12, a13, a14] = ['127.0.0.11', '127.0.0.12', '127.0.0.13', '127.0.0.14'] as const;
  const three = [a11, a12, a13];
  const nodes = new Map<string, TestNode>();
  const node = (address: string) => {
    const n = nodes.get(address);
    assert.ok(n, `no test node ${address}`);
    return n;
  };
  const marker = (n: TestNode) =>
    path.join(cockroachPaths(n.layout).data, 'clusterguard-test-marker');

  before(async () => {
    // A short in-sync wait, so that a report of ranges out of sync comes within seconds.
    for (const address of [a11, a12, a13, a14])
      nodes.set(address, await makeNode(address, { checkInSync: { timeoutMs: 4000 } }));
  });

  after(async () => {
    await Promise.all([...nodes.values()].map((n) => n.adapter.stopServer({ force: true })));
  });

  test('the master creates the cluster: certificates for every member, init once, databases provisioned', async () => {
    const master = node(a11);
    await master.adapter.createCluster(view(three));

    const expected = ['ca.crt', 'client.root.crt', 'client.root.key', 'node.crt', 'node.key'];
    for (const address of three) {
      const folder = master.layout.clusterConfigFor(address, 'cockroach');
      assert.deepEqual((await readdir(folder)).sort(), expected, address);
    }
    const distributed = await filesUnder(master.layout.clusterConfigFolder);
    assert.ok(
      !distributed.some((f) => path.basename(f) === 'ca.key'),
      'the CA key is never distributed',
    );

    const certs = cockroachPaths(master.layout).certs;
    assert.deepEqual((await readdir(certs)).sort(), expected);
    for (const key of ['node.key', 'client.root.key']) {
      assert.equal((await stat(path.join(certs, key))).mode & 0o777, 0o600, key);
    }

    const status = await master.adapter.nodeStatus();
    assert.equal(status.length, 1);
    assert.equal(status[0]?.isLive, true);
    assert.equal(status[0]?.address, `${a11}:${SQL_PORT}`);
    assert.match(await sqlOn(master, 'SHOW DATABASES'), /^app,/m);
    assert.match(await sqlOn(master, 'SHOW USERS'), /^app_user,/m);

    const consoleLog = await readFile(cockroachPaths(master.layout).consoleLog, 'utf8');
    assert.ok(!master.logs.join('\n').includes(SECRET), 'the password is not logged');
    assert.ok(!consoleLog.includes(SECRET), 'the password is not in the server output');
  });

  test('members join with a wiped store and become live', async () => {
    const master = node(a11);
    const joiners = [node(a12), node(a13)];
    for (const n of joiners) {
      await download(master, n);
      await mkdir(path.dirname(marker(n)), { recursive: true });
      await writeFile(marker(n), 'left over from another cluster');
    }
    await Promise.all(joiners.map((n) => n.adapter.joinCluster(view(three))));
    for (const n of joiners) assert.equal(await exists(marker(n)), false, `${n.address} was wiped`);

    const status = await master.adapter.nodeStatus();
    assert.deepEqual(
      status
        .filter((s) => s.isLive)
        .map((s) => s.host)
        .sort(),
      three,
    );
    const check = await node(a13).adapter.checkServer();
    assert.equal(check.healthy, true, check.detail);
    assert.match(check.detail, /3 of 3 nodes live/);
  });

  test('data written through one member is read through another', async () => {
    await sqlOn(
      node(a11),
      "CREATE TABLE IF NOT EXISTS app.kv (k STRING PRIMARY KEY, v STRING); UPSERT INTO app.kv (k, v) VALUES ('greeting', 'hello')",
    );
    assert.match(await sqlOn(node(a13), "SELECT v FROM app.kv WHERE k = 'greeting'"), /^hello$/m);
  });

  test('ranges are out of sync while a member is down and in sync once it is back', async () => {
    const master = node(a11);
    const inSync = await master.adapter.checkInSync!();
    assert.equal(inSync.inSync, true, inSync.detail);
    assert.match(inSync.detail, /3 live nodes, no range under-replicated or unavailable/);
    await node(a12).adapter.stopServer();
    // The others notice a member is gone once its liveness lapses.
    for (let i = 0; i < 40 && rowOf(await master.adapter.nodeStatus(), a12)?.isLive; i++)
      await sleep(250);
    const down = await master.adapter.checkInSync!();
    assert.equal(down.inSync, false, down.detail);
    assert.match(
      down.detail,
      /[1-9]\d* ranges under-replicated, 0 unavailable; not live: n\d+ \(127\.0\.0\.12\)/,
    );
    await node(a12).adapter.startServer(view(three));
    // Just back, its replicas still catch up for a moment: the check waits for that.
    const caughtUp = await master.adapter.checkInSync!();
    assert.equal(caughtUp.inSync, true, caughtUp.detail);
  });

  test('a member rejoins with its data and keeps its node id', async () => {
    const n13 = node(a13);
    const before = rowOf(await node(a11).adapter.nodeStatus(), a13);
    await n13.adapter.stopServer();
    await writeFile(marker(n13), 'kept');
    await n13.adapter.rejoinCluster(view(three));
    assert.equal(await readFile(marker(n13), 'utf8'), 'kept');
    const afterRejoin = rowOf(await node(a11).adapter.nodeStatus(), a13);
    assert.equal(afterRejoin?.id, before?.id);
    assert.equal(afterRejoin?.isLive, true);
    assert.match(await sqlOn(n13, "SELECT v FROM app.kv WHERE k = 'greeting'"), /^hello$/m);
  });

  test('re-creating from kept data does not wait for a quorum that only the rejoins bring back', async () => {
    const master = node(a11);
    await Promise.all(three.map((a) => node(a).adapter.stopServer()));
    await master.adapter.createCluster(view(three));
    const alone = await master.adapter.checkServer();
    assert.equal(alone.running, true);
    assert.equal(alone.healthy, false, 'one member of three cannot be live');
    assert.ok(master.logs.some((l) => /not live yet/.test(l)));

    for (const a of [a12, a13]) await download(master, node(a));
    await Promise.all([a12, a13].map((a) => node(a).adapter.rejoinCluster(view(three))));
    assert.equal((await master.adapter.checkServer()).healthy, true);
    assert.match(await sqlOn(master, "SELECT v FROM app.kv WHERE k = 'greeting'"), /^hello$/m);
  });

  test('backup and restore round-trip through the working folders', async () => {
    const master = node(a11);
    const backup = await master.adapter.backupData();
    assert.equal(backup.folder, master.layout.workingFolder('backup', 'cockroach'));
    assert.ok(backup.files.some((f) => path.basename(f.path) === 'BACKUP_MANIFEST'));

    await sqlOn(master, "UPSERT INTO app.kv (k, v) VALUES ('greeting', 'changed'), ('extra', 'x')");
    const restoreFolder = master.layout.workingFolder('restore', 'cockroach');
    await cp(backup.folder, restoreFolder, { recursive: true });
    const restored = await master.adapter.restoreData();
    assert.deepEqual(restored.files, backup.files);
    assert.equal(restored.folder, restoreFolder);

    assert.match(await sqlOn(node(a12), "SELECT v FROM app.kv WHERE k = 'greeting'"), /^hello$/m);
    assert.match(await sqlOn(master, 'SELECT count(*) FROM app.kv'), /^1$/m);
    assert.match(await sqlOn(master, 'SHOW USERS'), /^app_user,/m);
    const externalIo = await readdir(cockroachPaths(master.layout).externalIo);
    assert.deepEqual(externalIo, [], 'nothing is left behind in the external-io-dir');
  });

  test('export and import use the same mechanism; an empty import folder is refused', async () => {
    const master = node(a11);
    await assert.rejects(master.adapter.importData(), isError('InvalidInput', /nothing to import/));
    const exported = await master.adapter.exportData();
    assert.equal(exported.folder, master.layout.workingFolder('export', 'cockroach'));
    await sqlOn(master, "UPSERT INTO app.kv (k, v) VALUES ('greeting', 'imported over')");
    await cp(exported.folder, master.layout.workingFolder('import', 'cockroach'), {
      recursive: true,
    });
    await master.adapter.importData();
    assert.match(await sqlOn(master, "SELECT v FROM app.kv WHERE k = 'greeting'"), /^hello$/m);
  });

  test("decommissioning one of three is refused, in CockroachDB's own words", async () => {
    const master = node(a11);
    await assert.rejects(
      master.adapter.decommissionCluster(view([a11, a12]), [a13]),
      isError(
        'UnsafeMembershipChange',
        new RegExp(
          String.raw`only 2 live node\(s\) would remain .* at least 3 .*` +
            String.raw`pre-flight check refused: n\d+ \(127\.0\.0\.13\) has \d+ replicas that cannot move: .*not enough nodes`,
        ),
      ),
    );
    const row = rowOf(await master.adapter.nodeStatus({ decommission: true }), a13);
    assert.equal(row?.membership, 'active');
    assert.equal(row?.isLive, true);
  });

  test('with a fourth member, decommissioning one of four succeeds and reports progress', async () => {
    const master = node(a11);
    const four = [a11, a12, a13, a14];
    await master.adapter.generateClusterConfig(view(four));
    await download(master, node(a14));
    await node(a14).adapter.joinCluster(view(four));

    master.progress.length = 0;
    await master.adapter.decommissionCluster(view([a11, a12, a14]), [a13]);
    const row = rowOf(await master.adapter.nodeStatus({ decommission: true }), a13);
    assert.equal(row?.membership, 'decommissioned');
    assert.ok(
      master.progress.some((p) =>
        /n\d+ \(127\.0\.0\.13\): decommissioning, \d+ replicas left/.test(p),
      ),
      master.progress.join('\n'),
    );
    assert.ok(master.progress.some((p) => /decommissioned n\d+ \(127\.0\.0\.13\)/.test(p)));
    await node(a13).adapter.stopServer();
    // Decommissioning an address that is no longer a member is a no-op.
    await master.adapter.decommissionCluster(view([a11, a12, a14]), [a13]);
  });

  test('a decommissioned node cannot rejoin with its data; joining wipes it and gives a new id', async () => {
    const master = node(a11);
    const n13 = node(a13);
    const four = [a11, a12, a14, a13];
    const oldId = rowOf(await master.adapter.nodeStatus({ decommission: true }), a13)?.id;
    await download(master, n13);
    await assert.rejects(
      n13.adapter.rejoinCluster(view(four)),
      isError('InvalidInput', /was decommissioned.*joinCluster/s),
    );
    assert.equal((await n13.adapter.checkServer()).running, false);

    await n13.adapter.joinCluster(view(four));
    const row = rowOf(await master.adapter.nodeStatus(), a13);
    assert.equal(row?.isLive, true);
    assert.ok(oldId !== undefined && row !== undefined && row.id > oldId, 'a new node id');
  });
});
