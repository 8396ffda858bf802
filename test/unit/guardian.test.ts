import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { appConfigSchema } from '../../src/config/app-config.js';
import { defaultClusterFile } from '../../src/contracts/cluster-file.js';
import {
  clusterGuardianInputSchema,
  desiredFromController,
  desiredNodes,
  setMembershipSchema,
} from '../../src/contracts/guardian.js';
import { decideReconciliation } from '../../src/contracts/guardian-decision.js';
import { restartedNotReady } from '../../worker/guardian-hook.js';

const [a, b, c, d, e] = ['10.0.0.1', '10.0.0.2', '10.0.0.3', '10.0.0.4', '10.0.0.5'] as const;
const all = ['cockroach', 'zookeeper', 'kafka'] as const;
const opts = { clusterId: 'c1' };

describe('guardian decision (docs/guardian.md)', () => {
  test('identical and reordered memberships do nothing', () => {
    const same = decideReconciliation([a, b, c], [a, b, c], all, opts);
    assert.equal(same.action, 'none');
    assert.equal(same.action === 'none' && same.kind, 'unchanged');
    const reordered = decideReconciliation([a, b, c], [c, a, b], all, opts);
    assert.equal(reordered.action, 'none');
    assert.equal(reordered.action === 'none' && reordered.kind, 'reordered');
  });

  test('growth joins each new node to the current master, in order', () => {
    const decision = decideReconciliation([a, b, c], [a, b, c, d, e], all, opts);
    assert.equal(decision.action, 'start');
    if (decision.action !== 'start') return;
    assert.equal(decision.kind, 'grow');
    assert.deepEqual(
      decision.children.map((ch) => [ch.runbook, ch.input.node, ch.input.master]),
      [
        ['joinNode', d, a],
        ['joinNode', e, a],
      ],
    );
    assert.deepEqual(decision.webappNodes, [a, b, c, d, e]);
    // docs/guardian.md: growing a formed cluster is carried out with a warning.
    assert.equal(decision.warnings.length, 1);
    assert.match(
      decision.warnings[0] ?? '',
      /growing the formed cluster \[.*\] by \[10\.0\.0\.4, 10\.0\.0\.5\] is not among the changes .* \(docs\/design\.md\)/,
    );
  });

  test('a standalone node becoming a cluster is a bootstrap', () => {
    const decision = decideReconciliation(['127.0.0.1'], [a, b, c], all, opts);
    assert.equal(decision.action, 'start');
    if (decision.action !== 'start') return;
    assert.equal(decision.kind, 'bootstrap');
    assert.deepEqual(decision.children, [
      { runbook: 'bootstrapCluster', input: { clusterId: 'c1', dryRun: false, nodes: [a, b, c] } },
    ]);
    assert.deepEqual(decision.webappNodes, [a, b, c]);
  });

  test('a shrink that keeps quorum decommissions, naming the new master when the master leaves', () => {
    const decision = decideReconciliation([a, b, c, d, e], [b, c, d, e], all, opts);
    assert.equal(decision.action, 'start');
    if (decision.action !== 'start') return;
    assert.equal(decision.kind, 'shrink');
    const [child] = decision.children;
    assert.equal(child?.runbook, 'decommissionNodes');
    assert.deepEqual(child?.input, {
      clusterId: 'c1',
      dryRun: false,
      nodes: [a],
      add: [],
      master: a,
      newMaster: b,
    });
  });

  test('a replacement decommissions with `add`, so the new node joins first', () => {
    const decision = decideReconciliation([a, b, c], [a, b, d], all, {
      ...opts,
      middleware: ['zookeeper'],
      stepAttempts: 2,
    });
    assert.equal(decision.action, 'start');
    if (decision.action !== 'start') return;
    assert.equal(decision.kind, 'replace');
    assert.deepEqual(decision.children[0]?.input, {
      clusterId: 'c1',
      dryRun: false,
      middleware: ['zookeeper'],
      stepAttempts: 2,
      nodes: [c],
      add: [d],
      master: a,
    });
  });

  test('a shrink that loses the majority is unsafe, with the recovery guide', () => {
    const decision = decideReconciliation([a, b, c], [a], all, opts);
    assert.equal(decision.action, 'unsafe');
    if (decision.action !== 'unsafe') return;
    assert.match(decision.reason, /majority/);
    assert.match(decision.guide, /changed nothing/);
    assert.match(decision.guide, /restoreCluster/);
  });

  test('3 → 2 is safe for ZooKeeper alone but unsafe with CockroachDB (3 replicas)', () => {
    assert.equal(
      decideReconciliation([a, b, c], [a, b], ['zookeeper', 'kafka'], opts).action,
      'start',
    );
    const decision = decideReconciliation([a, b, c], [a, b], all, opts);
    assert.equal(decision.action, 'unsafe');
    assert.match(decision.action === 'unsafe' ? decision.reason : '', /cockroach/);
  });
});

describe('ControllerCluster (docs/guardian.md)', () => {
  const entry = (ip: string, index: number, isOnline: unknown = true) => ({
    keyUuid: `k-${index}`,
    clusterName: 'campus',
    isOnline,
    controllerIp: ip,
    clusterIndex: index,
  });

  test('members ordered by clusterIndex; offline members stay members', () => {
    const m = desiredFromController({
      output: { clusterIpList: [entry(c, 2), entry(a, 0), entry(b, 1, 'false')] },
      code: 0,
    });
    assert.deepEqual(m, { nodes: [a, b, c], offline: [b] });
  });

  test('an empty, duplicated or malformed answer is refused as a whole', () => {
    assert.throws(
      () => desiredFromController({ output: { clusterIpList: [] } }),
      /no cluster member/,
    );
    assert.throws(
      () => desiredFromController({ output: { clusterIpList: [entry(a, 0), entry(a, 1)] } }),
      /listed twice/,
    );
    assert.throws(
      () => desiredFromController({ output: { clusterIpList: [entry(a, 0), entry(b, 0)] } }),
      /clusterIndex 0/,
    );
    assert.throws(
      () =>
        desiredFromController({
          output: { clusterIpList: [{ controllerIp: 'x y', clusterIndex: 0 }] },
        }),
      /controllerIp/,
    );
    assert.throws(() => desiredFromController({ data: [] }), /output/);
  });
});

describe('setMembership and the guardian input', () => {
  test('addresses, duplicates and the master choice are checked', () => {
    assert.equal(setMembershipSchema.safeParse({ nodes: [a, a] }).success, false);
    assert.equal(setMembershipSchema.safeParse({ nodes: ['not an address'] }).success, false);
    const badMaster = setMembershipSchema.safeParse({ nodes: [a, b], master: c });
    assert.equal(badMaster.success, false);
    assert.match(JSON.stringify(badMaster.error?.issues), /must be a member/);
    assert.equal(setMembershipSchema.safeParse({ nodes: [a], extra: 1 }).success, false);
    assert.deepEqual(desiredNodes(setMembershipSchema.parse({ nodes: [a, b, c], master: c })), [
      c,
      a,
      b,
    ]);
  });

  test('desired and source exclude each other; the controller URL must be http(s)', () => {
    const base = { clusterId: 'c1', master: a };
    assert.equal(clusterGuardianInputSchema.safeParse(base).success, true);
    assert.equal(
      clusterGuardianInputSchema.safeParse({
        ...base,
        desired: [a],
        source: { controllerUrl: 'http://127.0.0.1/x' },
      }).success,
      false,
    );
    assert.equal(
      clusterGuardianInputSchema.safeParse({
        ...base,
        source: { controllerUrl: 'file:///etc/passwd' },
      }).success,
      false,
    );
  });

  test('the state carried across continue-as-new survives its JSON round trip', () => {
    const carried = {
      master: a,
      desired: {
        nodes: [a, b, d],
        from: 'controller',
        at: '2026-01-01T00:00:00.000Z',
        offline: [d],
      },
      actual: {
        nodes: [a, b, c],
        readAt: '2026-01-01T00:00:01.000Z',
        clusterConfigReady: true,
        nodeConfigReady: true,
      },
      lastCheck: { at: '2026-01-01T00:00:01.000Z', outcome: 'unsafe', message: 'no' },
      lastChild: {
        runbook: 'decommissionNodes',
        workflowId: 'cg/c1/membership',
        runId: 'r1',
        dryRun: true,
        input: { clusterId: 'c1', nodes: [c], add: [d] },
        startedAt: '2026-01-01T00:00:00.500Z',
        finishedAt: '2026-01-01T00:00:00.900Z',
        outcome: 'refused',
        message: 'zookeeper down',
      },
      unsafe: {
        reason: 'r',
        guide: 'g',
        since: '2026-01-01T00:00:01.000Z',
        actual: [a, b, c],
        desired: [a, b, d],
      },
      settled: { key: `${a},${b},${c}>${a},${b},${d}`, outcome: 'unsafe' },
      pendingRejoins: [c],
      totalTicks: 1234,
      run: 3,
      history: [{ at: '2026-01-01T00:00:00.000Z', what: 'x' }],
      events: 1,
    };
    const input = clusterGuardianInputSchema.parse({
      clusterId: 'c1',
      master: a,
      carried: JSON.parse(JSON.stringify(carried)) as unknown,
    });
    assert.deepEqual(input.carried, carried);
  });

  test('webapp commands come from the agent config, as argv', () => {
    const fromEnv = appConfigSchema.parse({
      webapps: { stopCommand: '["/bin/sh","-c","echo a b"]', startCommand: '/opt/app start' },
    });
    assert.deepEqual(fromEnv.webapps.stopCommand, ['/bin/sh', '-c', 'echo a b']);
    assert.deepEqual(fromEnv.webapps.startCommand, ['/opt/app', 'start']);
    assert.equal(appConfigSchema.parse({}).webapps.stopCommand, undefined);
  });

  test('a member restarted on a cluster.json that is not ready asks the guardian', () => {
    const file = defaultClusterFile(new Date(0));
    assert.equal(restartedNotReady(file), false);
    file.cluster.nodes = [a, b, c];
    assert.equal(restartedNotReady(file), false);
    file.cluster.nodeConfigReady = false;
    assert.equal(restartedNotReady(file), true);
  });
});
