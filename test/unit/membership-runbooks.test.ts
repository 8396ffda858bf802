// Pure contracts of the membership runbooks (src/contracts/membership-runbooks.ts): input
// schemas, quorum analysis, Kafka cluster ids, member ids, and how progress shows a parked step.
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { z } from 'zod';
import { planMembership } from '../../src/contracts/membership.js';
import {
  analyzeQuorum,
  assignMemberIds,
  bootstrapClusterInputSchema,
  clusterViewSchema,
  decommissionNodesInputSchema,
  joinNodeInputSchema,
  joinWipes,
  kafkaClusterIdFromUuid,
  membershipMiddleware,
  membershipWorkflowId,
  quorumRefusal,
  rejoinNodeInputSchema,
  type QuorumCheck,
} from '../../src/contracts/membership-runbooks.js';
import { renderProgressMarkdown, type Progress } from '../../src/contracts/progress.js';
import { describeZodError } from '../../src/contracts/validation.js';
import { isKafkaClusterId } from '../../src/middleware/kafka/index.js';
import * as middlewareTypes from '../../src/middleware/kit/index.js';

const a = '172.18.135.11';
const b = '172.18.135.12';
const c = '172.18.135.13';
const d = '172.18.135.14';
const e = '172.18.135.15';

/** The schema's refusal as describeZodError words it (what an operator reads). */
function refusal(schema: z.ZodType, input: unknown): string {
  const parsed = schema.safeParse(input);
  if (parsed.success) assert.fail(`expected a refusal of ${JSON.stringify(input)}`);
  return describeZodError(parsed.error);
}

describe('membership runbook inputs', () => {
  const defaults = {
    dryRun: false,
    stepAttempts: 5,
    agentTimeoutSeconds: 30,
    waitForCluster: false,
  };

  test('a valid bootstrapCluster input gets the defaults', () => {
    const params = bootstrapClusterInputSchema.parse({ clusterId: 'dev', nodes: [a, b, c] });
    assert.equal(params.middleware, undefined, 'no middleware means: what the master enables');
    assert.deepEqual(params, {
      clusterId: 'dev',
      nodes: [a, b, c],
      decommissionNodes: [],
      ...defaults,
    });
  });

  test('a valid joinNode input gets the defaults, rejoin off', () => {
    assert.deepEqual(joinNodeInputSchema.parse({ clusterId: 'dev', node: d }), {
      clusterId: 'dev',
      node: d,
      rejoin: false,
      ...defaults,
    });
  });

  test('a valid rejoinNode input gets the defaults', () => {
    assert.deepEqual(rejoinNodeInputSchema.parse({ clusterId: 'dev', node: b, master: a }), {
      clusterId: 'dev',
      node: b,
      master: a,
      ...defaults,
    });
  });

  test('a valid decommissionNodes input gets the defaults, add empty', () => {
    assert.deepEqual(decommissionNodesInputSchema.parse({ clusterId: 'dev', nodes: [c] }), {
      clusterId: 'dev',
      nodes: [c],
      add: [],
      ...defaults,
    });
  });

  test('explicit options are kept', () => {
    const params = decommissionNodesInputSchema.parse({
      clusterId: 'dev',
      nodes: [a],
      add: [d],
      newMaster: b,
      master: a,
      dryRun: true,
      stepAttempts: 1,
      agentTimeoutSeconds: 3600,
    });
    assert.equal(params.dryRun, true);
    assert.equal(params.stepAttempts, 1);
    assert.equal(params.agentTimeoutSeconds, 3600);
    assert.equal(params.newMaster, b);
  });

  test('the middleware list is normalised to runbook order, without repeats', () => {
    assert.deepEqual(membershipMiddleware, ['cockroach', 'zookeeper', 'kafka']);
    const params = joinNodeInputSchema.parse({
      clusterId: 'dev',
      node: d,
      middleware: ['kafka', 'zookeeper'],
    });
    assert.deepEqual(params.middleware, ['zookeeper', 'kafka']);
    const all = bootstrapClusterInputSchema.parse({
      clusterId: 'dev',
      nodes: [a],
      middleware: ['kafka', 'cockroach', 'kafka', 'zookeeper'],
    });
    assert.deepEqual(all.middleware, ['cockroach', 'zookeeper', 'kafka']);
  });

  test('an empty or unknown middleware list is refused', () => {
    assert.equal(
      refusal(joinNodeInputSchema, { clusterId: 'dev', node: d, middleware: [] }),
      'middleware: expected at least one middleware',
    );
    assert.match(
      refusal(joinNodeInputSchema, { clusterId: 'dev', node: d, middleware: ['controller'] }),
      /^middleware\.0: /,
    );
  });

  test('bootstrapCluster refuses a member that is also decommissioned', () => {
    assert.equal(
      refusal(bootstrapClusterInputSchema, {
        clusterId: 'dev',
        nodes: [a, b, c],
        decommissionNodes: [d, c],
      }),
      `decommissionNodes: ${c} cannot be both a member and decommissioned`,
    );
  });

  test('duplicates are refused in nodes and add', () => {
    assert.match(
      refusal(bootstrapClusterInputSchema, { clusterId: 'dev', nodes: [a, b, a] }),
      new RegExp(`^nodes: duplicate node address ${a.replace(/\./g, '\\.')}$`),
    );
    const message = refusal(decommissionNodesInputSchema, {
      clusterId: 'dev',
      nodes: [b, b],
      add: [d, e, d],
    });
    assert.equal(message, `nodes: duplicate ${b}; add: duplicate ${d}`);
  });

  test('decommissionNodes refuses a node both added and removed', () => {
    assert.equal(
      refusal(decommissionNodesInputSchema, { clusterId: 'dev', nodes: [b, c], add: [c, d] }),
      `add: ${c} cannot be both added and decommissioned`,
    );
  });

  test('decommissionNodes refuses a new master that is leaving', () => {
    assert.equal(
      refusal(decommissionNodesInputSchema, { clusterId: 'dev', nodes: [a, b], newMaster: b }),
      `newMaster: ${b} is leaving; the new master must stay`,
    );
  });

  test('decommissionNodes needs at least one node', () => {
    assert.equal(
      refusal(decommissionNodesInputSchema, { clusterId: 'dev', nodes: [] }),
      'nodes: expected at least one node to decommission',
    );
  });

  test('unknown keys are refused (strict), naming the key', () => {
    for (const [schema, input] of [
      [bootstrapClusterInputSchema, { clusterId: 'dev', nodes: [a], node: a }],
      [joinNodeInputSchema, { clusterId: 'dev', node: d, nodes: [a] }],
      // rejoinNode is always a rejoin: the flag belongs to joinNode only.
      [rejoinNodeInputSchema, { clusterId: 'dev', node: b, rejoin: true }],
      [decommissionNodesInputSchema, { clusterId: 'dev', nodes: [c], remove: [c] }],
    ] as const) {
      const key = Object.keys(input).at(-1)!;
      assert.equal(refusal(schema, input), `(input): Unrecognized key: "${key}"`);
    }
  });

  test('bad addresses are refused with the field that holds them', () => {
    const bad = 'expected an IPv4 address (e.g. 172.18.135.11) or a host name';
    assert.equal(
      refusal(bootstrapClusterInputSchema, { clusterId: 'dev', nodes: [a, '300.1.1.1'] }),
      `nodes.1: ${bad}`,
    );
    assert.equal(
      refusal(bootstrapClusterInputSchema, {
        clusterId: 'dev',
        nodes: [a],
        decommissionNodes: ['../etc'],
      }),
      `decommissionNodes.0: ${bad}`,
    );
    assert.equal(
      refusal(joinNodeInputSchema, { clusterId: 'dev', node: 'a b', master: a }),
      `node: ${bad}`,
    );
    assert.equal(
      refusal(rejoinNodeInputSchema, { clusterId: 'dev', node: b, master: '10.0.0' }),
      `master: ${bad}`,
    );
    assert.equal(
      refusal(decommissionNodesInputSchema, {
        clusterId: 'dev',
        nodes: [c],
        add: ['host_name'],
        newMaster: '1.2.3.4/24',
      }),
      `add.0: ${bad}; newMaster: ${bad}`,
    );
  });

  test('options out of range and a bad cluster id are refused', () => {
    const base = { clusterId: 'dev', node: d };
    assert.match(refusal(joinNodeInputSchema, { ...base, stepAttempts: 0 }), /^stepAttempts: /);
    assert.match(refusal(joinNodeInputSchema, { ...base, stepAttempts: 101 }), /^stepAttempts: /);
    assert.match(
      refusal(joinNodeInputSchema, { ...base, agentTimeoutSeconds: 0 }),
      /^agentTimeoutSeconds: /,
    );
    assert.match(refusal(joinNodeInputSchema, { ...base, clusterId: 'Dev' }), /^clusterId: /);
    assert.match(
      refusal(joinNodeInputSchema, { ...base, expectedSha256: 'AB'.repeat(32) }),
      /^expectedSha256: /,
    );
  });
});

describe('quorum analysis', () => {
  const removeC = () => planMembership([a, b, c], [a, b]);

  test('removing 1 of 3 is refused for CockroachDB: 3 replicas need 3 nodes', () => {
    const checks = analyzeQuorum(removeC(), ['cockroach']);
    assert.equal(checks.length, 1);
    const [row] = checks as [QuorumCheck];
    assert.equal(row.action, 'remove');
    assert.deepEqual(row.nodes, [c]);
    assert.equal(row.membersBefore, 3);
    assert.equal(row.membersAfter, 2);
    assert.equal(row.needed, 3);
    assert.equal(row.ok, false);
    assert.equal(row.liveAfter, undefined);
    const text = quorumRefusal(checks);
    assert.ok(text);
    assert.match(
      text,
      new RegExp(`^step 1 \\(remove ${c.replace(/\./g, '\\.')}\\) is unsafe for cockroach: `),
    );
    assert.ok(text.includes('2 members remain, 3 needed'), text);
    assert.ok(text.includes('Nothing was changed.'), text);
    assert.ok(text.includes('Add a node first'), text);
  });

  test('removing 1 of 3 is safe for ZooKeeper alone: 2 of 3 is a majority', () => {
    const checks = analyzeQuorum(removeC(), ['zookeeper']);
    assert.equal(checks.length, 1);
    assert.equal(checks[0]!.needed, 2);
    assert.equal(checks[0]!.ok, true);
    assert.equal(quorumRefusal(checks), undefined);
  });

  test('Kafka: topics with 3 replicas refuse 3 → 2 brokers; with 2 replicas it is safe', () => {
    const rf3 = analyzeQuorum(removeC(), ['kafka'], { kafkaMaxReplicationFactor: 3 });
    assert.equal(rf3[0]!.needed, 3);
    assert.equal(rf3[0]!.ok, false);
    const text = quorumRefusal(rf3);
    assert.ok(text?.includes('unsafe for kafka'), text);
    assert.ok(text?.includes('topics with 3 replicas need 3 brokers'), text);

    const rf2 = analyzeQuorum(removeC(), ['kafka'], { kafkaMaxReplicationFactor: 2 });
    assert.equal(rf2[0]!.needed, 2);
    assert.equal(rf2[0]!.ok, true);
    assert.equal(quorumRefusal(rf2), undefined);

    // Without the fact only the KRaft majority counts.
    const unknown = analyzeQuorum(removeC(), ['kafka']);
    assert.equal(unknown[0]!.needed, 2);
    assert.equal(unknown[0]!.ok, true);
  });

  test('one row per step and middleware; the refusal names the first failing row', () => {
    const checks = analyzeQuorum(removeC(), ['cockroach', 'zookeeper', 'kafka'], {
      kafkaMaxReplicationFactor: 3,
    });
    assert.deepEqual(
      checks.map((r) => [r.middleware, r.ok]),
      [
        ['cockroach', false],
        ['zookeeper', true],
        ['kafka', false],
      ],
    );
    assert.ok(quorumRefusal(checks)?.includes('unsafe for cockroach'));
  });

  test('a member that is down makes a removal unsafe, and the refusal says to start it', () => {
    // b's ZooKeeper is down: removing c leaves a alone live of [a, b].
    const checks = analyzeQuorum(removeC(), ['zookeeper'], { live: { zookeeper: [a, c] } });
    const [row] = checks as [QuorumCheck];
    assert.equal(row.liveAfter, 1);
    assert.equal(row.membersAfter, 2);
    assert.equal(row.needed, 2);
    assert.equal(row.ok, false);
    const text = quorumRefusal(checks);
    assert.ok(text?.includes('1 live members remain, 2 needed'), text);
    assert.ok(text?.includes('Start the middleware on the stopped members (or rejoin them)'), text);

    // All up: the same removal is safe, and the live count is shown.
    const allUp = analyzeQuorum(removeC(), ['zookeeper'], { live: { zookeeper: [a, b, c] } });
    assert.equal(allUp[0]!.liveAfter, 2);
    assert.equal(allUp[0]!.ok, true);
  });

  test('live facts of another middleware do not count for this one', () => {
    const checks = analyzeQuorum(removeC(), ['zookeeper', 'kafka'], {
      live: { kafka: [a] },
    });
    const zk = checks.find((r) => r.middleware === 'zookeeper')!;
    const kafka = checks.find((r) => r.middleware === 'kafka')!;
    assert.equal(zk.liveAfter, undefined);
    assert.equal(zk.ok, true);
    assert.equal(kafka.liveAfter, 1);
    assert.equal(kafka.ok, false);
  });

  test('adding is always safe, whatever the facts', () => {
    const plan = planMembership([a, b, c], [a, b, c, d]);
    assert.deepEqual(
      plan.steps.map((s) => s.action),
      ['add'],
    );
    const checks = analyzeQuorum(plan, ['cockroach', 'zookeeper', 'kafka'], {
      live: { cockroach: [], zookeeper: [], kafka: [] },
      kafkaMaxReplicationFactor: 5,
    });
    assert.equal(checks.length, 3);
    for (const row of checks) {
      assert.equal(row.action, 'add');
      assert.equal(row.ok, true, row.note);
      assert.equal(row.liveAfter, 0);
      assert.ok(row.note.includes(`${d} joins; nothing is removed`), row.note);
    }
    assert.equal(quorumRefusal(checks), undefined);
  });

  test('replacing 2 of 3 (add first, then one removal at a time) is safe for ZooKeeper and Kafka', () => {
    const plan = planMembership([a, b, c], [a, d, e]);
    assert.deepEqual(
      plan.steps.map((s) => [s.action, s.nodes]),
      [
        ['add', [d, e]],
        ['remove', [b]],
        ['remove', [c]],
      ],
    );
    const checks = analyzeQuorum(plan, ['zookeeper', 'kafka']);
    assert.equal(checks.length, 6);
    assert.ok(
      checks.every((r) => r.ok),
      checks.map((r) => r.note).join('\n'),
    );
    assert.deepEqual(
      checks.map((r) => [r.step, r.middleware, r.membersBefore, r.membersAfter, r.needed]),
      [
        [1, 'zookeeper', 3, 5, 3],
        [1, 'kafka', 3, 5, 3],
        [2, 'zookeeper', 5, 4, 3],
        [2, 'kafka', 5, 4, 3],
        [3, 'zookeeper', 4, 3, 3],
        [3, 'kafka', 4, 3, 3],
      ],
    );
    assert.equal(quorumRefusal(checks), undefined);
  });
});

describe('kafkaClusterIdFromUuid', () => {
  test('is the UUID bytes as unpadded base64url, 22 characters, a valid Kafka id', () => {
    for (let i = 0; i < 2000; i++) {
      const uuid = randomUUID();
      const id = kafkaClusterIdFromUuid(uuid);
      const expected = Buffer.from(uuid.replace(/-/g, ''), 'hex').toString('base64url');
      assert.equal(id, expected.startsWith('-') ? `A${expected.slice(1)}` : expected, uuid);
      assert.equal(id.length, 22);
      assert.ok(isKafkaClusterId(id), `${id} (from ${uuid}) is not a Kafka cluster id`);
    }
  });

  test("a leading '-' (first byte 0xf8–0xfb) becomes 'A'", () => {
    const uuid = 'f8a1b2c3-d4e5-4f60-8172-8394a5b6c7d8';
    const plain = Buffer.from(uuid.replace(/-/g, ''), 'hex').toString('base64url');
    assert.ok(plain.startsWith('-'));
    const id = kafkaClusterIdFromUuid(uuid);
    assert.equal(id, `A${plain.slice(1)}`);
    assert.ok(isKafkaClusterId(id));
  });

  test('upper-case hex gives the same id', () => {
    const uuid = randomUUID();
    assert.equal(kafkaClusterIdFromUuid(uuid.toUpperCase()), kafkaClusterIdFromUuid(uuid));
  });

  test('refuses what is not a UUID', () => {
    for (const bad of ['', 'not-a-uuid', '1234', `${randomUUID()}0`, 'g'.repeat(32)]) {
      assert.throws(() => kafkaClusterIdFromUuid(bad), /not a UUID/, bad);
    }
  });
});

describe('assignMemberIds', () => {
  test('is the one exported by src/middleware/kit/types.ts', () => {
    assert.equal(middlewareTypes.assignMemberIds, assignMemberIds);
  });

  test('a new cluster numbers its members from 1 in order', () => {
    assert.deepEqual(assignMemberIds([a, b, c]), { [a]: 1, [b]: 2, [c]: 3 });
  });

  test('keeps every member id and gives new members the next unused ones', () => {
    const previous = { [a]: 1, [b]: 2, [c]: 3 };
    // b leaves, d and e join: b's 2 is not handed out, the new ones come after the highest.
    assert.deepEqual(assignMemberIds([a, c, d, e], previous), {
      [a]: 1,
      [c]: 3,
      [d]: 4,
      [e]: 5,
    });
    // The order of the list (who is master) does not change anyone's id.
    assert.deepEqual(assignMemberIds([c, a], previous), { [c]: 3, [a]: 1 });
  });

  test('an id freed by a member that left is never handed out again (lastMemberId)', () => {
    // c (id 3) was the highest and left; without the floor d would get 3 again.
    assert.deepEqual(assignMemberIds([a, b, d], { [a]: 1, [b]: 2 }), { [a]: 1, [b]: 2, [d]: 3 });
    assert.deepEqual(assignMemberIds([a, b, d], { [a]: 1, [b]: 2 }, 3), {
      [a]: 1,
      [b]: 2,
      [d]: 4,
    });
  });

  test('a clash in the previous ids keeps the first and renumbers the other', () => {
    assert.deepEqual(assignMemberIds([a, b], { [a]: 1, [b]: 1 }), { [a]: 1, [b]: 2 });
  });

  test('the ids make a valid cluster view', () => {
    const memberIds = assignMemberIds([a, d], { [a]: 7 });
    assert.deepEqual(memberIds, { [a]: 7, [d]: 8 });
    const view = clusterViewSchema.safeParse({
      nodes: [a, d],
      decommissionNodes: [],
      memberIds,
      clusterUuid: kafkaClusterIdFromUuid(randomUUID()),
    });
    assert.ok(view.success);
  });
});

describe('workflow id and wipes', () => {
  test('every membership runbook of a cluster shares one workflow id', () => {
    assert.equal(membershipWorkflowId('dev'), 'cg/dev/membership');
    assert.equal(membershipWorkflowId('plant-7'), 'cg/plant-7/membership');
  });

  test('a join wipes every middleware', () => {
    assert.deepEqual(joinWipes(false, ['cockroach', 'zookeeper', 'kafka']), [
      'cockroach: store',
      'zookeeper: data (taken from the leader)',
      'kafka: data (messages copied back from the others)',
    ]);
  });

  test("a rejoin keeps a member's own data of every middleware", () => {
    assert.deepEqual(joinWipes(true, ['cockroach', 'zookeeper', 'kafka']), [
      'cockroach: nothing (rejoin keeps the store)',
      "zookeeper: nothing while its data is this ensemble's (synced from the leader); another ensemble's data",
      'kafka: nothing while it is formatted for this cluster as the same node (it catches up); else its data',
    ]);
  });

  test('only the given middleware are listed, in the given order', () => {
    assert.deepEqual(joinWipes(false, ['zookeeper']), ['zookeeper: data (taken from the leader)']);
    assert.deepEqual(joinWipes(false, []), []);
  });
});

describe('progress with paused and parked', () => {
  const since = '2026-11-22T08:00:00.000Z';
  const progress: Progress = {
    runbook: 'bootstrapCluster',
    clusterId: 'dev',
    status: 'running',
    updatedAt: since,
    paused: { reason: 'maintenance | window', since },
    parked: [
      {
        step: `join:${b}`,
        node: b,
        reason: 'kafka did not start | exit 1\nsee the log',
        since,
        accepts: ['retryStep', 'skipNode', 'abort'],
      },
      { step: `record:${a}`, reason: 'disk full', since, accepts: ['retryStep', 'abort'] },
    ],
    steps: [
      {
        id: `stop:${a}`,
        title: 'stop all middleware (forced)',
        node: a,
        status: 'completed',
        attempts: 1,
      },
      {
        id: `join:${b}`,
        title: 'join',
        node: b,
        status: 'parked',
        attempts: 5,
        lastError: 'kafka did not start | exit 1',
      },
      { id: `record:${a}`, title: 'record', node: a, status: 'parked', attempts: 5 },
    ],
  };

  test('shows the pause and every parked step with node, reason and accepted updates', () => {
    const lines = renderProgressMarkdown(progress).split('\n');
    assert.match(lines[0]!, /\*\*bootstrapCluster\*\* on cluster `dev` — running, 1\/3 steps done/);
    assert.equal(lines[2], `⏸️ paused since ${since}: maintenance \\| window`);
    assert.equal(
      lines[4],
      `🅿️ **parked** at \`join:${b}\` on ${b}: kafka did not start \\| exit 1 see the log — ` +
        'send the update `retryStep`, `skipNode`, `abort`',
    );
    assert.equal(
      lines[6],
      `🅿️ **parked** at \`record:${a}\`: disk full — send the update \`retryStep\`, \`abort\``,
    );
    assert.equal(lines[8], '| step | node | status | attempts | last error |');
    assert.equal(lines.length, 13, 'a pipe or newline in a reason must not add lines');
    assert.ok(lines.includes(`| join | ${b} | 🅿️ parked | 5 | kafka did not start \\| exit 1 |`));
  });

  test('without a pause or a parked step there are no such lines', () => {
    const md = renderProgressMarkdown({ ...progress, paused: undefined, parked: undefined });
    assert.ok(!md.includes('paused since'));
    assert.ok(!md.includes('**parked**'));
    assert.equal(md.split('\n')[2], '| step | node | status | attempts | last error |');
  });
});
